import { beforeAll, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../src/gh/logger.js";
import { readLocalEnv } from "../../src/local/env-file.js";
import {
  baselineImage,
  candidateImage,
  digestOf,
  ENVIRONMENT,
  type LiveTargets,
  liveTargets,
  loadLocalEnv,
  paths,
  readRecord,
  restoreBaseline,
  testListenerUrl,
  V2_MANIFEST,
} from "../fixtures/deploy/local-release.js";
import { runActionBundle } from "../helpers/run-action.js";

/**
 * The deploy and rollback actions as the runner runs them: the committed bundles
 * (dist/deploy, dist/rollback), inputs as INPUT_* variables, outputs and the job summary
 * read back from the runner's files, against the local AWS. They poll at the actions'
 * default interval (15 s), so a release takes about a minute here.
 */

const logger = createMemoryLogger();
let candidate: string;
let baseline: LiveTargets;
let testUrl: string;
const aws = () => readLocalEnv(paths.envFile);

beforeAll(async () => {
  loadLocalEnv();
  candidate = await candidateImage(logger);
  baseline = await restoreBaseline(logger);
  testUrl = await testListenerUrl();
}, 600_000);

describe("the deploy and rollback actions", () => {
  it("dry-run: outputs planned and the live versions, the plan as the job summary, nothing changed", async () => {
    const run = await runActionBundle(
      "deploy",
      {
        environment: ENVIRONMENT,
        image: candidate,
        "model-manifest": V2_MANIFEST,
        "dry-run": "true",
        "test-url": testUrl,
      },
      aws(),
    );
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.outputs).toMatchObject({
      "release-id": "",
      outcome: "planned",
      "task-definition-arn": baseline.taskDefinitionArn,
      "endpoint-config": baseline.endpointConfigName,
    });
    expect(run.outputs.reason).toMatch(/^Dry run: 8 steps planned for local\.$/);
    expect(run.summary).toContain("## Release plan for local (dry run)");
    expect(run.summary).toContain(`+ image ${candidate}`);
    expect(await liveTargets()).toEqual(baseline);
  });

  it("a bad input fails the step, naming the input; nothing changed", async () => {
    const run = await runActionBundle(
      "deploy",
      { environment: ENVIRONMENT, image: candidate.replace(/@sha256:.*/, ":latest"), "bake-minutes": "soon" },
      aws(),
    );
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain('::error::deploy failed: nothing was changed: input "image"');
    expect(run.stdout).toContain('input "bake-minutes": expected a whole number of minutes (got "soon")');
    expect(await liveTargets()).toEqual(baseline);
  });

  it("deploy releases both targets; rollback returns both to the previous good release", async () => {
    const deployed = await runActionBundle(
      "deploy",
      {
        environment: ENVIRONMENT,
        image: candidate,
        "model-manifest": V2_MANIFEST,
        "bake-minutes": "0",
        "scan-verdict": "pass",
        "test-url": testUrl,
      },
      aws(),
    );
    expect(deployed.exitCode, deployed.stdout + deployed.stderr).toBe(0);
    expect(deployed.outputs.outcome).toBe("succeeded");
    const released = await liveTargets();
    expect(released.ecsInFlight).toEqual([]);
    expect(released.taskDefinitionArn).toBe(deployed.outputs["task-definition-arn"]);
    expect(released.endpointConfigName).toBe(deployed.outputs["endpoint-config"]);
    expect(released.ecsImage).toBe(candidate);
    expect(released.endpointImage).toBe(candidate);
    // The job summary is the ledger record.
    const record = await readRecord(deployed.outputs["release-id"] ?? "");
    expect(record.outcome).toBe("succeeded");
    expect(deployed.summary).toContain(`## Release ${record.releaseId} to local: ✅ succeeded`);
    expect(deployed.summary).toContain("<details><summary>Ledger record</summary>");

    const rolledBack = await runActionBundle(
      "rollback",
      { environment: ENVIRONMENT, reason: "itest: the rollback action" },
      aws(),
    );
    expect(rolledBack.exitCode, rolledBack.stdout + rolledBack.stderr).toBe(0);
    expect(rolledBack.outputs.outcome).toBe("rolled-back");
    expect(rolledBack.outputs.reason).toContain("an operator asked for it (itest: the rollback action)");
    const back = await liveTargets();
    expect(back.ecsInFlight).toEqual([]);
    expect(back.endpointStatus).toBe("InService");
    expect(digestOf(back.ecsImage)).toBe(digestOf(await baselineImage()));
    expect(digestOf(back.endpointImage)).toBe(digestOf(await baselineImage()));
    const rollback = await readRecord(rolledBack.outputs["release-id"] ?? "");
    expect(rollback).toMatchObject({
      kind: "rollback",
      outcome: "rolled-back",
      rollback: { trigger: "operator" },
    });
    expect(rollback.ecs.previousTaskDefinitionArn).toBe(back.taskDefinitionArn);
    expect(rollback.sagemaker.previousEndpointConfigName).toBe(back.endpointConfigName);
  });
});
