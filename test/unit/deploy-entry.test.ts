import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ReleaseDrivers } from "../../src/deploy/drivers.js";
import {
  deploy,
  readGateMetrics,
  readModelContract,
  renderEnvironmentStatus,
  rollback,
} from "../../src/deploy/entry.js";
import type { LedgerStore, ReleaseRecord } from "../../src/deploy/ledger.js";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";

const IMAGE = `127.0.0.1:5055/astrolens-local/inference@sha256:${"a".repeat(64)}`;
const V2 = "service/models/v2/manifest.json";

/**
 * Drivers that fail the test if anything reaches AWS: a bad input must be refused
 * before the first call. Only the ledger answers, empty, for `resume`.
 */
function noAws(): ReleaseDrivers {
  const never = () => {
    throw new Error("AWS was called for an input that should have been refused first");
  };
  const ledger: LedgerStore = {
    acquireLock: never,
    takeOverLock: never,
    heartbeat: never,
    releaseLock: never,
    readLock: async () => undefined,
    putRecord: never,
    getRecord: async () => undefined,
    listRecords: async () => [],
  };
  const target = new Proxy({}, { get: () => never });
  return {
    images: target as ReleaseDrivers["images"],
    ecs: target as ReleaseDrivers["ecs"],
    sagemaker: target as ReleaseDrivers["sagemaker"],
    alarms: target as ReleaseDrivers["alarms"],
    smoke: target as ReleaseDrivers["smoke"],
    ledger,
  };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigurationError");
}

const base = () => ({
  environment: "local",
  image: IMAGE,
  modelManifest: V2,
  logger: createMemoryLogger(),
  coordinator: { drivers: noAws() },
});

describe("deploy: inputs checked before anything reaches AWS", () => {
  it("refuses an image by tag, naming the input and what to pass", async () => {
    const message = await refusal(
      deploy({ ...base(), image: "127.0.0.1:5055/astrolens-local/inference:v2" }),
    );
    expect(message).toContain('input "image": expected <registry>/<repository>@sha256:<64 hex>');
    expect(message).toContain("tags are refused");
    expect(message).toContain("nothing was changed");
  });

  it("reports every bad input at once, by its action name", async () => {
    const message = await refusal(
      deploy({
        ...base(),
        sagemakerStrategy: "blue-green",
        bakeMinutes: "ten",
        wait: "forever",
        dryRun: "yes",
        testUrl: "alb:8080",
      }),
    );
    expect(message).toContain(
      'input "sagemaker-strategy": expected one of canary, linear, all-at-once (got "blue-green")',
    );
    expect(message).toContain('input "bake-minutes"');
    expect(message).toContain('input "wait": expected "complete" or "bake" (got "forever")');
    expect(message).toContain('input "dry-run": expected "true" or "false" (got "yes")');
    expect(message).toContain('input "test-url"');
  });

  it("refuses a bake outside ECS's 0-1440 minutes", async () => {
    expect(await refusal(deploy({ ...base(), bakeMinutes: 1441 }))).toContain(
      'input "bake-minutes": expected 0 to 1440 minutes',
    );
  });

  it("refuses an image whose scan failed", async () => {
    expect(await refusal(deploy({ ...base(), scanVerdict: "fail" }))).toContain(
      'input "scan-verdict": the image scan failed',
    );
  });

  it("needs an image unless it resumes; resume with nothing in flight reports the ledger", async () => {
    expect(await refusal(deploy({ ...base(), image: "" }))).toContain(
      'input "image": is required to start a release',
    );
    const { result, outputs } = await deploy({ ...base(), image: "", resume: "true" });
    expect(result.status).toBe("no-op");
    expect(result.reason).toContain("Nothing in flight in local");
    expect(outputs.outcome).toBe("succeeded");
  });

  it("refuses a missing or invalid model manifest", async () => {
    const missing = await refusal(deploy({ ...base(), modelManifest: "service/models/v9/manifest.json" }));
    expect(missing).toContain('input "model-manifest": service/models/v9/manifest.json cannot be read');
    const dir = mkdtempSync(join(tmpdir(), "deploy-entry-"));
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ name: "astrolens" }));
    const invalid = await refusal(deploy({ ...base(), modelManifest: join(dir, "manifest.json") }));
    expect(invalid).toContain('input "model-manifest"');
    expect(invalid).toContain("is not a valid model manifest");
  });

  it("refuses an unknown environment name", async () => {
    expect(await refusal(deploy({ ...base(), environment: "Prod!" }))).toContain(
      'environment "Prod!" is not a valid name',
    );
  });
});

