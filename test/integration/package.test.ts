/**
 * The deploy path: `serverless package --stage prod` builds the CloudFormation template offline —
 * no AWS credentials (a clean environment and an empty HOME), no network (any socket connect or DNS
 * lookup fails the run) — for each Kafka event source, and the template holds what API Gateway
 * WebSockets, the Kafka event source and the VPC need. Packaging must also leave the bundles of a
 * running serverless-offline (`.esbuild/local`) alone.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, Json>;
  readonly DependsOn?: string | string[];
}

interface Template {
  readonly Resources: Record<string, Resource>;
  readonly Conditions?: Record<string, Json>;
  readonly Outputs?: Record<string, { readonly Value: Json }>;
}

/** Makes every outbound connection and DNS lookup fail, and records who tried. */
const NO_NETWORK = `
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');
const record = (what) => {
  fs.appendFileSync(process.env.NETWORK_ATTEMPTS_FILE, what + '\\n');
  return new Error('network access during package: ' + what);
};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const target = args[0];
  // Local IPC (pipes) is not network.
  if (typeof target === 'object' && target !== null && typeof target.path === 'string') return connect.apply(this, args);
  throw record('connect ' + JSON.stringify(target));
};
dns.lookup = (host) => { throw record('dns.lookup ' + host); };
dns.promises.lookup = async (host) => { throw record('dns.promises.lookup ' + host); };
`;

let workDir: string;
let preload: string;
let attemptsFile: string;

/** A file in `.esbuild/local`, where serverless-offline keeps the bundles it serves. */
let offlineSentinel: string;

interface Packaged {
  readonly template: Template;
  readonly artifacts: readonly string[];
}

/** Runs `serverless package --stage prod` with exactly `vars` (plus PATH) in the environment. */
async function packageProd(vars: Record<string, string>): Promise<Packaged> {
  const out = mkdtempSync(path.join(workDir, 'package-'));
  const home = mkdtempSync(path.join(workDir, 'home-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    NODE_OPTIONS: `--require ${preload}`,
    NETWORK_ATTEMPTS_FILE: attemptsFile,
    ...vars,
  };
  try {
    await run(
      path.join(root, 'node_modules', '.bin', 'serverless'),
      ['package', '--stage', 'prod', '--package', out],
      { cwd: root, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`serverless package failed:\n${stdout}\n${stderr}`.slice(-4000));
  }
  const template = JSON.parse(
    readFileSync(path.join(out, 'cloudformation-template-update-stack.json'), 'utf8'),
  ) as Template;
  return { template, artifacts: readdirSync(out) };
}

function ofType(template: Template, type: string): Array<[string, Resource]> {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

function resource(template: Template, id: string): Resource {
  const r = template.Resources[id];
  if (!r) throw new Error(`no resource ${id} in the template`);
  return r;
}

const mentions = (value: unknown, text: string) => JSON.stringify(value).includes(text);

/** Every IAM statement of the functions' role and of policies attached to it. */
function roleStatements(template: Template): Json[] {
  const statements: Json[] = [];
  const role = resource(template, 'IamRoleLambdaExecution');
  const policies = role.Properties.Policies as Array<{ PolicyDocument: { Statement: Json[] } }>;
  for (const p of policies) statements.push(...p.PolicyDocument.Statement);
  for (const [, policy] of ofType(template, 'AWS::IAM::Policy')) {
    if (!mentions(policy.Properties.Roles, 'IamRoleLambdaExecution')) continue;
    statements.push(...(policy.Properties.PolicyDocument as { Statement: Json[] }).Statement);
  }
  return statements;
}

const FUNCTIONS = ['Connect', 'Disconnect', 'Default', 'Welcome', 'Events', 'Sweeper', 'Health'] as const;
/** Functions without a WebSocket request context: they get this API's Management endpoint. */
const NO_REQUEST_CONTEXT: readonly string[] = ['Events', 'Sweeper'];
const TOPICS = ['system.events', 'chat.events', 'games.events'];

beforeAll(() => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'ws-gateway-package-'));
  preload = path.join(workDir, 'no-network.js');
  writeFileSync(preload, NO_NETWORK);
  attemptsFile = path.join(workDir, 'network-attempts.txt');
  writeFileSync(attemptsFile, '');
  const offlineDir = path.join(root, '.esbuild', 'local');
  mkdirSync(offlineDir, { recursive: true });
  offlineSentinel = path.join(offlineDir, `.package-test-${randomUUID()}`);
  writeFileSync(offlineSentinel, '');
});

