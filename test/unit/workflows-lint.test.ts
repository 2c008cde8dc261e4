import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findProjectRoot } from "../../src/local/paths.js";
import { INSTALL_WORKFLOW_TOOLS as INSTALL, workflowTool } from "../helpers/actions-runner.js";

/**
 * actionlint (with shellcheck on every run: script) and zizmor (offline, the waivers in
 * .github/zizmor.yml) over the workflows, both clean. The tools are pinned and installed
 * by scripts/install-workflow-tools.sh; a missing one fails here and says so.
 */

const root = findProjectRoot();
/** `${{ e }}` as a workflow file spells it. */
const expr = (e: string) => `\${{ ${e} }}`;

function run(command: string, args: string[], cwd = root) {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  if (result.error) throw result.error;
  return { code: result.status, out: `${result.stdout}${result.stderr}` };
}

function shellcheckOnPath(): string {
  const found = spawnSync("sh", ["-c", "command -v shellcheck"], { encoding: "utf8" }).stdout.trim();
  if (!found)
    throw new Error(`shellcheck is not installed (actionlint would skip every run: script): run ${INSTALL}`);
  return found;
}

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the repository's workflows and actions with one workflow replaced. */
function brokenCopy(file: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), "astrolens-lint-"));
  temps.push(dir);
  cpSync(join(root, ".github"), join(dir, ".github"), { recursive: true });
  cpSync(join(root, "actions"), join(dir, "actions"), { recursive: true });
  cpSync(join(root, "dist"), join(dir, "dist"), { recursive: true });
  cpSync(join(root, "service", "dist"), join(dir, "service", "dist"), { recursive: true });
  // actionlint looks for the repository root (.git) above the workflows.
  spawnSync("git", ["init", "-q", dir]);
  const path = join(dir, ".github", "workflows", file);
  writeFileSync(path, edit(readFileSync(path, "utf8")));
  return dir;
}

describe("actionlint", () => {
  it("finds nothing in the workflows (shellcheck included)", () => {
    const shellcheck = shellcheckOnPath();
    const { code, out } = run(workflowTool("actionlint"), ["-shellcheck", shellcheck, "-color=false"]);
    expect(out, out).toBe("");
    expect(code).toBe(0);
  });

  it("would catch a mistake: an unknown step output and unquoted shell", () => {
    const dir = brokenCopy("release.yml", (text) =>
      text
        .replace(expr("steps.push.outputs.image-uri"), expr("steps.pushed.outputs.image-uri"))
        .replace('if [ "$OUTCOME" != "succeeded" ]; then', "if [ $OUTCOME != succeeded ]; then"),
    );
    const { code, out } = run(
      workflowTool("actionlint"),
      ["-shellcheck", shellcheckOnPath(), "-color=false"],
      dir,
    );
    expect(code).toBe(1);
    expect(out).toContain('property "pushed" is not defined');
    expect(out).toContain("SC2086");
  });
});

describe("zizmor", () => {
  it("finds nothing (offline; waivers with reasons in .github/zizmor.yml)", () => {
    const { code, out } = run(workflowTool("zizmor"), ["--offline", "--no-progress", ".github/workflows"]);
    expect(out, out).toContain("No findings to report");
    expect(code).toBe(0);
  });

  it("every waiver in .github/zizmor.yml says why", () => {
    const config = readFileSync(join(root, ".github", "zizmor.yml"), "utf8");
    const rules = [...config.matchAll(/^ {2}([a-z-]+):\s*$/gm)].map((m) => m[1]);
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      const before = config
        .slice(0, config.indexOf(`  ${rule}:`))
        .split("\n")
        .slice(-3)
        .join("\n");
      expect(before, `zizmor waiver ${rule} has no reason above it`).toMatch(/#\s+\S.{20,}/);
    }
  });

  it("would catch a mistake: an input expanded inside run:, and a workflow with default permissions", () => {
    const dir = brokenCopy("promote.yml", (text) =>
      text
        .replace("permissions: {}\n\njobs:", "jobs:")
        .replace(
          "          set -euo pipefail\n          problems=0",
          `          set -euo pipefail\n          echo "${expr("inputs.model-version")}"\n          problems=0`,
        ),
    );
    const { code, out } = run(
      workflowTool("zizmor"),
      ["--offline", "--no-progress", join(dir, ".github", "workflows")],
      dir,
    );
    expect(code).not.toBe(0);
    expect(out).toContain("template-injection");
  });
});
