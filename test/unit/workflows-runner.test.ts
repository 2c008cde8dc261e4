// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are workflow expressions, not templates
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  evaluate,
  evaluateCondition,
  interpolate,
  makeRunnerTemp,
  runWorkflow,
  type WorkflowDef,
} from "../helpers/actions-runner.js";

/**
 * The runner harness itself: GitHub's expression semantics, and the runner's protocol
 * (file commands, env propagation, job outputs, status functions) on small workflows,
 * so the workflow tests that rely on it rely on something tested.
 */

const ctx = {
  env: { ACT: "true", EMPTY: "" },
  steps: { scan: { outputs: { "sarif-file": "/tmp/x.sarif" } } },
  inputs: { "model-version": "v2" },
  vars: {},
};

describe("expressions", () => {
  it("follow GitHub's semantics", () => {
    expect(evaluate("!env.ACT", ctx)).toBe(false);
    expect(evaluate("!env.MISSING", ctx)).toBe(true);
    expect(evaluate("env.ACT && 'local' || 'staging'", ctx)).toBe("local");
    expect(evaluate("env.MISSING && 'local' || 'staging'", ctx)).toBe("staging");
    expect(evaluate("steps.scan.outputs.sarif-file != ''", ctx)).toBe(true);
    expect(evaluate("inputs.model-version == 'V2'", ctx)).toBe(true); // case-insensitive
    expect(evaluate("vars.AWS_REGION", ctx)).toBe(null);
    expect(evaluate("format('{0}-r{1}', 'abc', 7)", ctx)).toBe("abc-r7");
    expect(evaluate("1 == '1'", ctx)).toBe(true);
    expect(evaluate("contains('a,b', 'B')", ctx)).toBe(true);
    expect(() => evaluate("hashFiles('x')", ctx)).toThrow(/hashFiles\(\) is not supported/);
  });

  it("interpolate: null as empty, a lone expression keeps its type", () => {
    expect(interpolate("astrolens-${{ env.ACT && 'local' || 'staging' }}/inference", ctx)).toBe(
      "astrolens-local/inference",
    );
    expect(interpolate("x${{ vars.NONE }}y", ctx)).toBe("xy");
    expect(interpolate("${{ env.ACT == 'true' }}", ctx)).toBe(true);
  });

  it("if: without a status function means success() && …", () => {
    const ok = { failed: false, cancelled: false };
    const failed = { failed: true, cancelled: false };
    expect(evaluateCondition("${{ !env.ACT }}", ctx, ok)).toBe(false);
    expect(evaluateCondition("${{ env.ACT }}", ctx, failed)).toBe(false);
    expect(evaluateCondition("${{ !cancelled() && env.ACT }}", ctx, failed)).toBe(true);
    expect(evaluateCondition("failure()", ctx, failed)).toBe(true);
    expect(evaluateCondition(undefined, ctx, failed)).toBe(false);
  });
});

const workflow = (text: string) => parseYaml(text) as WorkflowDef;

describe("the runner protocol", () => {
  it("passes outputs (heredocs too), GITHUB_ENV and job outputs on, and honours if:", async () => {
    const temp = makeRunnerTemp();
    try {
      const run = await runWorkflow(
        workflow(`
on: push
env:
  WORKFLOW_LEVEL: from-workflow
jobs:
  one:
    runs-on: ubuntu-24.04
    outputs:
      text: \${{ steps.a.outputs.multi }}
      later: \${{ steps.b.outputs.seen }}
    steps:
      - id: a
        run: |
          { echo "multi<<EOF"; echo "line 1"; echo "line 2"; echo "EOF"; } >> "$GITHUB_OUTPUT"
          echo "FROM_STEP=set-by-a" >> "$GITHUB_ENV"
      - id: b
        env:
          COPY: \${{ env.FROM_STEP }}-\${{ env.WORKFLOW_LEVEL }}
        run: echo "seen=$COPY/$FROM_STEP" >> "$GITHUB_OUTPUT"
      - id: skipped
        if: \${{ env.FROM_STEP == 'other' }}
        run: exit 1
      - id: fails
        run: exit 3
      - id: after-failure
        run: echo "never"
      - id: on-failure
        if: failure()
        run: echo "ran=yes" >> "$GITHUB_OUTPUT"
  two:
    needs: one
    runs-on: ubuntu-24.04
    steps:
      - run: echo never
`),
        { event: {}, eventName: "push", runnerTemp: temp.dir },
      );
      const one = run.jobs.one;
      expect(one?.status).toBe("failure");
      expect(one?.outputs).toEqual({ text: "line 1\nline 2", later: "set-by-a-from-workflow/set-by-a" });
      expect(one?.steps.map((s) => [s.id, s.status])).toEqual([
        ["a", "success"],
        ["b", "success"],
        ["skipped", "skipped-by-if"],
        ["fails", "failure"],
        ["after-failure", "skipped-by-if"],
        ["on-failure", "success"],
      ]);
      expect(run.jobs.two?.status).toBe("skipped");
    } finally {
      temp.remove();
    }
  });

  it("passes inputs to our actions as INPUT_* and refuses an input the action does not declare", async () => {
    const temp = makeRunnerTemp();
    try {
      await expect(
        runWorkflow(
          workflow(`
on: push
jobs:
  one:
    runs-on: ubuntu-24.04
    steps:
      - uses: ./actions/push-image
        with:
          repositry: typo
`),
          { event: {}, eventName: "push", runnerTemp: temp.dir },
        ),
      ).rejects.toThrow('./actions/push-image: input "repositry" is not declared');
    } finally {
      temp.remove();
    }
  });

  it("refuses a third-party action it does not know, rather than skip it silently", async () => {
    const temp = makeRunnerTemp();
    try {
      await expect(
        runWorkflow(
          workflow(`
on: push
jobs:
  one:
    runs-on: ubuntu-24.04
    steps:
      - uses: docker/login-action@0000000000000000000000000000000000000000
`),
          { event: {}, eventName: "push", runnerTemp: temp.dir },
        ),
      ).rejects.toThrow(/cannot run docker\/login-action@0{40}; add it to SKIPPED_ACTIONS/);
    } finally {
      temp.remove();
    }
  });
});
