import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { createClient } from "../../src/aws/clients.js";
import { loadLocalEnv, uniqueName } from "../helpers/local-aws.js";
import { runActionBundle } from "../helpers/run-action.js";

const sets = {
  "eval-set": "test/fixtures/eval/synthetic/manifest.json",
  "ood-set": "test/fixtures/eval/ood/manifest.json",
  "detection-set": "test/fixtures/eval/detection/manifest.json",
};

describe("the accuracy-gate action, run as the runner runs its composite step", () => {
  it("passes v2 over v1, with outputs, a summary and the metrics file", async () => {
    const metrics = join(mkdtempSync(join(tmpdir(), "gate-metrics-")), "metrics.json");
    const run = await runActionBundle("accuracy-gate", {
      candidate: "service/models/v2",
      production: "service/models/v1",
      ...sets,
      "metrics-file": metrics,
    });
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.verdict).toBe("pass");
    expect(run.outputs["blocks-release"]).toBe("false");
    expect(Number(run.outputs["candidate-accuracy"])).toBeCloseTo(0.958, 3);
    expect(run.summary).toContain("Accuracy gate passed");
    expect(existsSync(metrics)).toBe(true);
    expect(JSON.parse(readFileSync(metrics, "utf8")).verdict).toBe("pass");
  });

  it("fails the step when v1 would replace v2, naming the regression", async () => {
    const run = await runActionBundle("accuracy-gate", {
      candidate: "service/models/v1",
      production: "service/models/v2",
      ...sets,
    });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.verdict).toBe("fail");
    expect(run.stdout).toMatch(
      /::error::accuracy-gate failed: the gate's verdict is fail: The candidate is significantly less accurate/,
    );
  });

  it("names a missing input", async () => {
    const run = await runActionBundle("accuracy-gate", { production: "service/models/v1" });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toContain('input "candidate"');
  });

  it("reads the production model from S3 in the local AWS, sha256-checked", async () => {
    const env = loadLocalEnv();
    const s3 = createClient(S3Client, { maxAttempts: 1 });
    const bucket = uniqueName("models");
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (const file of readdirSync("service/models/v1")) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `astrolens/v1/${file}`,
          Body: readFileSync(`service/models/v1/${file}`),
        }),
      );
    }
    const run = await runActionBundle(
      "accuracy-gate",
      { candidate: "service/models/v2", production: `s3://${bucket}/astrolens/v1/`, ...sets },
      env,
    );
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.verdict).toBe("pass");
    expect(Number(run.outputs["production-accuracy"])).toBeCloseTo(0.934, 3);
    expect(run.stdout).toMatch(/production 1\.0\.0/);
  });
});
