/**
 * Values of the self-managed Kafka event source (deploy/kafka-source-kafka.yml) that are lists, or
 * whose keys depend on the configuration: osls variables cannot split a comma-separated variable or
 * leave out an unset option. Every input is an environment variable (docs/deploy.md); placeholders
 * keep `serverless package` working without real values.
 */

const PLACEHOLDER_SECRET =
  'arn:aws:secretsmanager:us-east-1:000000000000:secret:ws-gateway/placeholder-AbCdEf';

/** Secrets Manager access configuration for each SASL mechanism the gateway's producer also speaks. */
const SASL_ACCESS = {
  plain: 'saslPlainAuth',
  'scram-sha-256': 'saslScram256Auth',
  'scram-sha-512': 'saslScram512Auth',
};

const list = (value) =>
  String(value)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

const env = (name) => {
  const value = process.env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
};

module.exports = {
  /** KAFKA_BROKERS: the brokers the gateway publishes to are the ones the event source reads. */
  bootstrapServers: () => list(env('KAFKA_BROKERS') ?? 'kafka-1.internal:9096,kafka-2.internal:9096'),

  /**
   * VPC placement of Lambda's pollers (KAFKA_VPC_SUBNET_IDS / KAFKA_VPC_SECURITY_GROUP_IDS, default:
   * the functions' own VPC; KAFKA_VPC_ACCESS=false for brokers reachable over the internet),
   * SASL (KAFKA_SASL_MECHANISM + KAFKA_SASL_SECRET_ARN, a secret with `username` and `password`),
   * a private CA (KAFKA_ROOT_CA_SECRET_ARN) and mutual TLS (KAFKA_CLIENT_CERT_SECRET_ARN).
   */
  accessConfigurations: async ({ resolveVariable }) => {
    const access = {};
    if (env('KAFKA_VPC_ACCESS') !== 'false') {
      access.vpcSubnet = list(env('KAFKA_VPC_SUBNET_IDS') ?? (await resolveVariable('param:subnetIds')));
      access.vpcSecurityGroup = list(
        env('KAFKA_VPC_SECURITY_GROUP_IDS') ?? (await resolveVariable('param:securityGroupIds')),
      );
    }
    const mechanism = env('KAFKA_SASL_MECHANISM');
    if (mechanism !== undefined) {
      const key = SASL_ACCESS[mechanism.toLowerCase()];
      if (key === undefined) {
        throw new Error(`KAFKA_SASL_MECHANISM: expected one of ${Object.keys(SASL_ACCESS).join(', ')}`);
      }
      access[key] = [env('KAFKA_SASL_SECRET_ARN') ?? PLACEHOLDER_SECRET];
    }
    const rootCa = env('KAFKA_ROOT_CA_SECRET_ARN');
    if (rootCa !== undefined) access.serverRootCaCertificate = [rootCa];
    const clientCert = env('KAFKA_CLIENT_CERT_SECRET_ARN');
    if (clientCert !== undefined) access.clientCertificateTlsAuth = [clientCert];
    if (Object.keys(access).length === 0) {
      throw new Error(
        'the self-managed Kafka event source needs VPC access (KAFKA_VPC_ACCESS) or authentication',
      );
    }
    return access;
  },
};
