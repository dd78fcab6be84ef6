import path from 'node:path';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { getConfigOrExit } from '../lib/config';
import { createDemoPage } from '../scripts/demo-page';

/**
 * The local demo page (`GET /`, `GET /demo/*`, `POST /demo/token`). This function is declared for
 * the `local` stage only (serverless.yml, deploy/demo-page-on.yml); serverless-offline runs it
 * from the project folder, where `demo/` is.
 */
const config = getConfigOrExit();
const page = createDemoPage({
  root: path.resolve(process.cwd(), 'demo'),
  wsPort: config.ws.port,
  secret: config.auth.secret,
});

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2>().handler(async (event) => {
  const body =
    event.body && event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  const res = await page.handle({ method: event.requestContext.http.method, path: event.rawPath, body });
  return { ...res, isBase64Encoded: res.headers['content-type'] === 'image/png' };
});
