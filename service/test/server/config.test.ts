import { describe, expect, it } from "vitest";
import { ConfigurationError, defaultServerConfig, loadServerConfig } from "../../src/server/config.js";

describe("loadServerConfig", () => {
  it("uses the defaults for an empty environment", () => {
    expect(loadServerConfig({})).toEqual(defaultServerConfig);
    expect(defaultServerConfig).toMatchObject({
      port: 8080,
      host: "0.0.0.0",
      maxBodyBytes: 16 * 1024 * 1024,
      maxPixels: 4096 * 4096,
      drainTimeoutMs: 25_000,
      drainGraceMs: 2_000,
      batchMaxTiles: 64,
      batchMaxWaitMs: 2,
      emfIntervalMs: 60_000,
    });
  });

  it("reads every variable", () => {
    const config = loadServerConfig({
      PORT: "9000",
      ASTROLENS_HOST: "127.0.0.1",
      ASTROLENS_MAX_BODY_BYTES: "1024",
      ASTROLENS_MAX_PIXELS: "100",
      ASTROLENS_REQUEST_TIMEOUT_MS: "500",
      ASTROLENS_KEEP_ALIVE_TIMEOUT_MS: "1000",
      ASTROLENS_DRAIN_TIMEOUT_MS: "2000",
      ASTROLENS_DRAIN_GRACE_MS: "300",
      ASTROLENS_BATCH_MAX_TILES: "8",
      ASTROLENS_BATCH_MAX_WAIT_MS: "0",
      ASTROLENS_MAX_QUEUED_TILES: "99",
      ASTROLENS_EMF_INTERVAL_MS: "0",
      ASTROLENS_ANOMALY_WINDOW_MS: "60000",
      ASTROLENS_SERVICE_NAME: "svc",
    });
    expect(config).toEqual({
      port: 9000,
      host: "127.0.0.1",
      maxBodyBytes: 1024,
      maxPixels: 100,
      requestTimeoutMs: 500,
      keepAliveTimeoutMs: 1000,
      drainTimeoutMs: 2000,
      drainGraceMs: 300,
      batchMaxTiles: 8,
      batchMaxWaitMs: 0,
      maxQueuedTiles: 99,
      emfIntervalMs: 0,
      anomalyWindowMs: 60_000,
      serviceName: "svc",
    });
  });

  it("names the variable and the expectation when a value is unusable", () => {
    expect(() => loadServerConfig({ ASTROLENS_MAX_BODY_BYTES: "16MiB" })).toThrow(
      'ASTROLENS_MAX_BODY_BYTES must be a whole number >= 1 (default 16777216), got "16MiB"',
    );
    expect(() => loadServerConfig({ ASTROLENS_BATCH_MAX_TILES: "0" })).toThrow(ConfigurationError);
    expect(() => loadServerConfig({ PORT: "70000" })).toThrow("PORT must be a TCP port");
  });
});
