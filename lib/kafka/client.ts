import { Kafka, type KafkaConfig, logLevel as KafkaLogLevel, type LogEntry } from 'kafkajs';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { OauthBearerProvider } from './msk-iam';

/**
 * The one kafkajs instance of a process. kafkajs stays behind this module and the publisher /
 * consumer adapters; the rest of the code never imports it.
 */
export function createKafka(config: Config['kafka'], logger: Logger, options: KafkaAuthOptions = {}): Kafka {
  return new Kafka(kafkaConfig(config, logger, options));
}

export interface KafkaAuthOptions {
  /** Required for `KAFKA_SASL_MECHANISM=aws-msk-iam`: signs the OAUTHBEARER tokens. */
  readonly mskIamToken?: OauthBearerProvider;
}

/** The kafkajs configuration for `config` (exported for its tests). */
export function kafkaConfig(
  config: Config['kafka'],
  logger: Logger,
  options: KafkaAuthOptions = {},
): KafkaConfig {
  const log = logger.child({ component: 'kafkajs' });
  const result: KafkaConfig = {
    clientId: config.clientId,
    brokers: [...config.brokers],
    ssl: config.ssl,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 5000 },
    logLevel: log.isDebugEnabled() ? KafkaLogLevel.INFO : KafkaLogLevel.WARN,
    logCreator:
      () =>
      ({ level, log: { message, ...extra } }: LogEntry) => {
        const fields = { ...extra };
        if (level <= KafkaLogLevel.ERROR) log.error(message, fields);
        else if (level === KafkaLogLevel.WARN) log.warn(message, fields);
        else if (level === KafkaLogLevel.INFO) log.debug(message, fields);
      },
  };
  const sasl = config.sasl;
  if (sasl?.mechanism === 'aws-msk-iam') {
    if (!options.mskIamToken) throw new TypeError('KAFKA_SASL_MECHANISM=aws-msk-iam needs a token provider');
    result.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: options.mskIamToken };
    // MSK serves IAM authentication on its TLS listener (port 9098) only.
    result.ssl = true;
  } else if (sasl) {
    const { mechanism, username, password } = sasl;
    result.sasl =
      mechanism === 'plain'
        ? { mechanism: 'plain', username, password }
        : mechanism === 'scram-sha-256'
          ? { mechanism: 'scram-sha-256', username, password }
          : { mechanism: 'scram-sha-512', username, password };
  }
  return result;
}
