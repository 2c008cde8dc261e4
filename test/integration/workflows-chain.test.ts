import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DescribeImagesCommand } from "@aws-sdk/client-ecr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAwsDrivers } from "../../src/deploy/drivers.js";
import type { ReleaseRecord } from "../../src/deploy/ledger.js";
import { environmentResources } from "../../src/environment.js";
import { LOCAL_BUILD_ARGS, proxyCaSecret } from "../../src/local/base-images.js";
import { findProjectRoot } from "../../src/local/paths.js";
import {
  type JobResult,
  loadWorkflow,
  makeRunnerTemp,
  notRun,
  runWorkflow,
  type StepResult,
  type WorkflowRun,
} from "../helpers/actions-runner.js";
import { loadLocalEnv, localEcr } from "../helpers/local-aws.js";

/**
 * The release as release.yml runs it, then the promotion as promote.yml runs it: every
 * step of the workflow files executed by the runner harness (test/helpers/actions-runner.ts)
 * the way the runner executes it — our actions' bundles with INPUT_* and the file
 * commands, the bash steps with their env: mappings, every ${{ }} resolved from the
 * run's contexts — in local mode (ACT set, as act sets it) against the local AWS:
 *
 *   release.yml: build (build-image, install Trivy, scan-image) · gate (accuracy-gate)
 *                · push (push-image to astrolens-local/inference) · deploy-staging, which
 *                in local mode releases to `local` (ECS + SageMaker, smoke, bake);
 *                deploy-production is skipped by its own if: (the act payload).
 *   promote.yml: validate · verify (AWS CLI on the local ledger and ECR) · promote
 *                (promote-image into astrolens-staging/inference, deploy to staging,
 *                which `local bootstrap --env staging` created in the local AWS).
 *
 * What does not run, and why, is asserted below (EXPECTED_NOT_RUN).
 */

const root = findProjectRoot();
const SECOND_ENVIRONMENT = "staging";

/** Steps that do not run in local mode, with the reason the harness or the workflow gives. */
const EXPECTED_NOT_RUN = [
  "build / actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8: the workspace is this checkout already",
  "build / Upload SARIF to code scanning: its if: is false",
  "build / Keep the image for the push job: jobs share one RUNNER_TEMP: the file stays where it was uploaded from",
  "gate / actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8: the workspace is this checkout already",
  "gate / actions/setup-node@a0853c24544627f65ddf259abe73b1d18a591444: the harness runs actions with its own Node.js",
  "gate / Keep the metrics for the ledger: jobs share one RUNNER_TEMP: the file stays where it was uploaded from",
  "push / actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8: the workspace is this checkout already",
  "push / Fetch the built image: jobs share one RUNNER_TEMP: the uploaded file is already at that path",
  "push / AWS credentials (OIDC, staging deploy role): its if: is false",
  "deploy-staging / actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8: the workspace is this checkout already",
  "deploy-staging / Fetch the gate's metrics: jobs share one RUNNER_TEMP: the uploaded file is already at that path",
  "deploy-staging / AWS credentials (OIDC, staging deploy role): its if: is false",
];

let env: Record<string, string>;
let runnerTemp: { dir: string; remove: () => void };
const release: WorkflowRun = { jobs: {}, steps: [] };
const runId = String(Date.now());

/** act's environment in local mode: ACT, .actrc's --env-file .local/env and its --env lines. */
function localMode(): Record<string, string> {
  const actrc = readFileSync(join(root, ".actrc"), "utf8");
  const baseImages = Object.entries(LOCAL_BUILD_ARGS)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
  // The harness and act must build from the same base images.
  expect(actrc).toContain(`--env ASTROLENS_BASE_IMAGES=${baseImages}`);
  expect(actrc).toContain("--env-file .local/env");
  return {
    ...loadLocalEnv(),
    ACT: "true",
    ASTROLENS_BASE_IMAGES: baseImages,
    // A TLS-inspecting proxy's CA for npm ci inside the build, when this machine has one.
    ASTROLENS_BUILD_SECRETS: Object.entries(proxyCaSecret())
      .map(([id, file]) => `${id}=${file}`)
      .join("\n"),
  };
}

function log(step: StepResult): void {
  process.stderr.write(`[workflow] ${step.job} / ${step.name}: ${step.status}\n`);
}

/** Fails with the failing step's log, so a broken step says why. */
function expectJobSucceeded(job: JobResult | undefined, name: string): asserts job is JobResult {
  expect(job, `job ${name} did not run`).toBeDefined();
  const failed = job?.steps.find((step) => step.status === "failure");
  expect(job?.status, failed ? `${name} / ${failed.name} failed:\n${failed.log.slice(-6000)}` : "").toBe(
    "success",
  );
}

