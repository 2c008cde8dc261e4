import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findProjectRoot } from "../../src/local/paths.js";
import { workflowTool } from "../helpers/actions-runner.js";

/**
 * act's own parser and planner on the workflows, as far as act goes without a Docker
 * engine (none here, none on the CI machine):
 *
 * - `act --validate --strict`: every workflow against act's strict schema;
 * - `act -l <event> -e test/events/…`: the jobs each event plans, in stages, with .actrc;
 * - `act -g`: the dependency graph;
 * - a real act run of promote.yml's `validate` job on the host (`-P …=-self-hosted`),
 *   the one job with no action to fetch and nothing to harm: act evaluates the inputs
 *   from the event payload into `env:` and runs the bash step, valid and hostile inputs.
 *
 * Not checked here: `act -n` (dry run) — it connects to Docker to pull the job image
 * before it plans a step, and with `-self-hosted` it still executes `run:` steps on the
 * host, so it is no dry run; the jobs with remote actions need github.com to clone them.
 * test/integration/workflows-chain.test.ts runs release.yml's and promote.yml's steps.
 */

const root = findProjectRoot();
let home: string;
let scratch: string;

beforeAll(() => {
  // act keeps its cache and host workspaces under HOME: keep them out of the user's.
  home = mkdtempSync(join(tmpdir(), "astrolens-act-home-"));
  scratch = mkdtempSync(join(tmpdir(), "astrolens-act-"));
});
afterAll(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

function act(args: string[], cwd = root) {
  const result = spawnSync(workflowTool("act"), args, {
    cwd,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, ".cache"), NO_COLOR: "1" },
  });
  if (result.error) throw result.error;
  return { code: result.status, out: `${result.stdout}${result.stderr}` };
}

/** act -l's table as [stage, job id, workflow file] rows, sorted (act's order within a stage varies). */
function listed(out: string): string[][] {
  const lines = out.split("\n").filter((line) => /^\d+\s/.test(line));
  return lines
    .map((line) => {
      const cells = line.trim().split(/\s{2,}/);
      return [cells[0] ?? "", cells[1] ?? "", cells[4] ?? ""];
    })
    .sort((a, b) => a.join(" ").localeCompare(b.join(" ")));
}

describe("act's parser", () => {
  it("validates every workflow against its strict schema", () => {
    const { code, out } = act(["--validate", "--strict"]);
    expect(code, out).toBe(0);
  });

  it("would reject a broken workflow", () => {
    const dir = mkdtempSync(join(scratch, "broken-"));
    cpSync(join(root, ".github"), join(dir, ".github"), { recursive: true });
    const file = join(dir, ".github", "workflows", "release.yml");
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace("runs-on: ubuntu-24.04", "runs-on: [ubuntu-24.04"),
    );
    const { code } = act(["--validate", "--strict"], dir);
    expect(code).not.toBe(0);
  });

  it("plans release.yml for a push in stages: build and gate, push, staging, production", () => {
    const { code, out } = act([
      "-l",
      "push",
      "-W",
      ".github/workflows/release.yml",
      "-e",
      "test/events/push.json",
    ]);
    expect(code, out).toBe(0);
    expect(listed(out)).toEqual([
      ["0", "build", "release.yml"],
      ["0", "gate", "release.yml"],
      ["1", "push", "release.yml"],
      ["2", "deploy-staging", "release.yml"],
      ["3", "deploy-production", "release.yml"],
    ]);
  });

  it("plans promote.yml for workflow_dispatch: validate, verify, promote", () => {
    const { code, out } = act([
      "-l",
      "workflow_dispatch",
      "-W",
      ".github/workflows/promote.yml",
      "-e",
      "test/events/workflow_dispatch-promote.json",
    ]);
    expect(code, out).toBe(0);
    expect(listed(out)).toEqual([
      ["0", "validate", "promote.yml"],
      ["1", "verify", "promote.yml"],
      ["2", "promote", "promote.yml"],
    ]);
  });

  it("plans ci.yml for a push: the tests and the workflow linters", () => {
    const { code, out } = act([
      "-l",
      "push",
      "-W",
      ".github/workflows/ci.yml",
      "-e",
      "test/events/push.json",
    ]);
    expect(code, out).toBe(0);
    expect(listed(out).map((row) => row[1])).toEqual(["test", "workflow-lint"]);
  });

  it.each(["release.yml", "promote.yml", "ci.yml"])("draws %s's graph", (file) => {
    const { code, out } = act(["-g", "-W", `.github/workflows/${file}`]);
    expect(code, out).toBe(0);
  });
});

describe("act runs promote.yml's input validation (on the host, no Docker)", () => {
  const runValidate = (inputs: Record<string, string>) => {
    const event = join(scratch, `event-${Math.random().toString(36).slice(2)}.json`);
    const payload = JSON.parse(
      readFileSync(join(root, "test/events/workflow_dispatch-promote.json"), "utf8"),
    );
    writeFileSync(event, JSON.stringify({ ...payload, inputs: { ...payload.inputs, ...inputs } }));
    return act([
      "workflow_dispatch",
      "-W",
      ".github/workflows/promote.yml",
      "-j",
      "validate",
      "-e",
      event,
      "-P",
      "ubuntu-24.04=-self-hosted",
      // No artifact or cache server (.actrc starts one): two runs in a row would race for its port.
      "--artifact-server-path=",
      "--no-cache-server",
    ]);
  };

  it("passes the payload's inputs (local mode: local is allowed) and sets the outputs", () => {
    const { code, out } = runValidate({});
    expect(code, out).toBe(0);
    expect(out).toContain("::set-output:: source=local");
    expect(out).toContain("::set-output:: target=staging");
    expect(out).toContain("Job succeeded");
  });

  it("rejects hostile inputs and runs none of them", () => {
    const marker = join(scratch, "act-injected");
    const { code, out } = runValidate({
      digest: `sha256:$(touch ${marker})`,
      "model-version": `"; touch ${marker}; #`,
    });
    expect(code, out).not.toBe(0);
    // act's host executor now and then loses the output of a step that ends within a few
    // milliseconds, so the messages are asserted by workflows-promote-inputs.test.ts
    // (the same step, through the runner harness); here: the step failed, nothing ran.
    expect(out).toContain("Failure - Main Validate the inputs");
    expect(out).toContain("Job failed");
    expect(existsSync(marker), out).toBe(false);
  });
});
