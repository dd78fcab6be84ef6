import path from 'node:path';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { getConfigOrExit } from '../lib/config';
import { createDemoPage } from '../scripts/demo-page';

/** What the demo function serves (scripts/demo-page.ts). */
export type DemoPage = ReturnType<typeof createDemoPage>;

/**
 * The local demo page (`GET /`, `GET /demo/*`, `POST /demo/token`), on the page `page()` returns
 * (asked for on each invocation; tests pass their own). This function is declared for the `local`
 * stage only (serverless.yml, deploy/demo-page-on.yml).
 */
export function createDemoHandler(page: () => DemoPage) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2>().handler(async (event) => {
    const body =
      event.body && event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    const res = await page().handle({ method: event.requestContext.http.method, path: event.rawPath, body });
    return { ...res, isBase64Encoded: res.headers['content-type'] === 'image/png' };
  });
}

let containerPage: DemoPage | undefined;

/** serverless-offline runs it from the project folder, where `demo/` is; created on first use. */
export const handler = createDemoHandler(() => {
  if (!containerPage) {
    const config = getConfigOrExit();
    containerPage = createDemoPage({
      root: path.resolve(process.cwd(), 'demo'),
      wsPort: config.ws.port,
      secret: config.auth.secret,
    });
  }
  return containerPage;
});
