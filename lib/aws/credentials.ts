/**
 * AWS credentials the way AWS hands them out, for the synchronous SigV4 signer.
 *
 * The signer runs on every push and must not wait or do I/O, so credentials are loaded ahead of
 * use and kept: `createCredentialsSource` resolves a provider once, answers `get()` from the cached
 * value, and refreshes it in the background before it expires (keeping the old value if a refresh
 * fails, until it expires). The provider is AWS's default chain (`fromNodeProviderChain` of
 * `@aws-sdk/credential-providers`): environment, SSO / shared config and credentials files,
 * web identity (EKS IRSA), ECS / EKS Pod Identity container credentials, instance profile.
 *
 * The dummy pair serverless-offline accepts is used only where every endpoint is a loopback one
 * *and* no credential source is configured in the environment; a configured source that fails is
 * an error, never a silent fallback.
 */
import type { Logger } from '../logger';
import {
  type Credentials,
  CredentialsError,
  type CredentialsProvider,
  isLoopbackEndpoint,
  LOCAL_CREDENTIALS,
} from './sigv4';

/** What an AWS SDK credential provider resolves to. */
export interface AwsIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/** Credentials loaded ahead of use. */
export interface CredentialsSource {
  /** The current credentials, synchronously (the signer's provider). Throws `CredentialsError` before `ready()` resolved. */
  readonly get: CredentialsProvider;
  /** Resolves once credentials are loaded; rejects with `CredentialsError` when none can be found. */
  ready(): Promise<void>;
  /** Where they come from, for logs: `chain`, `environment` or `local`. */
  readonly kind: 'chain' | 'environment' | 'local';
  /** Stops background refreshes. */
  close(): void;
}

export interface CredentialsSourceOptions {
  /** Resolves credentials (an AWS SDK provider); called once, then again before each expiry. */
  readonly provider: () => Promise<AwsIdentity>;
  /** Refresh this long before `expiration`. Default 5 minutes (what the SDK itself uses). */
  readonly refreshMarginMs?: number;
  readonly logger?: Logger;
  readonly kind?: CredentialsSource['kind'];
  /** Clock (epoch ms); tests pin it. */
  readonly now?: () => number;
}

const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;
/** Retry delay bounds after a failed refresh. */
const MIN_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;

const freeze = (c: AwsIdentity): Credentials =>
  Object.freeze(
    c.sessionToken
      ? { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken }
      : { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  );

/**
 * Loads credentials from `provider` and keeps them fresh.
 *
 * @example
 * const source = createCredentialsSource({ provider: fromNodeProviderChain() });
 * await source.ready();
 * const signer = createSigner({ service: 'execute-api', region, credentials: source.get });
 */
export function createCredentialsSource({
  provider,
  refreshMarginMs = DEFAULT_REFRESH_MARGIN_MS,
  logger,
  kind = 'chain',
  now = Date.now,
}: CredentialsSourceOptions): CredentialsSource {
  let current: Credentials | undefined;
  let expiresAt = Number.POSITIVE_INFINITY;
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let firstLoad: Promise<void> | undefined;

  const schedule = (delayMs: number): void => {
    if (closed || !Number.isFinite(delayMs)) return;
    clearTimeout(timer);
    // Unref'd: a pending refresh never keeps a process (or a test) alive.
    timer = setTimeout(() => void refresh(), Math.max(MIN_RETRY_MS, delayMs)).unref();
  };

  const refresh = (): Promise<void> => {
    inFlight ??= provider()
      .then((identity) => {
        if (!identity?.accessKeyId || !identity.secretAccessKey)
          throw new CredentialsError('the credential provider returned no access key');
        current = freeze(identity);
        expiresAt = identity.expiration ? identity.expiration.getTime() : Number.POSITIVE_INFINITY;
        schedule(expiresAt - refreshMarginMs - now());
      })
      .catch((err: unknown) => {
        if (current === undefined) {
          throw err instanceof CredentialsError
            ? err
            : new CredentialsError(
                `no AWS credentials: ${err instanceof Error ? err.message : String(err)}`,
                {
                  cause: err,
                },
              );
        }
        // Keep signing with what we have until it expires; try again sooner and sooner.
        const left = expiresAt - now();
        logger?.warn('refreshing AWS credentials failed; keeping the current ones', {
          err,
          expiresInMs: left,
        });
        schedule(Math.min(MAX_RETRY_MS, left / 2));
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  return {
    kind,
    get: () => {
      if (current === undefined)
        throw new CredentialsError('AWS credentials are not loaded yet (await ready())');
      // A frozen container (Lambda) may wake past the refresh time: start one without waiting for it.
      if (now() >= expiresAt - refreshMarginMs && inFlight === undefined && !closed) void refresh();
      return current;
    },
    ready: () => {
      firstLoad ??= refresh();
      return firstLoad;
    },
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
  };
}

/** A source that already holds its credentials. */
export function staticCredentialsSource(
  credentials: Credentials,
  kind: CredentialsSource['kind'],
): CredentialsSource {
  return { kind, get: () => credentials, ready: async () => undefined, close: () => undefined };
}

type Env = Readonly<Record<string, string | undefined>>;

/** Variables that configure a credential source; with any of them set, the dummy pair is never used. */
export const CREDENTIAL_SOURCE_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_PROFILE',
] as const;

/**
 * The credentials that need no provider, if any, for calls to `endpoint`:
 * - a static key pair in the environment (what Lambda sets for the function's role; the first link
 *   of AWS's chain anyway, and just as static there) — used as is, no SDK module loaded on the cold start;
 * - the dummy pair, when `endpoint` is loopback and no credential source is configured.
 * `undefined` means: use the provider chain.
 */
export function staticCredentialsFor(
  endpoint: string,
  env: Env = process.env,
): CredentialsSource | undefined {
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  const sessionToken = env['AWS_SESSION_TOKEN'];
  if (accessKeyId && secretAccessKey) {
    return staticCredentialsSource(
      freeze(
        sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey },
      ),
      'environment',
    );
  }
  const configured = CREDENTIAL_SOURCE_VARIABLES.some((name) => Boolean(env[name]));
  if (!configured && isLoopbackEndpoint(endpoint)) return staticCredentialsSource(LOCAL_CREDENTIALS, 'local');
  return undefined;
}

/**
 * AWS's default provider chain (`fromNodeProviderChain`), cached and refreshed before expiry. One
 * per process: every endpoint that needs it shares it.
 */
export function createChainCredentialsSource(
  options: { readonly logger?: Logger; readonly chain?: () => Promise<AwsIdentity> } = {},
): CredentialsSource {
  return createCredentialsSource({ provider: options.chain ?? nodeProviderChain(), logger: options.logger });
}

/** `fromNodeProviderChain()`, imported on first use so processes that never need it never load it. */
function nodeProviderChain(): () => Promise<AwsIdentity> {
  let provider: (() => Promise<AwsIdentity>) | undefined;
  return async () => {
    if (!provider) {
      const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
      provider = fromNodeProviderChain();
    }
    return provider();
  };
}
