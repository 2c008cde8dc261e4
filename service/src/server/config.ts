/**
 * Server settings from the environment. Every knob has a default that suits both
 * SageMaker (invocations time out at 60 s) and ECS behind an ALB (idle timeout 60 s).
 */

/** A setting the operator got wrong; the message names the variable and how to fix it. */
export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

export interface ServerConfig {
  port: number;
  host: string;
  /** Largest accepted request body; larger ones answer 413. */
  maxBodyBytes: number;
  /** Largest accepted image (width * height); passed to decoding. */
  maxPixels: number;
  /** Deadline for one request, from its first byte to its response. */
  requestTimeoutMs: number;
  /** Longer than the ALB's 60 s idle timeout, so the balancer closes idle connections first. */
  keepAliveTimeoutMs: number;
  /** After SIGTERM, how long in-flight requests may take before the process exits 1. */
  drainTimeoutMs: number;
  /**
   * After SIGTERM, how long the listener stays open, serving what arrives with
   * `Connection: close`, before it closes: connections already in the kernel's accept
   * queue would otherwise be reset. The load balancer has stopped routing here by then.
   */
  drainGraceMs: number;
  batchMaxTiles: number;
  batchMaxWaitMs: number;
  /** Tiles waiting for the runtime beyond which new invocations answer 503. */
  maxQueuedTiles: number;
  /** How often an EMF line goes to stdout; 0 turns the periodic lines off. */
  emfIntervalMs: number;
  /** Window of the anomaly-rate gauge on /metrics. */
  anomalyWindowMs: number;
  /** The `Service` dimension of the CloudWatch metrics. */
  serviceName: string;
}

export const defaultServerConfig: ServerConfig = {
  port: 8080,
  host: "0.0.0.0",
  maxBodyBytes: 16 * 1024 * 1024,
  // 16 MP in the binary sense, so a 4096 x 4096 cut-out fits.
  maxPixels: 4096 * 4096,
  // Below SageMaker's 60 s invocation timeout: the caller gets our JSON error, not theirs.
  requestTimeoutMs: 55_000,
  keepAliveTimeoutMs: 65_000,
  // ECS and SageMaker send SIGKILL 30 s after SIGTERM by default: finish before that.
  drainTimeoutMs: 25_000,
  drainGraceMs: 2_000,
  batchMaxTiles: 64,
  batchMaxWaitMs: 2,
  maxQueuedTiles: 16_384,
  emfIntervalMs: 60_000,
  anomalyWindowMs: 300_000,
  serviceName: "astrolens-inference",
};

type IntegerKey = {
  [K in keyof ServerConfig]: ServerConfig[K] extends number ? K : never;
}[keyof ServerConfig];

const integerVariables: ReadonlyArray<[string, IntegerKey, number]> = [
  ["PORT", "port", 0],
  ["ASTROLENS_MAX_BODY_BYTES", "maxBodyBytes", 1],
  ["ASTROLENS_MAX_PIXELS", "maxPixels", 1],
  ["ASTROLENS_REQUEST_TIMEOUT_MS", "requestTimeoutMs", 1],
  ["ASTROLENS_KEEP_ALIVE_TIMEOUT_MS", "keepAliveTimeoutMs", 1],
  ["ASTROLENS_DRAIN_TIMEOUT_MS", "drainTimeoutMs", 1],
  ["ASTROLENS_DRAIN_GRACE_MS", "drainGraceMs", 0],
  ["ASTROLENS_BATCH_MAX_TILES", "batchMaxTiles", 1],
  ["ASTROLENS_BATCH_MAX_WAIT_MS", "batchMaxWaitMs", 0],
  ["ASTROLENS_MAX_QUEUED_TILES", "maxQueuedTiles", 1],
  ["ASTROLENS_EMF_INTERVAL_MS", "emfIntervalMs", 0],
  ["ASTROLENS_ANOMALY_WINDOW_MS", "anomalyWindowMs", 1],
];

/** The environment variables `loadServerConfig` reads, for documentation and tests. */
export const serverEnvironmentVariables: readonly string[] = [
  ...integerVariables.map(([name]) => name),
  "ASTROLENS_HOST",
  "ASTROLENS_SERVICE_NAME",
];

/**
 * Read the server settings from `env`, falling back to {@link defaultServerConfig}.
 * Throws a {@link ConfigurationError} naming the variable when a value is not usable.
 */
export function loadServerConfig(env: Record<string, string | undefined>): ServerConfig {
  const config: ServerConfig = { ...defaultServerConfig };
  for (const [name, key, minimum] of integerVariables) {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === "") continue;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < minimum) {
      throw new ConfigurationError(
        `${name} must be a whole number >= ${minimum} (default ${defaultServerConfig[key]}), got "${raw}"`,
      );
    }
    config[key] = value;
  }
  if (config.port > 65_535) {
    throw new ConfigurationError(`PORT must be a TCP port (0-65535), got ${config.port}`);
  }
  const host = env.ASTROLENS_HOST?.trim();
  if (host) config.host = host;
  const serviceName = env.ASTROLENS_SERVICE_NAME?.trim();
  if (serviceName) config.serviceName = serviceName;
  return config;
}
