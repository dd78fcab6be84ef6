/**
 * The local demo function (handlers/demo.ts) invoked with HTTP API (payload 2.0) events: the event's
 * method, path and (base64) body reach the page.
 */
import path from 'node:path';
import { createDemoHandler } from '../../../handlers/demo';
import { createTokenVerifier } from '../../../lib/auth/verifier';
import { createDemoPage } from '../../../scripts/demo-page';
import { httpApiEvent, lambdaContext } from '../../support/lambda-events';

const SECRET = 'test-secret-test-secret-test-secret';
const page = createDemoPage({ root: path.resolve(__dirname, '../../../demo'), wsPort: 9998, secret: SECRET });
const demo = createDemoHandler(() => page);
const ctx = () => lambdaContext('demo');

describe('demo function', () => {
  it('serves the page for GET / as text', async () => {
    const result = await demo(httpApiEvent('/'), ctx());

    expect(result).toMatchObject({ statusCode: 200, isBase64Encoded: false });
    expect(typeof result === 'object' && result.body).toContain('/demo/app.js');
  });

  it('answers 404 for a path outside the demo folder', async () => {
    const result = await demo(httpApiEvent('/demo/../package.json'), ctx());

    expect(result).toMatchObject({ statusCode: 404, isBase64Encoded: false });
  });

  it('decodes a base64 body: POST /demo/token mints a token the gateway verifier accepts', async () => {
    const event = {
      ...httpApiEvent('/demo/token', 'POST'),
      body: Buffer.from('{"user_id":"4","username":"John"}').toString('base64'),
      isBase64Encoded: true,
    };

    const result = await demo(event, ctx());
    const { token } = JSON.parse(typeof result === 'object' ? (result.body ?? '{}') : '{}') as {
      token: string;
    };

    expect(result).toMatchObject({ statusCode: 200 });
    expect(createTokenVerifier({ secret: SECRET }).verify(token)).toMatchObject({ userId: '4' });
  });
});