async function runReleaseJob(id: string): Promise<JobResult> {
  const run = await runWorkflow(loadWorkflow("release.yml"), {
    event: JSON.parse(readFileSync(join(root, "test/events/push.json"), "utf8")),
    eventName: "push",
    env,
    jobs: [id],
    previous: release.jobs,
    runnerTemp: runnerTemp.dir,
    runId,
    onStep: log,
  });
  Object.assign(release.jobs, run.jobs);
  release.steps.push(...run.steps);
  return run.jobs[id] as JobResult;
}

function step(job: JobResult, id: string): StepResult {
  const found = job.steps.find((s) => s.id === id);
  if (!found) throw new Error(`job ${job.id} has no step ${id}`);
  return found;
}

async function ledgerRecord(environment: string, releaseId: string): Promise<ReleaseRecord | undefined> {
  const drivers = createAwsDrivers(environmentResources(environment));
  return drivers.ledger.getRecord(environment, releaseId);
}

beforeAll(() => {
  env = localMode();
  runnerTemp = makeRunnerTemp();
});

afterAll(() => {
  runnerTemp.remove();
});

describe("release.yml, step by step as the runner runs it, against the local AWS", () => {
  it("build: build-image, then scan-image passes the image (the SARIF upload is skipped locally)", async () => {
    const job = await runReleaseJob("build");
    expectJobSucceeded(job, "build");
    const digest = job.outputs.digest ?? "";
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(job.outputs["scan-verdict"]).toBe("pass");
    expect(job.outputs["scanned-digest"]).toBe(digest);
    const build = step(job, "build");
    expect(build.outputs["media-type"]).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(build.outputs["image-dir"]).toBe(join(runnerTemp.dir, "build", "image"));
    expect(step(job, "scan").outputs["sarif-file"]).toBe(join(runnerTemp.dir, "scan", "trivy.sarif"));
  }, 900_000);

  it("gate: the accuracy gate passes v2 against v1 and writes the metrics the deploy records", async () => {
    const job = await runReleaseJob("gate");
    expectJobSucceeded(job, "gate");
    expect(job.outputs.verdict).toBe("pass");
    const metrics = JSON.parse(readFileSync(join(runnerTemp.dir, "gate", "metrics.json"), "utf8"));
    expect(metrics.verdict).toBe("pass");
    expect(metrics.blocksRelease).toBe(false);
  }, 600_000);

  it("push: push-image puts the scanned digest into the local environment's repository", async () => {
    const job = await runReleaseJob("push");
    expectJobSucceeded(job, "push");
    const digest = release.jobs.build?.outputs.digest ?? "";
    const repository = environmentResources("local").ecrRepository;
    expect(job.outputs.digest).toBe(digest);
    expect(job.outputs["image-uri"]).toBe(`${env.ASTROLENS_REGISTRY}/${repository}@${digest}`);
    const found = await localEcr().send(
      new DescribeImagesCommand({ repositoryName: repository, imageIds: [{ imageDigest: digest }] }),
    );
    // The tag is the commit and the run: a re-run's rebuild never meets an immutable tag.
    // (The build is reproducible: an identical image pushed before keeps its own tags too.)
    expect(found.imageDetails?.[0]?.imageTags).toContain(`${gitSha()}-r${runId}.1`);
  }, 300_000);

  it("deploy-staging (the local environment in local mode): deploy releases that digest, recorded in the ledger", async () => {
    expect(
      existsSync(join(root, "dist", "deploy", "index.js")),
      "dist/deploy/index.js is missing: run npm run build",
    ).toBe(true);
    const job = await runReleaseJob("deploy-staging");
    expectJobSucceeded(job, "deploy-staging");
    const deploy = step(job, "deploy");
    expect(deploy.outputs.outcome, deploy.log.slice(-4000)).toBe("succeeded");
    const record = await ledgerRecord("local", job.outputs["release-id"] ?? "");
    expect(record?.digest).toBe(release.jobs.build?.outputs.digest);
    expect(record?.imageUri).toBe(release.jobs.push?.outputs["image-uri"]);
    expect(record?.outcome).toBe("succeeded");
    expect(record?.provenance.scanVerdict).toBe("pass");
    expect(record?.provenance.gate?.verdict).toBe("pass");
    expect(record?.model.version).toBe(
      JSON.parse(readFileSync(join(root, "service/models/v2/manifest.json"), "utf8")).version,
    );
    expect(deploy.summary).toContain(job.outputs["release-id"]);
  }, 900_000);

  it("deploy-production is skipped by its own if: in local mode", async () => {
    const job = await runReleaseJob("deploy-production");
    expect(job.status).toBe("skipped");
  });

  it("ran every step of those jobs except these, each for a stated reason", () => {
    expect(notRun(release)).toEqual(EXPECTED_NOT_RUN);
  });
});

