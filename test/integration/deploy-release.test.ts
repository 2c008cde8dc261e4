import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deploy, environmentStatus, renderEnvironmentStatus } from "../../src/deploy/entry.js";
import type { ReleaseRecord } from "../../src/deploy/ledger.js";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import {
  candidateImage,
  consumeSageMakerFailure,
  digestOf,
  ENVIRONMENT,
  failNextSageMakerUpdate,
  type LiveTargets,
  ledger,
  liveTargets,
  loadLocalEnv,
  POLL_MS,
  paths,
  readRecord,
  releaseOptions,
  resources,
  restoreBaseline,
  setAlarm,
  V2_MANIFEST,
  waitForStage,
  wrongShapeImage,
} from "../fixtures/deploy/local-release.js";

/**
 * One release, two targets, end to end against the local AWS: ECS blue/green with the
 * smoke-test Lambda as a real lifecycle hook against a really running green, SageMaker
 * UpdateEndpoint with guardrails, CloudWatch alarms, the DynamoDB ledger. Each test
 * starts from the baseline release (model v1) on both targets and ends by reading both
 * targets back through the AWS APIs and the ledger record.
 */

const logger = createMemoryLogger();
const v2Sha256 = createHash("sha256").update(readFileSync(V2_MANIFEST)).digest("hex");
let candidate: string;
let baseline: LiveTargets;

/** Both targets, as AWS reports them, serve `expected` with nothing in flight. */
function expectSettledOn(
  live: LiveTargets,
  expected: { taskDefinitionArn: string; endpointConfigName: string },
) {
  expect(live.ecsInFlight).toEqual([]);
  expect(live.taskDefinitionArn).toBe(expected.taskDefinitionArn);
  expect(live.endpointStatus).toBe("InService");
  expect(live.pending).toBeUndefined();
  expect(live.endpointConfigName).toBe(expected.endpointConfigName);
}

/** The ledger's lock is gone: the release let go of the environment. */
async function expectUnlocked() {
  expect(await ledger().readLock(ENVIRONMENT)).toBeUndefined();
}

/** The smoke-test Lambda's own verdict for one ECS deployment, from its log. */
function hookVerdict(deploymentArn: string): {
  ok: boolean;
  checks: { name: string; ok: boolean; detail: string }[];
} {
  const log = readFileSync(
    join(paths.state, "runtime/lambda/logs", `${resources.smokeFunction}.log`),
    "utf8",
  );
  const line = log
    .split("\n")
    .filter((l) => l.includes(`"resourceArn":"${deploymentArn}"`) && l.includes('"verdict"'))
    .pop();
  if (!line) throw new Error(`the smoke-test Lambda logged no verdict for ${deploymentArn}`);
  return (JSON.parse(line.slice(line.indexOf("{"))) as { verdict: ReturnType<typeof hookVerdict> }).verdict;
}

beforeAll(async () => {
  loadLocalEnv();
  candidate = await candidateImage(logger);
}, 600_000);

beforeEach(async () => {
  baseline = await restoreBaseline(logger);
}, 300_000);

afterAll(async () => {
  await restoreBaseline(logger);
}, 300_000);

