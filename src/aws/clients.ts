import { ConfigurationError } from "../errors.js";
import { TOOLKIT_VERSION } from "../version.js";

export interface AwsOptions {
  /** An explicit region; otherwise `AWS_REGION` / `AWS_DEFAULT_REGION`. */
  region?: string;
  /** Attempts per call (the SDK's own retry strategy does the waiting). */
  maxAttempts?: number;
  env?: NodeJS.ProcessEnv;
}

export interface ClientConfig {
  region: string;
  endpoint?: string;
  maxAttempts: number;
  retryMode: "standard" | "adaptive";
  customUserAgent: [string, string][];
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * The configuration every SDK v3 client in the toolkit is built with: the region,
 * `AWS_ENDPOINT_URL` when set (the local AWS; unset means real AWS), the SDK's
 * adaptive retries, and our name and version in the user agent so calls can be
 * told apart in CloudTrail.
 */
export function awsClientConfig(options: AwsOptions = {}): ClientConfig {
  const env = options.env ?? process.env;
  const region = options.region || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new ConfigurationError(
      'no AWS region: set the "aws-region" input or AWS_REGION (for the local AWS, run `astrolens-release local up` and load .local/env)',
    );
  }
  const endpoint = env.AWS_ENDPOINT_URL || undefined;
  // Against the local AWS an unimplemented call answers 500; retrying it only hides that.
  const maxAttempts = options.maxAttempts ?? (endpoint ? 2 : 5);
  // An explicit env carries its own keys (a second local AWS, a test); otherwise the
  // SDK's default chain finds credentials (env, profile, OIDC web identity, ...).
  const credentials =
    options.env && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }),
        }
      : undefined;
  return {
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials && { credentials }),
    maxAttempts,
    retryMode: "adaptive",
    customUserAgent: [["astrolens-release", TOOLKIT_VERSION]],
  };
}

/** Builds any SDK v3 client with {@link awsClientConfig}. */
export function createClient<C>(Client: new (config: ClientConfig) => C, options: AwsOptions = {}): C {
  return new Client(awsClientConfig(options));
}

/** The AWS error code of an SDK v3 error (`name`), or undefined for anything else. */
export function awsErrorName(err: unknown): string | undefined {
  if (err && typeof err === "object" && "$metadata" in err && "name" in err) return String(err.name);
  return undefined;
}
