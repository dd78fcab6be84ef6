import type { Config } from '../config';

export interface RequestContextLike {
  readonly domainName?: string;
  readonly stage?: string;
}

/**
 * The Management API endpoint for a connection: from config when set (serverless-offline:
 * `http://127.0.0.1:<websocketPort>`, no stage; or a custom domain), otherwise derived from the
 * request context as AWS documents it (`https://{domainName}/{stage}`).
 */
export function managementEndpoint(config: Config, ctx: RequestContextLike | undefined): string {
  if (config.aws.managementEndpoint) return config.aws.managementEndpoint;
  if (!ctx?.domainName || !ctx.stage) {
    throw new Error('WS_MANAGEMENT_ENDPOINT is not set and the request context has no domainName/stage');
  }
  return `https://${ctx.domainName}/${ctx.stage}`;
}