afterAll(() => {
  rmSync(offlineSentinel, { force: true });
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

afterEach(() => {
  // Checked after every packaging run: nothing reached for the network, offline's bundles survived.
  expect(readFileSync(attemptsFile, 'utf8')).toBe('');
  expect(existsSync(offlineSentinel)).toBe(true);
});

describe('the no-network guard', () => {
  it('records and fails a connection attempt made under it', async () => {
    const attempt = run(process.execPath, ['-e', "require('node:http').get('http://192.0.2.1:80/')"], {
      env: {
        PATH: process.env.PATH,
        NODE_OPTIONS: `--require ${preload}`,
        NETWORK_ATTEMPTS_FILE: attemptsFile,
      },
    });

    await expect(attempt).rejects.toThrow(/network access during package/);
    expect(readFileSync(attemptsFile, 'utf8')).toMatch(/^connect /);
    writeFileSync(attemptsFile, '');
  });
});

describe('serverless package --stage prod, Amazon MSK event source, placeholder parameters', () => {
  let template: Template;

  beforeAll(async () => {
    // Nothing but the choice of event source: every other parameter falls back to its placeholder.
    ({ template } = await packageProd({ KAFKA_SOURCE: 'msk' }));
  }, 150_000);

  it('creates the WebSocket API with its route selection expression', () => {
    expect(resource(template, 'WebsocketsApi')).toMatchObject({
      Type: 'AWS::ApiGatewayV2::Api',
      Properties: { ProtocolType: 'WEBSOCKET', RouteSelectionExpression: '$request.body.type' },
    });
    expect(resource(template, 'WebsocketsDeploymentStage').Properties).toMatchObject({
      ApiId: { Ref: 'WebsocketsApi' },
      StageName: 'prod',
    });
  });

  it.each([
    ['$connect', 'Connect'],
    ['$disconnect', 'Disconnect'],
    ['$default', 'Default'],
  ])('routes %s to the %s function through a Lambda proxy integration', (routeKey, fn) => {
    const routes = ofType(template, 'AWS::ApiGatewayV2::Route').filter(
      ([, r]) => r.Properties.RouteKey === routeKey,
    );
    expect(routes).toHaveLength(1);
    const [, route] = routes[0]!;
    expect(route.Properties.ApiId).toEqual({ Ref: 'WebsocketsApi' });
    expect(route.Properties.Target).toEqual({
      'Fn::Join': ['/', ['integrations', { Ref: `${fn}WebsocketsIntegration` }]],
    });
    const integration = resource(template, `${fn}WebsocketsIntegration`);
    expect(integration.Properties).toMatchObject({
      ApiId: { Ref: 'WebsocketsApi' },
      IntegrationType: 'AWS_PROXY',
    });
    expect(mentions(integration.Properties.IntegrationUri, `"${fn}LambdaFunction"`)).toBe(true);
  });

  it('answers on $default with a route response, since replies are the route response', () => {
    const [[routeId, route]] = ofType(template, 'AWS::ApiGatewayV2::Route').filter(
      ([, r]) => r.Properties.RouteKey === '$default',
    ) as [[string, Resource]];
    expect(route.Properties.RouteResponseSelectionExpression).toBe('$default');

    const responses = ofType(template, 'AWS::ApiGatewayV2::RouteResponse').map(([, r]) => r.Properties);
    expect(responses).toEqual([
      { ApiId: { Ref: 'WebsocketsApi' }, RouteId: { Ref: routeId }, RouteResponseKey: '$default' },
    ]);
  });

  it('serves GET /health and GET /ready from the health function on the HTTP API', () => {
    const keys = ofType(template, 'AWS::ApiGatewayV2::Route')
      .filter(([, r]) => mentions(r.Properties.ApiId, '"HttpApi"'))
      .map(([, r]) => r.Properties.RouteKey)
      .sort();
    expect(keys).toEqual(['GET /health', 'GET /ready']);
    expect(resource(template, 'HttpApiIntegrationHealth').Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: { 'Fn::GetAtt': ['HealthLambdaFunction', 'Arn'] },
    });
  });

  it('has no demo page: its function and routes exist in the local stage only', () => {
    const functions = ofType(template, 'AWS::Lambda::Function').map(([id]) => id);
    expect(functions.length).toBeGreaterThan(0);
    expect(functions.filter((id) => /demo/i.test(id))).toEqual([]);
    expect(JSON.stringify(template)).not.toMatch(/\/demo|handlers\/demo|GET \/"/);
  });

  it('grants execute-api:ManageConnections on this API and stage only', () => {
    const grants = roleStatements(template).filter((s) => mentions(s, 'execute-api:ManageConnections'));

    expect(grants).toEqual([
      {
        Effect: 'Allow',
        Action: ['execute-api:ManageConnections'],
        Resource: [
          {
            'Fn::Sub':
              // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
              'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebsocketsApi}/prod/*/@connections/*',
          },
        ],
      },
    ]);
  });

  it('runs the sweeper once a minute on a schedule, allowed to invoke it, with a timeout its loop stays inside', () => {
    const rules = ofType(template, 'AWS::Events::Rule').filter(([, r]) =>
      mentions(r.Properties.Targets, '"SweeperLambdaFunction"'),
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]![1].Properties).toMatchObject({ ScheduleExpression: 'rate(1 minute)', State: 'ENABLED' });
    const [ruleId] = rules[0]!;
    const permissions = ofType(template, 'AWS::Lambda::Permission').filter(([, p]) =>
      mentions(p.Properties.FunctionName, '"SweeperLambdaFunction"'),
    );
    expect(permissions).toHaveLength(1);
    expect(permissions[0]![1].Properties).toMatchObject({
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
    });
    expect(mentions(permissions[0]![1].Properties.SourceArn, `"${ruleId}"`)).toBe(true);
    const sweeper = resource(template, 'SweeperLambdaFunction').Properties;
    expect(sweeper.Handler).toBe('handlers/sweeper.handler');
    expect(sweeper.Timeout).toBe(60);
  });

  it('maps every events topic from the MSK cluster with batch size, starting position and group', () => {
    const mappings = ofType(template, 'AWS::Lambda::EventSourceMapping').map(([, r]) => r);

    expect(mappings.map((m) => m.Properties.Topics).sort()).toEqual(TOPICS.map((t) => [t]).sort());
    for (const m of mappings) {
      expect(m.Properties).toMatchObject({
        EventSourceArn: expect.stringMatching(/^arn:aws:kafka:[a-z0-9-]+:\d{12}:cluster\/[^/]+\/[^/]+$/),
        FunctionName: { 'Fn::GetAtt': ['EventsLambdaFunction', 'Arn'] },
        BatchSize: 100,
        StartingPosition: 'LATEST',
        AmazonManagedKafkaEventSourceConfig: {
          ConsumerGroupId: `ws_gateway-${(m.Properties.Topics as string[])[0]}`,
        },
      });
      expect(m.DependsOn).toEqual(expect.arrayContaining(['IamRoleLambdaExecution', 'MskEventSourcePolicy']));
    }
  });

  it('gives every event-source mapping a consumer group of its own, as AWS requires', () => {
    const groups = ofType(template, 'AWS::Lambda::EventSourceMapping').map(
      ([, m]) =>
        (m.Properties.AmazonManagedKafkaEventSourceConfig as { ConsumerGroupId: string }).ConsumerGroupId,
    );
    expect(new Set(groups).size).toBe(TOPICS.length);
    // …and the role may use exactly those groups.
    const groupGrants = JSON.stringify(
      roleStatements(template).filter((s) => mentions(s, 'kafka-cluster:AlterGroup')),
    );
    // `\${Group}`: the literal of a CloudFormation Fn::Sub string.
    for (const topic of TOPICS) expect(groupGrants).toContain(`/\${Group}-${topic}`);
    expect(groupGrants).toContain('"Group":"ws_gateway"');
  });

  it("configures the functions' producer for MSK IAM as well, so the mapping and the producer agree", () => {
    for (const fn of FUNCTIONS) {
      const { Variables } = resource(template, `${fn}LambdaFunction`).Properties.Environment as {
        Variables: Record<string, Json>;
      };
      expect(Variables).toMatchObject({ KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'true' });
      expect(Variables.KAFKA_SASL_PASSWORD).toBe('');
    }
    const writes = JSON.stringify(
      roleStatements(template).filter((s) => mentions(s, 'kafka-cluster:WriteData')),
    );
    for (const topic of ['games.commands', 'chat.commands', 'system.events', 'gateway.presence'])
      expect(writes).toContain(`/${topic}`);
  });

  it('lets the role read the topics with MSK IAM authentication', () => {
    const actions = roleStatements(template).flatMap((s) =>
      typeof s === 'object' && s !== null && !Array.isArray(s) ? [s.Action].flat() : [],
    );
    expect(actions).toEqual(
      expect.arrayContaining([
        'kafka-cluster:Connect',
        'kafka-cluster:DescribeTopic',
        'kafka-cluster:ReadData',
        'kafka-cluster:DescribeGroup',
        'kafka-cluster:AlterGroup',
        'kafka:DescribeClusterV2',
        'kafka:GetBootstrapBrokers',
      ]),
    );
  });

  it('runs every function on Node.js 24 (nodejs24.x), the supported Lambda runtime', () => {
    const functions = ofType(template, 'AWS::Lambda::Function');
    expect(functions.map(([id]) => id).sort()).toEqual(FUNCTIONS.map((f) => `${f}LambdaFunction`).sort());
    for (const [, fn] of functions) expect(fn.Properties.Runtime).toBe('nodejs24.x');
  });

  it('runs every function in the VPC from the subnet and security group parameters', () => {
    for (const fn of FUNCTIONS) {
      expect(resource(template, `${fn}LambdaFunction`).Properties.VpcConfig).toEqual({
        SubnetIds: { 'Fn::Split': [',', 'subnet-0000000000000000a,subnet-0000000000000000b'] },
        SecurityGroupIds: { 'Fn::Split': [',', 'sg-0000000000000000a'] },
      });
    }
    expect(
      mentions(
        resource(template, 'IamRoleLambdaExecution').Properties.ManagedPolicyArns,
        'AWSLambdaVPCAccessExecutionRole',
      ),
    ).toBe(true);
  });

  it("gives the events function this API's Management endpoint and lets the handlers use the request context", () => {
    const eventsEnv = resource(template, 'EventsLambdaFunction').Properties.Environment as {
      Variables: Record<string, Json>;
    };
    expect(eventsEnv.Variables.WS_MANAGEMENT_ENDPOINT).toEqual({
      'Fn::If': [
        'HasManagementEndpointOverride',
        '',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
        { 'Fn::Sub': 'https://${WebsocketsApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod' },
      ],
    });
    expect(template.Conditions?.HasManagementEndpointOverride).toEqual({
      'Fn::Not': [{ 'Fn::Equals': ['', ''] }],
    });

    for (const fn of NO_REQUEST_CONTEXT) {
      const { Variables } = resource(template, `${fn}LambdaFunction`).Properties.Environment as {
        Variables: Record<string, Json>;
      };
      expect(Variables.WS_MANAGEMENT_ENDPOINT).toEqual(eventsEnv.Variables.WS_MANAGEMENT_ENDPOINT);
    }
    for (const fn of FUNCTIONS.filter((f) => !NO_REQUEST_CONTEXT.includes(f))) {
      const { Variables } = resource(template, `${fn}LambdaFunction`).Properties.Environment as {
        Variables: Record<string, Json>;
      };
      expect(Variables).toMatchObject({
        STAGE: 'prod',
        WS_MANAGEMENT_ENDPOINT: '',
        LAMBDA_ENDPOINT: '',
        AUTH_ALLOW_UNVERIFIED: 'false',
        WELCOME_FUNCTION_NAME: 'ws-gateway-prod-welcome',
      });
    }
  });
});

describe('serverless package --stage prod, self-managed Kafka event source', () => {
  const SASL_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ws-gateway/kafka-sasl-AbCdEf';
  const ROOT_CA = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ws-gateway/kafka-ca-AbCdEf';
  let template: Template;

  beforeAll(async () => {
    ({ template } = await packageProd({
      KAFKA_SOURCE: 'kafka',
      AWS_REGION: 'eu-west-1',
      KAFKA_BROKERS: 'b-1.kafka.internal:9096,b-2.kafka.internal:9096',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_SECRET_ARN: SASL_SECRET,
      KAFKA_ROOT_CA_SECRET_ARN: ROOT_CA,
      KAFKA_BATCH_SIZE: '500',
      KAFKA_BATCH_WINDOW_SECS: '1',
      KAFKA_EVENT_SOURCE_START: 'TRIM_HORIZON',
      KAFKA_CONSUMER_GROUP: 'ws-gateway-prod',
      VPC_SUBNET_IDS: 'subnet-0123456789abcdef0, subnet-0fedcba9876543210',
      VPC_SECURITY_GROUP_IDS: 'sg-0123456789abcdef0',
      WS_MANAGEMENT_ENDPOINT: 'https://ws.example.com/realtime',
    }));
  }, 150_000);

  it('maps every events topic from the bootstrap servers with SASL/SCRAM, a private CA and VPC access', () => {
    const mappings = ofType(template, 'AWS::Lambda::EventSourceMapping').map(([, r]) => r.Properties);

    expect(mappings.map((m) => m.Topics).sort()).toEqual(TOPICS.map((t) => [t]).sort());
    for (const m of mappings) {
      expect(m).toMatchObject({
        FunctionName: { 'Fn::GetAtt': ['EventsLambdaFunction', 'Arn'] },
        SelfManagedEventSource: {
          Endpoints: { KafkaBootstrapServers: ['b-1.kafka.internal:9096', 'b-2.kafka.internal:9096'] },
        },
        BatchSize: 500,
        MaximumBatchingWindowInSeconds: 1,
        StartingPosition: 'TRIM_HORIZON',
        SelfManagedKafkaEventSourceConfig: {
          ConsumerGroupId: `ws-gateway-prod-${(m.Topics as string[])[0]}`,
        },
      });
      expect(m.SourceAccessConfigurations).toEqual([
        { Type: 'VPC_SUBNET', URI: 'subnet:subnet-0123456789abcdef0' },
        { Type: 'VPC_SUBNET', URI: 'subnet:subnet-0fedcba9876543210' },
        { Type: 'VPC_SECURITY_GROUP', URI: 'security_group:sg-0123456789abcdef0' },
        { Type: 'SASL_SCRAM_512_AUTH', URI: SASL_SECRET },
        { Type: 'SERVER_ROOT_CA_CERTIFICATE', URI: ROOT_CA },
      ]);
    }
  });

  it('lets the role read the SASL and CA secrets, and adds no MSK permissions', () => {
    const statements = roleStatements(template);
    const secrets = statements.filter((s) => mentions(s, 'secretsmanager:GetSecretValue'));

    expect(secrets).toHaveLength(1);
    expect(mentions(secrets, SASL_SECRET) && mentions(secrets, ROOT_CA)).toBe(true);
    expect(statements.filter((s) => mentions(s, '"kafka:') || mentions(s, '"kafka-cluster:'))).toEqual([]);
    expect(template.Resources.MskEventSourcePolicy).toBeUndefined();
  });

  it('takes the VPC, region and custom-domain Management endpoint from the environment', () => {
    const events = resource(template, 'EventsLambdaFunction').Properties;
    expect(events.VpcConfig).toEqual({
      SubnetIds: { 'Fn::Split': [',', 'subnet-0123456789abcdef0, subnet-0fedcba9876543210'] },
      SecurityGroupIds: { 'Fn::Split': [',', 'sg-0123456789abcdef0'] },
    });
    expect(template.Conditions?.HasManagementEndpointOverride).toEqual({
      'Fn::Not': [{ 'Fn::Equals': ['https://ws.example.com/realtime', ''] }],
    });
    const { Variables } = events.Environment as { Variables: Record<string, Json> };
    expect(Variables.WS_MANAGEMENT_ENDPOINT).toMatchObject({
      'Fn::If': ['HasManagementEndpointOverride', 'https://ws.example.com/realtime', expect.anything()],
    });
    const connect = resource(template, 'ConnectLambdaFunction').Properties.Environment as {
      Variables: Record<string, Json>;
    };
    expect(connect.Variables.WS_MANAGEMENT_ENDPOINT).toBe('https://ws.example.com/realtime');
    expect(mentions(template, 'us-east-1')).toBe(false);
  });
});

describe('serverless package --stage prod, no event source', () => {
  it('packages without an event source mapping when the standalone consumer delivers the events', async () => {
    const { template, artifacts } = await packageProd({ KAFKA_SOURCE: 'none' });

    expect(ofType(template, 'AWS::Lambda::EventSourceMapping')).toEqual([]);
    expect(resource(template, 'EventsLambdaFunction').Type).toBe('AWS::Lambda::Function');
    // One zip per function (package.individually).
    expect(artifacts).toEqual(
      expect.arrayContaining([
        ...FUNCTIONS.map((f) => `${f.toLowerCase()}.zip`),
        'cloudformation-template-update-stack.json',
      ]),
    );
  }, 150_000);
});