describe("promote.yml, for that digest, into a second environment", () => {
  const promote = (inputs: Record<string, string>) =>
    runWorkflow(loadWorkflow("promote.yml"), {
      event: { act: true, ref: "refs/heads/main", inputs },
      eventName: "workflow_dispatch",
      env,
      runnerTemp: runnerTemp.dir,
      onStep: log,
    });

  it(`creates ${SECOND_ENVIRONMENT} in the local AWS (astrolens-release local bootstrap; a no-op when it exists)`, () => {
    const result = spawnSync(
      process.execPath,
      [join(root, "dist/cli/index.js"), "local", "bootstrap", "--env", SECOND_ENVIRONMENT],
      {
        cwd: root,
        encoding: "utf8",
      },
    );
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
  }, 900_000);

  it("validates, verifies the local ledger, copies the same digest and releases it", async () => {
    const digest = release.jobs.build?.outputs.digest ?? "";
    expect(digest, "the release above did not build an image").toMatch(/^sha256:/);
    const run = await promote({
      digest,
      "source-environment": "local",
      "target-environment": SECOND_ENVIRONMENT,
      "model-version": "v2",
    });
    expectJobSucceeded(run.jobs.validate, "validate");
    const verify = run.jobs.verify;
    expectJobSucceeded(verify, "verify");
    expect(verify.outputs["image-uri"]).toBe(release.jobs.push?.outputs["image-uri"]);
    expect(verify.outputs["model-manifest"]).toBe("service/models/v2/manifest.json");
    expect(verify.outputs["source-release"]).toBe(release.jobs["deploy-staging"]?.outputs["release-id"]);

    const job = run.jobs.promote;
    expectJobSucceeded(job, "promote");
    const target = environmentResources(SECOND_ENVIRONMENT);
    const copied = step(job, "promote");
    expect(copied.outputs.digest).toBe(digest);
    expect(copied.outputs["image-uri"]).toBe(`${env.ASTROLENS_REGISTRY}/${target.ecrRepository}@${digest}`);
    const found = await localEcr().send(
      new DescribeImagesCommand({
        repositoryName: target.ecrRepository,
        imageIds: [{ imageDigest: digest }],
      }),
    );
    expect(found.imageDetails?.[0]?.imageManifestMediaType).toBe(
      "application/vnd.docker.distribution.manifest.v2+json",
    );
    const deploy = step(job, "deploy");
    expect(deploy.outputs.outcome, deploy.log.slice(-4000)).toBe("succeeded");
    const record = await ledgerRecord(SECOND_ENVIRONMENT, deploy.outputs["release-id"] ?? "");
    expect(record?.digest).toBe(digest);
    expect(record?.imageUri).toBe(copied.outputs["image-uri"]);
    expect(record?.provenance.scanVerdict).toBe("pass");
    expect(notRun(run)).toEqual([
      "verify / actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8: the workspace is this checkout already",
      "verify / AWS credentials (OIDC, source deploy role): its if: is false",
      "promote / actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8: the workspace is this checkout already",
      "promote / AWS credentials (OIDC, target deploy role): its if: is false",
    ]);
  }, 1_200_000);

  it("refuses a digest that is not in the source's repository, before anything is copied", async () => {
    const run = await promote({
      digest: `sha256:${"0".repeat(64)}`,
      "source-environment": "local",
      "target-environment": SECOND_ENVIRONMENT,
      "model-version": "v2",
    });
    expect(run.jobs.verify?.status).toBe("failure");
    expect(run.jobs.verify?.steps.find((s) => s.id === "verify")?.log).toContain(
      `::error title=promote: refused::sha256:${"0".repeat(64)} is not in astrolens-local/inference`,
    );
    expect(run.jobs.promote?.status).toBe("skipped");
  }, 120_000);

  it("refuses a model version the source did not release with that digest", async () => {
    const run = await promote({
      digest: release.jobs.build?.outputs.digest ?? "",
      "source-environment": "local",
      "target-environment": SECOND_ENVIRONMENT,
      "model-version": "v1",
    });
    expect(run.jobs.verify?.status).toBe("failure");
    expect(run.jobs.verify?.steps.find((s) => s.id === "verify")?.log).toMatch(
      /served model 2\.0\.0, not 1\.0\.0 \(service\/models\/v1\/manifest\.json\)/,
    );
  }, 120_000);
});

function gitSha(): string {
  return spawnSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).stdout.trim();
}