describe("a release to the local environment", () => {
  it("happy path: both targets on the new version, the ledger complete; running it again is a no-op", async () => {
    const started = Date.now();
    const { result, outputs } = await deploy({
      ...(await releaseOptions(logger)),
      image: candidate,
      modelManifest: V2_MANIFEST,
      bakeMinutes: 1,
      scanVerdict: "pass",
    });
    const seconds = (Date.now() - started) / 1000;
    expect(result.status, result.reason).toBe("succeeded");
    expect(outputs.outcome).toBe("succeeded");

    const live = await liveTargets();
    expectSettledOn(live, {
      taskDefinitionArn: outputs["task-definition-arn"],
      endpointConfigName: outputs["endpoint-config"],
    });
    expect(live.taskDefinitionArn).not.toBe(baseline.taskDefinitionArn);
    expect(live.ecsImage).toBe(candidate);
    expect(live.endpointImage).toBe(candidate);
    expect(live.failureReason).toBeUndefined();

    const record = await readRecord(outputs["release-id"]);
    expect(record).toMatchObject({
      kind: "release",
      outcome: "succeeded",
      stage: "done",
      imageUri: candidate,
      digest: digestOf(candidate),
      model: { version: "2.0.0", manifestSha256: v2Sha256 },
      provenance: { scanVerdict: "pass" },
      ecs: {
        previousTaskDefinitionArn: baseline.taskDefinitionArn,
        taskDefinitionArn: live.taskDefinitionArn,
      },
      sagemaker: {
        previousEndpointConfigName: baseline.endpointConfigName,
        endpointConfigName: live.endpointConfigName,
      },
      smoke: { ecs: { ok: true, hookStatus: "SUCCEEDED" }, sagemaker: { ok: true, modelVersion: "2.0.0" } },
      alarms: { watched: Object.values(resources.alarms), events: [] },
    });
    expect(record.ecs.deploymentArn).toMatch(/:service-deployment\/astrolens-local\//);
    expect(record.smoke.sagemaker?.checks?.every((c) => c.ok)).toBe(true);
    expect(Object.keys(record.timings)).toEqual([
      "started",
      "resources-ready",
      "ecs-deploying",
      "sagemaker-deploying",
      "baking",
    ]);
    expect(record.finishedAt).toBeDefined();
    // The smoke test the hook ran was the Lambda's full verdict against green.
    expect(hookVerdict(record.ecs.deploymentArn ?? "").ok).toBe(true);
    await expectUnlocked();
    logger.info(`happy path: ${seconds.toFixed(1)} s`);

    // A finished release, run again, changes nothing.
    const again = await deploy({
      ...(await releaseOptions(logger)),
      image: candidate,
      modelManifest: V2_MANIFEST,
      bakeMinutes: 1,
    });
    expect(again.result.status).toBe("no-op");
    expect(again.outputs).toMatchObject({ outcome: "succeeded", "release-id": outputs["release-id"] });
    expectSettledOn(await liveTargets(), {
      taskDefinitionArn: live.taskDefinitionArn,
      endpointConfigName: live.endpointConfigName,
    });
  });

  it("an alarm set to ALARM during the bake: both targets back on the previous version, the ledger naming the alarm", async () => {
    const alarm = resources.alarms.albTarget5xxRate;
    const reason = "Threshold Crossed: itest, 5xx rate 0.31 > 0.05";
    try {
      const release = deploy({
        ...(await releaseOptions(logger)),
        image: candidate,
        modelManifest: V2_MANIFEST,
        bakeMinutes: 2,
      });
      const baking = await waitForStage(["baking"]);
      await setAlarm(alarm, "ALARM", reason);
      const firedAt = Date.now();
      const { result, outputs } = await release;
      expect(result.status, result.reason).toBe("rolled-back");
      expect(outputs.outcome).toBe("rolled-back");
      expect(outputs.reason).toContain(`alarm ${alarm} fired during the bake (${reason})`);

      expectSettledOn(await liveTargets(), baseline);
      expect(outputs["task-definition-arn"]).toBe(baseline.taskDefinitionArn);
      expect(outputs["endpoint-config"]).toBe(baseline.endpointConfigName);

      const record = await readRecord(baking.releaseId);
      expect(record.outcome).toBe("rolled-back");
      expect(record.rollback?.trigger).toBe("alarm");
      expect(record.rollback?.cause).toContain(alarm);
      expect(record.alarms.events).toContainEqual(
        expect.objectContaining({ name: alarm, from: "OK", to: "ALARM", reason }),
      );
      expect(record.ecs.rollback?.state).toBe("done");
      expect(record.sagemaker.rollback?.state).toBe("done");
      expect(record.rollback?.alarms).toEqual([alarm]);
      // Seen within a poll of the alarm; ECS asked to go back at once. SageMaker, mid-update,
      // turns back by itself on the same alarm (one of its auto-rollback alarms).
      const detectedAfter = Date.parse(record.rollback?.detectedAt ?? "") - firedAt;
      expect(detectedAfter).toBeLessThan(POLL_MS + 1_000);
      const ecsRequestedAfter = Date.parse(record.rollback?.requests.ecs ?? "") - firedAt;
      expect(ecsRequestedAfter).toBeLessThan(POLL_MS + 1_000);
      expect(record.rollback?.latencyMs).toBeLessThan(POLL_MS + 1_000);
      expect(record.sagemaker.rollback?.result).toBe("unchanged");
      await expectUnlocked();
    } finally {
      await setAlarm(alarm, "OK", "itest: reset");
    }
  });

  it("a failing smoke test (the service answers the wrong shape): rolled back before production traffic moved, SageMaker untouched", async () => {
    const wrongShape = await wrongShapeImage(candidate, logger);
    const { result, outputs } = await deploy({
      ...(await releaseOptions(logger)),
      image: wrongShape,
      modelManifest: V2_MANIFEST,
      bakeMinutes: 1,
    });
    expect(result.status, result.reason).toBe("rolled-back");
    expect(outputs.reason).toContain(
      "the smoke test failed against ECS green before production traffic moved",
    );
    expect(outputs.reason).toContain("SageMaker was never updated");

    const live = await liveTargets();
    expectSettledOn(live, baseline);
    // SageMaker was never asked: the endpoint was not modified since the baseline.
    expect(live.endpointModified?.getTime()).toBe(baseline.endpointModified?.getTime());

    const record = await readRecord(outputs["release-id"]);
    expect(record.rollback?.trigger).toBe("ecs-smoke");
    expect(record.smoke.ecs).toMatchObject({ ok: false, hookStatus: "FAILED" });
    expect(record.smoke.sagemaker).toBeUndefined();
    expect(record.sagemaker.requestedAt).toBeUndefined();
    expect(record.sagemaker.rollback?.result).toBe("not-deployed");
    // ECS rolled back by itself on the hook's FAILED, from the test-traffic stage.
    expect(record.ecs.rollback?.action).toBe("native");
    expect(record.ecs.status).toMatch(/POST_TEST_TRAFFIC_SHIFT|ROLLBACK/);
    expect(record.ecs.status).not.toMatch(/PRODUCTION_TRAFFIC_SHIFT|BAKE_TIME|CLEAN_UP/);
    // The Lambda's verdict: the identity was right, the response shape was not.
    const verdict = hookVerdict(record.ecs.deploymentArn ?? "");
    expect(verdict.ok).toBe(false);
    expect(verdict.checks.find((c) => c.name === "ping")?.ok).toBe(true);
    expect(verdict.checks.filter((c) => c.name.startsWith("invoke ")).every((c) => !c.ok)).toBe(true);
    await expectUnlocked();
  });

  it("SageMaker rolling back on its own: ECS is rolled back too, the release reported rolled back with SageMaker's reason", async () => {
    const failure = "itest: the new production variant failed its health check";
    await failNextSageMakerUpdate(failure);
    let outcome: Awaited<ReturnType<typeof deploy>> | undefined;
    try {
      outcome = await deploy({
        ...(await releaseOptions(logger)),
        image: candidate,
        modelManifest: V2_MANIFEST,
        bakeMinutes: 1,
      });
    } finally {
      const used = outcome && (await readRecord(outcome.outputs["release-id"])).sagemaker.requestedAt;
      if (!used) await consumeSageMakerFailure();
    }
    const { result, outputs } = outcome;
    expect(result.status, result.reason).toBe("rolled-back");
    expect(outputs.outcome).toBe("rolled-back");
    expect(outputs.reason).toContain("SageMaker rolled the update back on its own");
    expect(outputs.reason).toContain(failure);

    const live = await liveTargets();
    expectSettledOn(live, baseline);
    expect(live.failureReason).toContain(failure);

    const record = await readRecord(outputs["release-id"]);
    expect(record.rollback?.trigger).toBe("sagemaker");
    // SageMaker was already back; ECS was asked to go back after SageMaker's failure was seen.
    expect(record.sagemaker.rollback?.result).toBe("unchanged");
    expect(record.rollback?.requests.ecs).toBeDefined();
    expect(["stopped", "native", "redeployed"]).toContain(record.ecs.rollback?.action);
    expect(record.rollback?.latencyMs).toBeLessThan(POLL_MS + 1_000);
    await expectUnlocked();
  });

  it("wait: bake returns once the bake starts, the status shows it, and resume finishes it", async () => {
    const first = await deploy({
      ...(await releaseOptions(logger)),
      image: candidate,
      modelManifest: V2_MANIFEST,
      bakeMinutes: 1,
      wait: "bake",
    });
    expect(first.outputs.outcome, first.result.reason).toBe("baking");
    expect(first.outputs.reason).toContain(
      "ECS and SageMaker roll back natively on any release alarm meanwhile",
    );
    const status = await environmentStatus(ENVIRONMENT);
    expect(status.lock).toMatchObject({ holder: first.outputs["release-id"], detached: true });
    expect(status.release).toMatchObject({ releaseId: first.outputs["release-id"], stage: "baking" });
    expect(renderEnvironmentStatus(status)).toContain(
      `release    ${first.outputs["release-id"]} (release) IN FLIGHT at stage baking`,
    );

    // A later step: resume (no image needed) watches the rest of the bake.
    const second = await deploy({ ...(await releaseOptions(logger)), resume: true });
    expect(second.result.status, second.result.reason).toBe("succeeded");
    expect(second.outputs["release-id"]).toBe(first.outputs["release-id"]);
    const live = await liveTargets();
    expectSettledOn(live, {
      taskDefinitionArn: second.outputs["task-definition-arn"],
      endpointConfigName: second.outputs["endpoint-config"],
    });
    expect(live.ecsImage).toBe(candidate);
    const record = await readRecord(first.outputs["release-id"]);
    expect(record.outcome).toBe("succeeded");
    expect(record.bake?.detachedAt).toBeDefined();
    await expectUnlocked();
  });

  it("two releases to one environment at once: the second is refused, naming the first", async () => {
    const first = deploy({
      ...(await releaseOptions(logger)),
      image: candidate,
      modelManifest: V2_MANIFEST,
      bakeMinutes: 1,
    });
    const holder = await waitForStage(["resources-ready", "ecs-deploying", "sagemaker-deploying"]);
    const before = (await ledger().listRecords(ENVIRONMENT, 50)).map((r) => r.releaseId);

    let refused: unknown;
    try {
      await deploy({
        ...(await releaseOptions(logger)),
        image: candidate,
        modelManifest: V2_MANIFEST,
        bakeMinutes: 0,
      });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigurationError);
    expect((refused as Error).message).toContain(`is locked by release ${holder.releaseId}`);
    expect((refused as Error).message).toContain(digestOf(candidate));
    // The refused one left no trace.
    expect((await ledger().listRecords(ENVIRONMENT, 50)).map((r) => r.releaseId)).toEqual(before);

    const { result, outputs } = await first;
    expect(result.status, result.reason).toBe("succeeded");
    expect(outputs["release-id"]).toBe(holder.releaseId);
    const live = await liveTargets();
    expectSettledOn(live, {
      taskDefinitionArn: outputs["task-definition-arn"],
      endpointConfigName: outputs["endpoint-config"],
    });
    expect(live.ecsImage).toBe(candidate);
    expect((await readRecord(holder.releaseId)).outcome).toBe("succeeded");
    await expectUnlocked();
  });
});

describe("the CLI killed with SIGKILL mid-release, then run again", () => {
  const cli = join(paths.root, "dist/cli/index.js");
  const args = () => [
    "deploy",
    "--env",
    ENVIRONMENT,
    "--image",
    candidate,
    "--model-manifest",
    V2_MANIFEST,
    "--bake-minutes",
    "1",
  ];

  function run(argv: string[]) {
    const child = spawn(process.execPath, [cli, ...argv], {
      cwd: paths.root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return { child, exited, output: () => output };
  }

  for (const stage of ["ecs-deploying", "sagemaker-deploying"] as const) {
    it(`killed at ${stage}: the re-run resumes it (or rolls it back), never a third state`, async () => {
      const first = run(args());
      const inFlight = await waitForStage([stage], 120_000);
      first.child.kill("SIGKILL");
      expect(await first.exited).toBeNull();
      const killed: ReleaseRecord = await readRecord(inFlight.releaseId);
      expect(killed.outcome).toBe("in-progress");

      const second = run(args());
      const code = await second.exited;
      const output = second.output();
      expect(output).toContain(`resuming it`);
      const record = await readRecord(inFlight.releaseId);
      expect(["succeeded", "rolled-back"], output).toContain(record.outcome);
      expect(code).toBe(record.outcome === "succeeded" ? 0 : 1);
      expect(output).toContain(`release ${inFlight.releaseId}: ${record.outcome}`);
      // One release, not two: the re-run drove the killed one's record.
      const sameDigest = (await ledger().listRecords(ENVIRONMENT, 50)).filter(
        (r) => r.digest === digestOf(candidate) && r.startedAt >= killed.startedAt,
      );
      expect(sameDigest.map((r) => r.releaseId)).toEqual([inFlight.releaseId]);

      const live = await liveTargets();
      if (record.outcome === "succeeded") {
        expectSettledOn(live, {
          taskDefinitionArn: record.ecs.taskDefinitionArn ?? "",
          endpointConfigName: record.sagemaker.endpointConfigName,
        });
        expect(live.ecsImage).toBe(candidate);
        expect(live.endpointImage).toBe(candidate);
      } else {
        expectSettledOn(live, baseline);
      }
      await expectUnlocked();
    });
  }
});

// Keeps the file's own timings visible in the run's output.
afterAll(() => {
  for (const line of logger.lines.filter((l) => /^happy path: /.test(l))) process.stdout.write(`${line}\n`);
});
