import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ENVIRONMENTS } from "../../src/environment.ts";
import { INFRA_DIR, placeholderSmokeBundle, synthesizeAll } from "./fixtures.ts";

const run = promisify(execFile);

describe("cdk synth (the CLI, as on a fresh clone)", () => {
  it("synthesizes every stack without credentials or network, to the same templates as the tests", async () => {
    const bundle = placeholderSmokeBundle();
    const outdir = mkdtempSync(join(tmpdir(), "astrolens-cli-out-"));
    // No AWS credentials or config, an empty HOME, and a proxy that refuses every
    // connection: a lookup, a notice fetch or a version check would fail the synth.
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: mkdtempSync(join(tmpdir(), "astrolens-cli-home-")),
      HTTP_PROXY: "http://127.0.0.1:9",
      HTTPS_PROXY: "http://127.0.0.1:9",
      AWS_EC2_METADATA_DISABLED: "true",
      CDK_DISABLE_VERSION_CHECK: "1",
      CDK_DISABLE_CLI_TELEMETRY: "1",
    };
    const cdk = join(INFRA_DIR, "node_modules", ".bin", "cdk");
    await run(cdk, ["synth", "--quiet", "-c", `astrolens:smokeTestDist=${bundle}`, "-o", outdir], {
      cwd: INFRA_DIR,
      env,
      timeout: 110_000,
    });
    const inProcess = synthesizeAll({ smokeTestCodeDir: bundle });
    for (const environment of ENVIRONMENTS) {
      const fromCli = JSON.parse(
        readFileSync(join(outdir, `astrolens-${environment}.template.json`), "utf8"),
      );
      expect(fromCli, environment).toEqual(inProcess.json[environment]);
    }
  });

  it("names the missing bundle and exits non-zero", async () => {
    const outdir = mkdtempSync(join(tmpdir(), "astrolens-cli-out-"));
    const failure = await run(
      join(INFRA_DIR, "node_modules", ".bin", "cdk"),
      ["synth", "--quiet", "-c", "astrolens:smokeTestDist=/nonexistent", "-o", outdir],
      { cwd: INFRA_DIR, env: { ...process.env, CDK_DISABLE_VERSION_CHECK: "1" }, timeout: 110_000 },
    ).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failure?.code).not.toBe(0);
    expect(failure?.stderr).toContain(
      "astrolens infra: the smoke-test Lambda bundle /nonexistent/index.mjs is missing",
    );
  });
});