describe("the model and the gate as the ledger keeps them", () => {
  it("readModelContract names the model by the manifest file's sha256", () => {
    const contract = readModelContract(V2);
    expect(contract.version).toBe("2.0.0");
    expect(contract.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("readGateMetrics keeps the verdict and whether it blocks; refuses another file", () => {
    const dir = mkdtempSync(join(tmpdir(), "deploy-entry-"));
    const file = join(dir, "metrics.json");
    writeFileSync(
      file,
      JSON.stringify({ verdict: "pass", blocksRelease: false, accuracy: { candidate: 0.958 } }),
    );
    expect(readGateMetrics(file)).toEqual({
      verdict: "pass",
      blocksRelease: false,
      metrics: { verdict: "pass", blocksRelease: false, accuracy: { candidate: 0.958 } },
    });
    writeFileSync(file, JSON.stringify({ accuracy: 1 }));
    expect(() => readGateMetrics(file)).toThrow(/is not accuracy-gate's metrics file/);
  });

  it("a blocking gate verdict stops the release before AWS is asked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "deploy-entry-"));
    const file = join(dir, "metrics.json");
    writeFileSync(file, JSON.stringify({ verdict: "fail", blocksRelease: true }));
    expect(await refusal(deploy({ ...base(), gateMetricsFile: file }))).toContain(
      'input "gate-metrics-file": the accuracy gate\'s verdict "fail" blocks the release',
    );
  });
});

describe("rollback: inputs", () => {
  it("needs an environment", async () => {
    expect(
      await refusal(
        rollback({ environment: "", logger: createMemoryLogger(), coordinator: { drivers: noAws() } }),
      ),
    ).toContain('input "environment": is required');
  });

  it("refuses when the ledger holds nothing to roll back to", async () => {
    const message = await refusal(
      rollback({ environment: "local", logger: createMemoryLogger(), coordinator: { drivers: noAws() } }),
    );
    expect(message).toContain("holds no succeeded release to roll back from; nothing was changed");
  });
});

describe("renderEnvironmentStatus", () => {
  it("shows the release in flight, the lock, both targets and the alarms", () => {
    const text = renderEnvironmentStatus({
      environment: "local",
      lock: {
        environment: "local",
        releaseId: "#lock",
        holder: "20261126T100000Z-aaaaaaaaaaaa",
        digest: `sha256:${"a".repeat(64)}`,
        startedAt: "2026-11-26T10:00:00.000Z",
        heartbeatAt: "2026-11-26T10:01:00.000Z",
        owner: "o",
        detached: true,
      },
      release: {
        releaseId: "20261126T100000Z-aaaaaaaaaaaa",
        kind: "release",
        outcome: "in-progress",
        stage: "baking",
        reason: "The release is baking.",
        imageUri: IMAGE,
        digest: `sha256:${"a".repeat(64)}`,
        model: { version: "2.0.0", manifestSha256: "b".repeat(64) },
      } as ReleaseRecord,
      ecs: {
        service: "astrolens-local-inference",
        taskDefinitionArn: "arn:td:5",
        deploymentController: "ECS",
        strategy: "BLUE_GREEN",
        bakeTimeInMinutes: 1,
        inFlight: { arn: "arn:dep", status: "IN_PROGRESS", lifecycleStage: "BAKE_TIME" },
      },
      sagemaker: {
        endpoint: "astrolens-local-inference",
        status: "Updating",
        endpointConfigName: "old",
        pendingEndpointConfigName: "new",
        pendingStatus: ["Baking Baking for 60 seconds"],
      },
      alarms: [{ name: "a-5xx", state: "ALARM", reason: "5xx > 5%" }],
    });
    expect(text).toContain("release    20261126T100000Z-aaaaaaaaaaaa (release) IN FLIGHT at stage baking");
    expect(text).toContain("(detached at the bake: resume to finish)");
    expect(text).toContain("deployment arn:dep IN_PROGRESS at BAKE_TIME");
    expect(text).toContain("sagemaker  astrolens-local-inference Updating on old");
    expect(text).toContain("deploying new: Baking Baking for 60 seconds");
    expect(text).toContain("alarm      ALARM             a-5xx (5xx > 5%)");
  });
});
