/**
 * MSK IAM authentication for kafkajs: SASL OAUTHBEARER with a token that AWS's
 * `aws-msk-iam-sasl-signer-js` signs with the process's AWS credentials (so neither the functions
 * nor the consumer need a Kafka password). kafkajs asks for a token on each connection and
 * re-authentication; tokens are valid for 15 minutes.
 */
import type { Credentials } from '../aws/sigv4';

/** The signer's entry point, as `aws-msk-iam-sasl-signer-js` exports it. */
export type MskTokenSigner = (options: {
  readonly region: string;
  readonly awsCredentialsProvider: () => Promise<Credentials>;
}) => Promise<{ readonly token: string; readonly expiryTime: number }>;

export interface MskIamTokenProviderOptions {
  readonly region: string;
  /** The process's credentials (e.g. a `CredentialsSource`: await `ready()`, then `get()`). */
  readonly credentials: () => Promise<Credentials>;
  /** Defaults to `generateAuthTokenFromCredentialsProvider`, loaded on first use. */
  readonly sign?: MskTokenSigner;
}

/** kafkajs's `oauthBearerProvider`. */
export type OauthBearerProvider = () => Promise<{ value: string }>;

/**
 * @example
 * const sasl = { mechanism: 'oauthbearer', oauthBearerProvider: mskIamTokenProvider({ region, credentials }) };
 */
export function mskIamTokenProvider({
  region,
  credentials,
  sign,
}: MskIamTokenProviderOptions): OauthBearerProvider {
  let signer = sign;
  return async () => {
    // Imported on first use: it loads the STS client, which only IAM-authenticated processes need.
    signer ??= (await import('aws-msk-iam-sasl-signer-js'))
      .generateAuthTokenFromCredentialsProvider as MskTokenSigner;
    const { token } = await signer({ region, awsCredentialsProvider: credentials });
    return { value: token };
  };
}
