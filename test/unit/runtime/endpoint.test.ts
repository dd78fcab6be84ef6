/**
 * The Management API endpoint the handlers push through: a configured one (serverless-offline, a
 * custom domain) wins; otherwise it is derived from the request context exactly as AWS documents it.
 */
import { loadConfig } from '../../../lib/config';
import { managementEndpoint } from '../../../lib/runtime/endpoint';

/** What API Gateway puts in the request context of a WebSocket event on its default domain. */
const AWS_CONTEXT = { domainName: 'abc123defg.execute-api.eu-west-1.amazonaws.com', stage: 'prod' };

describe('managementEndpoint', () => {
  it('derives https://{domainName}/{stage} from the request context when no endpoint is configured', () => {
    const config = loadConfig({});

    expect(managementEndpoint(config, AWS_CONTEXT)).toBe(
      'https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod',
    );
  });

  it('treats an empty WS_MANAGEMENT_ENDPOINT (what serverless.yml sets on AWS stages) as not configured', () => {
    const config = loadConfig({ WS_MANAGEMENT_ENDPOINT: '' });

    expect(managementEndpoint(config, { domainName: 'ws.example.com', stage: 'dev' })).toBe(
      'https://ws.example.com/dev',
    );
  });

  it('uses a configured custom-domain endpoint instead of the request context', () => {
    // Behind a custom domain the context holds the custom domain and the API stage, which is not the
    // base-path mapping; the configured endpoint is the one that works.
    const config = loadConfig({ WS_MANAGEMENT_ENDPOINT: 'https://ws.example.com/realtime/' });

    expect(managementEndpoint(config, { domainName: 'ws.example.com', stage: 'prod' })).toBe(
      'https://ws.example.com/realtime',
    );
  });

  it('uses the configured serverless-offline endpoint, which has no stage, even with a context', () => {
    const config = loadConfig({ WS_MANAGEMENT_ENDPOINT: 'http://127.0.0.1:9998' });

    expect(managementEndpoint(config, { domainName: 'localhost', stage: 'local' })).toBe(
      'http://127.0.0.1:9998',
    );
  });

  it.each([
    ['no request context', undefined],
    ['a context without a domain name', { stage: 'prod' }],
    ['a context without a stage', { domainName: 'abc123defg.execute-api.eu-west-1.amazonaws.com' }],
  ])('fails naming WS_MANAGEMENT_ENDPOINT with %s and nothing configured', (_case, ctx) => {
    const config = loadConfig({});

    expect(() => managementEndpoint(config, ctx)).toThrow(/WS_MANAGEMENT_ENDPOINT/);
  });
});
