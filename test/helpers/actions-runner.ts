import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { findProjectRoot } from "../../src/local/paths.js";
import { inputVariable, parseFileCommand } from "./run-action.js";

/**
 * A small GitHub Actions runner for the repository's own workflows, so a test runs
 * exactly the steps a workflow file says, the way the runner runs them:
 *
 * - jobs in `needs` order, each job's and step's `if:` evaluated (default `success()`);
 * - `${{ }}` expressions resolved from the contexts the runner has: github (with the
 *   event payload), env, vars, inputs, steps, needs, runner, job;
 * - `uses: ./actions/<name>`: a node24 action's `main` run with `node`, every declared
 *   input passed as `INPUT_<NAME>` (upper-case, spaces to `_`, hyphens kept; defaults
 *   from action.yml as the runner does); a composite action by running its steps with
 *   `inputs` and `GITHUB_ACTION_PATH`, its outputs from `outputs.<id>.value`;
 * - `run:` with `bash --noprofile --norc -eo pipefail`, like the runner's bash shell;
 * - fresh GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STATE, GITHUB_PATH and GITHUB_STEP_SUMMARY
 *   files per step, parsed afterwards (`name=value` and `name<<DELIMITER` heredocs);
 *   GITHUB_ENV feeds the `env` context of later steps, as on the runner.
 *
 * What it does not do, on purpose: third-party actions. The ones it knows are skipped
 * with the reason (SKIPPED_ACTIONS); any other makes the run fail, so a new `uses:` in a
 * workflow cannot pass unnoticed. All jobs share one workspace (the checkout) and one
 * RUNNER_TEMP, which stands in for upload-artifact/download-artifact: a file one job
 * uploads from `${{ runner.temp }}/x` is at the same path when the next job downloads it.
 */

/** Third-party actions the harness skips, and why it may. */
export const SKIPPED_ACTIONS: Record<string, string> = {
  "actions/checkout": "the workspace is this checkout already",
  "actions/setup-node": "the harness runs actions with its own Node.js",
  "actions/upload-artifact": "jobs share one RUNNER_TEMP: the file stays where it was uploaded from",
  "actions/download-artifact": "jobs share one RUNNER_TEMP: the uploaded file is already at that path",
};

export type Context = Record<string, unknown>;

export interface StepResult {
  job: string;
  id?: string;
  name: string;
  /** ran; skipped by the step's own `if:`; skipped by the harness (third-party action). */
  status: "success" | "failure" | "skipped-by-if" | "skipped-by-harness";
  reason?: string;
  outputs: Record<string, string>;
  exitCode?: number | null;
  log: string;
  summary: string;
}

export interface JobResult {
  id: string;
  status: "success" | "failure" | "skipped";
  outputs: Record<string, string>;
  steps: StepResult[];
}

export interface WorkflowRun {
  jobs: Record<string, JobResult>;
  /** Every step of every job, in the order they were handled. */
  steps: StepResult[];
}

export interface RunOptions {
  /** The event payload (github.event); for workflow_dispatch its `inputs` are the inputs. */
  event: Record<string, unknown>;
  eventName: string;
  /** The `env` context the run starts with (act's --env / --env-file; ACT in local mode). */
  env?: Record<string, string>;
  vars?: Record<string, string>;
  /** Only these jobs (their `needs` must be among them or in `previous`). */
  jobs?: string[];
  /** Results of jobs run earlier (for `needs`), e.g. by another call. */
  previous?: Record<string, JobResult>;
  /** One RUNNER_TEMP for the run; created when not given. */
  runnerTemp?: string;
  /** github.run_id / run_number; unique per run by default. */
  runId?: string;
  /** Called as each step ends (progress in long tests). */
  onStep?: (step: StepResult) => void;
  /** Per-step time limit (default 20 minutes). */
  stepTimeoutMs?: number;
}

interface StepDef {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  shell?: string;
  if?: string | boolean;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  "working-directory"?: string;
  "continue-on-error"?: boolean;
}

interface JobDef {
  name?: string;
  needs?: string | string[];
  if?: string | boolean;
  env?: Record<string, unknown>;
  outputs?: Record<string, string>;
  steps: StepDef[];
}

export interface WorkflowDef {
  name?: string;
  on: unknown;
  env?: Record<string, unknown>;
  jobs: Record<string, JobDef>;
}

/** Reads a workflow file of this repository (`release.yml` or a path). */
export function loadWorkflow(file: string): WorkflowDef {
  const root = findProjectRoot();
  const path = file.includes("/") ? resolve(root, file) : join(root, ".github", "workflows", file);
  return parseYaml(readFileSync(path, "utf8")) as WorkflowDef;
}

/** Jobs in an order that respects `needs` (the order of the file among equals). */
export function jobOrder(workflow: WorkflowDef): string[] {
  const order: string[] = [];
  const visit = (id: string, path: string[]) => {
    if (order.includes(id)) return;
    if (path.includes(id)) throw new Error(`workflow: needs cycle ${[...path, id].join(" -> ")}`);
    const job = workflow.jobs[id];
    if (!job) throw new Error(`workflow: job "${path.at(-1)}" needs unknown job "${id}"`);
    for (const need of needsOf(job)) visit(need, [...path, id]);
    order.push(id);
  };
  for (const id of Object.keys(workflow.jobs)) visit(id, []);
  return order;
}

function needsOf(job: JobDef): string[] {
  return job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs];
}

/** Runs a workflow's jobs (or some of them) and returns every job's and step's result. */
export async function runWorkflow(workflow: WorkflowDef, options: RunOptions): Promise<WorkflowRun> {
  const root = findProjectRoot();
  const runnerTemp = options.runnerTemp ?? mkdtempSync(join(tmpdir(), "astrolens-runner-"));
  const runId = options.runId ?? String(Date.now());
  const eventPath = join(runnerTemp, `event-${runId}.json`);
  writeFileSync(eventPath, JSON.stringify(options.event));
  const sha = gitHead(root);
  const github = {
    event: options.event,
    event_name: options.eventName,
    sha,
    ref: String(options.event.ref ?? "refs/heads/main"),
    ref_name: String(options.event.ref ?? "refs/heads/main").replace(/^refs\/heads\//, ""),
    repository: "astrolens/astrolens-release",
    repository_owner: "astrolens",
    run_id: runId,
    run_number: runId,
    run_attempt: "1",
    workspace: root,
    actor: "actions-runner-harness",
    workflow: workflow.name ?? "",
  };
  const runner = { temp: runnerTemp, os: "Linux", arch: "X64", name: "actions-runner-harness" };
  const inputs =
    options.eventName === "workflow_dispatch"
      ? ((options.event.inputs as Record<string, unknown> | undefined) ?? {})
      : {};
  const baseContext: Context = { github, runner, inputs, vars: options.vars ?? {}, secrets: {} };
  const jobs: Record<string, JobResult> = { ...(options.previous ?? {}) };
  const steps: StepResult[] = [];

  const selected = options.jobs ?? Object.keys(workflow.jobs);
  for (const id of jobOrder(workflow)) {
    if (!selected.includes(id)) continue;
    const job = workflow.jobs[id] as JobDef;
    const needs: Record<string, unknown> = {};
    for (const need of needsOf(job)) {
      const done = jobs[need];
      if (!done)
        throw new Error(
          `job ${id} needs ${need}, which was not run (add it to jobs, or pass it in previous)`,
        );
      needs[need] = { result: done.status, outputs: done.outputs };
    }
    const needsOk = Object.values(needs).every((n) => (n as { result: string }).result === "success");
    const jobContext: Context = { ...baseContext, needs, env: {} };
    const jobStatus = { failed: !needsOk, cancelled: false };
    if (!evaluateCondition(job.if, jobContext, jobStatus)) {
      jobs[id] = { id, status: "skipped", outputs: {}, steps: [] };
      continue;
    }
    // The env context: act's --env/--env-file, then workflow env, then job env.
    const env: Record<string, string> = { ...(options.env ?? {}) };
    Object.assign(env, resolveMap(workflow.env, { ...jobContext, env }));
    Object.assign(env, resolveMap(job.env, { ...jobContext, env }));
    const result = await runJob(id, job, {
      root,
      context: jobContext,
      env,
      github,
      runnerTemp,
      eventPath,
      timeoutMs: options.stepTimeoutMs ?? 20 * 60_000,
      onStep: (step) => {
        steps.push(step);
        options.onStep?.(step);
      },
    });
    jobs[id] = result;
  }
  return { jobs, steps };
}

interface JobRunSettings {
  root: string;
  context: Context;
  env: Record<string, string>;
  github: Record<string, unknown>;
  runnerTemp: string;
  eventPath: string;
  timeoutMs: number;
  onStep: (step: StepResult) => void;
}

async function runJob(id: string, job: JobDef, settings: JobRunSettings): Promise<JobResult> {
  const stepsContext: Record<
    string,
    { outputs: Record<string, string>; outcome: string; conclusion: string }
  > = {};
  const env = { ...settings.env };
  const extraPath: string[] = [];
  const status = { failed: false, cancelled: false };
  const results: StepResult[] = [];
  for (const [index, step] of job.steps.entries()) {
    const context: Context = {
      ...settings.context,
      env,
      steps: stepsContext,
      job: { status: status.failed ? "failure" : "success" },
    };
    const name =
      step.name ?? step.uses ?? (step.run ? `Run ${step.run.split("\n")[0]}` : `step ${index + 1}`);
    let result: StepResult;
    if (!evaluateCondition(step.if, context, status)) {
      result = { job: id, id: step.id, name, status: "skipped-by-if", outputs: {}, log: "", summary: "" };
    } else if (step.uses && !step.uses.startsWith("./")) {
      const action = step.uses.replace(/@.*$/, "").split("/").slice(0, 2).join("/");
      const reason = SKIPPED_ACTIONS[action];
      if (!reason) {
        throw new Error(
          `job ${id}, step "${name}": the harness cannot run ${step.uses}; add it to SKIPPED_ACTIONS with the reason it may be skipped, or run it`,
        );
      }
      result = {
        job: id,
        id: step.id,
        name,
        status: "skipped-by-harness",
        reason,
        outputs: {},
        log: "",
        summary: "",
      };
    } else {
      const stepEnv = { ...env, ...resolveMap(step.env, context) };
      const run = step.uses
        ? await runLocalAction(step, context, stepEnv, settings, extraPath)
        : await runScript(
            String(interpolate(step.run ?? "", context)),
            stepEnv,
            step["working-directory"]
              ? resolve(settings.root, String(interpolate(step["working-directory"], context)))
              : settings.root,
            settings,
            extraPath,
          );
      Object.assign(env, run.env);
      extraPath.unshift(...run.path);
      result = {
        job: id,
        id: step.id,
        name,
        status: run.exitCode === 0 ? "success" : "failure",
        outputs: run.outputs,
        exitCode: run.exitCode,
        log: run.log,
        summary: run.summary,
      };
    }
    const outcome =
      result.status === "failure" ? "failure" : result.status === "success" ? "success" : "skipped";
    if (step.id) stepsContext[step.id] = { outputs: result.outputs, outcome, conclusion: outcome };
    if (result.status === "failure" && !step["continue-on-error"]) status.failed = true;
    results.push(result);
    settings.onStep(result);
  }
  const context: Context = { ...settings.context, env, steps: stepsContext };
  const outputs: Record<string, string> = {};
  for (const [name, expression] of Object.entries(job.outputs ?? {})) {
    outputs[name] = toText(interpolate(expression, context));
  }
  return { id, status: status.failed ? "failure" : "success", outputs, steps: results };
}

interface ProcessRun {
  exitCode: number | null;
  outputs: Record<string, string>;
  env: Record<string, string>;
  path: string[];
  log: string;
  summary: string;
}

/** `uses: ./actions/<name>`: node24 bundle or composite steps, inputs as the runner passes them. */
async function runLocalAction(
  step: StepDef,
  context: Context,
  env: Record<string, string>,
  settings: JobRunSettings,
  extraPath: string[],
): Promise<ProcessRun> {
  const actionDir = resolve(settings.root, step.uses ?? "");
  const metadataFile = ["action.yml", "action.yaml"]
    .map((f) => join(actionDir, f))
    .find((f) => existsSync(f));
  if (!metadataFile) throw new Error(`${step.uses}: no action.yml in ${actionDir}`);
  const metadata = parseYaml(readFileSync(metadataFile, "utf8")) as {
    inputs?: Record<string, { default?: unknown; required?: boolean }>;
    outputs?: Record<string, { value?: string }>;
    runs: { using: string; main?: string; steps?: StepDef[] };
  };
  const given = resolveMap(step.with, context);
  for (const name of Object.keys(given)) {
    if (!metadata.inputs || !(name in metadata.inputs)) {
      // The runner only warns; an unknown input here is almost always a typo in the workflow.
      throw new Error(`${step.uses}: input "${name}" is not declared in ${metadataFile}`);
    }
  }
  const inputs: Record<string, string> = {};
  for (const [name, spec] of Object.entries(metadata.inputs ?? {})) {
    const value =
      name in given
        ? given[name]
        : spec.default !== undefined
          ? toText(interpolate(String(spec.default), context))
          : undefined;
    if (value !== undefined) inputs[name] = value;
  }
  const using = metadata.runs.using;
  if (/^node\d+$/.test(using)) {
    const main = resolve(actionDir, metadata.runs.main ?? "");
    if (!existsSync(main)) {
      throw new Error(
        `${step.uses}: its bundle ${main} does not exist (runs.main in ${metadataFile}); run npm run build`,
      );
    }
    const inputEnv: Record<string, string> = {};
    for (const [name, value] of Object.entries(inputs)) inputEnv[inputVariable(name)] = value;
    return spawnStep(
      process.execPath,
      [main],
      { ...env, ...inputEnv },
      settings.root,
      settings,
      extraPath,
      actionDir,
    );
  }
  if (using === "composite") {
    // The composite's steps see `inputs` (its own) and share the caller's env and files.
    const innerContext: Context = { ...context, inputs, steps: {} };
    const innerSteps = innerContext.steps as Record<string, { outputs: Record<string, string> }>;
    const combined: ProcessRun = { exitCode: 0, outputs: {}, env: {}, path: [], log: "", summary: "" };
    for (const inner of metadata.runs.steps ?? []) {
      if (inner.uses)
        throw new Error(`${step.uses}: composite steps with uses: are not supported by the harness`);
      if (!evaluateCondition(inner.if, innerContext, { failed: combined.exitCode !== 0, cancelled: false }))
        continue;
      const innerEnv = {
        ...env,
        ...combined.env,
        ...resolveMap(inner.env, innerContext),
        GITHUB_ACTION_PATH: actionDir,
      };
      const run = await runScript(
        String(interpolate(inner.run ?? "", innerContext)),
        innerEnv,
        settings.root,
        settings,
        [...combined.path, ...extraPath],
      );
      combined.log += run.log;
      combined.summary += run.summary;
      Object.assign(combined.env, run.env);
      combined.path.unshift(...run.path);
      if (inner.id) innerSteps[inner.id] = { outputs: run.outputs };
      if (run.exitCode !== 0) {
        combined.exitCode = run.exitCode;
        break;
      }
    }
    for (const [name, spec] of Object.entries(metadata.outputs ?? {})) {
      combined.outputs[name] = toText(interpolate(spec.value ?? "", innerContext));
    }
    return combined;
  }
  throw new Error(`${step.uses}: runs.using "${using}" is not supported by the harness`);
}

async function runScript(
  script: string,
  env: Record<string, string>,
  cwd: string,
  settings: JobRunSettings,
  extraPath: string[],
): Promise<ProcessRun> {
  const file = join(
    settings.runnerTemp,
    `step-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`,
  );
  writeFileSync(file, script);
  try {
    // The runner's `shell: bash`: bash --noprofile --norc -eo pipefail {0}.
    return await spawnStep(
      "bash",
      ["--noprofile", "--norc", "-eo", "pipefail", file],
      env,
      cwd,
      settings,
      extraPath,
    );
  } finally {
    rmSync(file, { force: true });
  }
}

async function spawnStep(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  settings: JobRunSettings,
  extraPath: string[],
  actionPath?: string,
): Promise<ProcessRun> {
  const dir = mkdtempSync(join(settings.runnerTemp, "files-"));
  const files = {
    GITHUB_OUTPUT: join(dir, "output"),
    GITHUB_ENV: join(dir, "env"),
    GITHUB_STATE: join(dir, "state"),
    GITHUB_PATH: join(dir, "path"),
    GITHUB_STEP_SUMMARY: join(dir, "summary"),
  };
  for (const file of Object.values(files)) writeFileSync(file, "");
  const github = settings.github;
  // The process environment of a step: the machine's (PATH, HOME) without any GITHUB_*
  // or INPUT_* of the test's own, the runner's default variables, then the env context.
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith("INPUT_") || key.startsWith("GITHUB_")) continue;
    childEnv[key] = value;
  }
  Object.assign(childEnv, {
    CI: "true",
    GITHUB_ACTIONS: "true",
    GITHUB_WORKSPACE: settings.root,
    GITHUB_SHA: String(github.sha),
    GITHUB_REF: String(github.ref),
    GITHUB_REF_NAME: String(github.ref_name),
    GITHUB_REPOSITORY: String(github.repository),
    GITHUB_RUN_ID: String(github.run_id),
    GITHUB_RUN_NUMBER: String(github.run_number),
    GITHUB_RUN_ATTEMPT: String(github.run_attempt),
    GITHUB_EVENT_NAME: String(github.event_name),
    GITHUB_EVENT_PATH: settings.eventPath,
    GITHUB_ACTOR: String(github.actor),
    RUNNER_TEMP: settings.runnerTemp,
    RUNNER_OS: "Linux",
    ...(actionPath ? { GITHUB_ACTION_PATH: actionPath } : {}),
  });
  Object.assign(childEnv, env, files);
  if (extraPath.length > 0) childEnv.PATH = [...extraPath, childEnv.PATH ?? ""].join(":");

  const { exitCode, log } = await new Promise<{ exitCode: number | null; log: string }>(
    (resolvePromise, reject) => {
      const child = spawn(command, args, { cwd, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
      let log = "";
      const append = (chunk: string) => {
        log += chunk;
      };
      child.stdout.setEncoding("utf8").on("data", append);
      child.stderr.setEncoding("utf8").on("data", append);
      const timer = setTimeout(() => {
        append(`\n[harness] step exceeded ${settings.timeoutMs} ms: killed\n`);
        child.kill("SIGKILL");
      }, settings.timeoutMs);
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolvePromise({ exitCode: code, log });
      });
    },
  );
  try {
    return {
      exitCode,
      outputs: parseFileCommand(readFileSync(files.GITHUB_OUTPUT, "utf8")),
      env: parseFileCommand(readFileSync(files.GITHUB_ENV, "utf8")),
      path: readFileSync(files.GITHUB_PATH, "utf8")
        .split("\n")
        .map((line) => line.trim())
        .filter(Boolean)
        .reverse(),
      log,
      summary: readFileSync(files.GITHUB_STEP_SUMMARY, "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function gitHead(root: string): string {
  try {
    const head = readFileSync(join(root, ".git", "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    const loose = join(root, ".git", ref);
    if (existsSync(loose)) return readFileSync(loose, "utf8").trim();
    const packed = readFileSync(join(root, ".git", "packed-refs"), "utf8");
    return (
      packed
        .split("\n")
        .find((line) => line.endsWith(` ${ref}`))
        ?.split(" ")[0] ?? "0".repeat(40)
    );
  } catch {
    return "0".repeat(40);
  }
}

// ---------------------------------------------------------------------------------------
// Expressions: the subset of GitHub's expression language the workflows use, with its
// semantics (loose equality, case-insensitive string comparison, && and || returning an
// operand, missing properties as null, null interpolated as "").

/** Resolves a `with:`/`env:` map: every value interpolated to a string. */
export function resolveMap(
  map: Record<string, unknown> | undefined,
  context: Context,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(map ?? {}))
    out[key] = toText(interpolate(String(value), context));
  return out;
}

/**
 * Replaces every `${{ expr }}` in `text`. A text that is exactly one expression keeps
 * its value's type (as the runner does for `if:` and job outputs).
 */
export function interpolate(text: string, context: Context): unknown {
  const whole = /^\s*\$\{\{([\s\S]*?)\}\}\s*$/.exec(text);
  if (whole && !whole[1]?.includes("}}")) return evaluate(whole[1] ?? "", context);
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, expression: string) =>
    toText(evaluate(expression, context)),
  );
}

/** A step's or job's `if:`: a bare expression; without a status function it means `success() && (…)`. */
export function evaluateCondition(
  condition: string | boolean | undefined,
  context: Context,
  status: { failed: boolean; cancelled: boolean },
): boolean {
  if (condition === undefined || condition === "") return !status.failed && !status.cancelled;
  if (typeof condition === "boolean") return condition && !status.failed;
  let expression = condition.trim();
  const wrapped = /^\$\{\{([\s\S]*)\}\}$/.exec(expression);
  if (wrapped) expression = wrapped[1] ?? "";
  if (!/\b(success|failure|always|cancelled)\s*\(/.test(expression))
    expression = `success() && (${expression})`;
  return truthy(evaluate(expression, { ...context, __status: status }));
}

export function toText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function truthy(value: unknown): boolean {
  return !(
    value === false ||
    value === null ||
    value === undefined ||
    value === "" ||
    value === 0 ||
    Number.isNaN(value)
  );
}

type Token = { kind: "num" | "str" | "ident" | "op" | "punct"; value: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= source.length) throw new Error(`expression: unterminated string in ${source}`);
        if (source[i] === "'") {
          if (source[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += source[i++];
      }
      tokens.push({ kind: "str", value });
    } else if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(source[i + 1] ?? ""))) {
      const match = /^-?[0-9]+(\.[0-9]+)?/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ kind: "num", value: match[0] });
      i += match[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      // Identifiers may hold hyphens (steps.scan.outputs.sarif-file, inputs.model-version).
      const match = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ kind: "ident", value: match[0] });
      i += match[0].length;
    } else {
      const two = source.slice(i, i + 2);
      if (["==", "!=", "<=", ">=", "&&", "||"].includes(two)) {
        tokens.push({ kind: "op", value: two });
        i += 2;
      } else if (["!", "<", ">"].includes(c)) {
        tokens.push({ kind: "op", value: c });
        i++;
      } else if ("().[],*".includes(c)) {
        tokens.push({ kind: "punct", value: c });
        i++;
      } else {
        throw new Error(`expression: unexpected "${c}" in ${source}`);
      }
    }
  }
  return tokens;
}

/** Evaluates one expression (the text inside `${{ }}`). */
export function evaluate(source: string, context: Context): unknown {
  const tokens = tokenize(source);
  let pos = 0;
  const peek = () => tokens[pos];
  const take = (value?: string) => {
    const token = tokens[pos];
    if (!token || (value !== undefined && token.value !== value)) {
      throw new Error(`expression: expected ${value ?? "more"} at ${token?.value ?? "the end"} in ${source}`);
    }
    pos++;
    return token;
  };
  const status = (context.__status as { failed: boolean; cancelled: boolean } | undefined) ?? {
    failed: false,
    cancelled: false,
  };

  const or = (): unknown => {
    let left = and();
    while (peek()?.value === "||") {
      take();
      const right = and();
      left = truthy(left) ? left : right;
    }
    return left;
  };
  const and = (): unknown => {
    let left = comparison();
    while (peek()?.value === "&&") {
      take();
      const right = comparison();
      left = truthy(left) ? right : left;
    }
    return left;
  };
  const comparison = (): unknown => {
    let left = unary();
    for (;;) {
      const op = peek();
      if (op?.kind !== "op" || !["==", "!=", "<", ">", "<=", ">="].includes(op.value)) return left;
      take();
      const right = unary();
      left = compare(op.value, left, right);
    }
  };
  const unary = (): unknown => {
    if (peek()?.value === "!") {
      take();
      return !truthy(unary());
    }
    return postfix();
  };
  const postfix = (): unknown => {
    let value = primary();
    for (;;) {
      const token = peek();
      if (token?.value === ".") {
        take();
        const name = take();
        if (name.value === "*")
          throw new Error(`expression: object filters (.*) are not supported: ${source}`);
        value = property(value, name.value);
      } else if (token?.value === "[") {
        take();
        const key = or();
        take("]");
        value = property(value, toText(key));
      } else {
        return value;
      }
    }
  };
  const primary = (): unknown => {
    const token = take();
    if (token.kind === "num") return Number(token.value);
    if (token.kind === "str") return token.value;
    if (token.value === "(") {
      const value = or();
      take(")");
      return value;
    }
    if (token.kind === "ident") {
      if (token.value === "true") return true;
      if (token.value === "false") return false;
      if (token.value === "null") return null;
      if (peek()?.value === "(") {
        take("(");
        const args: unknown[] = [];
        while (peek()?.value !== ")") {
          args.push(or());
          if (peek()?.value === ",") take(",");
        }
        take(")");
        return call(token.value, args);
      }
      return context[token.value] ?? null;
    }
    throw new Error(`expression: unexpected ${token.value} in ${source}`);
  };
  const call = (name: string, args: unknown[]): unknown => {
    switch (name.toLowerCase()) {
      case "success":
        return !status.failed && !status.cancelled;
      case "failure":
        return status.failed;
      case "always":
        return true;
      case "cancelled":
        return status.cancelled;
      case "format":
        return toText(args[0]).replace(/\{(\d+)\}/g, (_, n: string) => toText(args[Number(n) + 1]));
      case "contains": {
        const [haystack, needle] = args;
        if (Array.isArray(haystack)) return haystack.some((item) => compare("==", item, needle));
        return toText(haystack).toLowerCase().includes(toText(needle).toLowerCase());
      }
      case "startswith":
        return toText(args[0]).toLowerCase().startsWith(toText(args[1]).toLowerCase());
      case "endswith":
        return toText(args[0]).toLowerCase().endsWith(toText(args[1]).toLowerCase());
      case "tojson":
        return JSON.stringify(args[0] ?? null, null, 2);
      case "fromjson":
        return JSON.parse(toText(args[0]));
      case "join":
        return Array.isArray(args[0])
          ? args[0].map(toText).join(args[1] === undefined ? "," : toText(args[1]))
          : toText(args[0]);
      default:
        throw new Error(`expression: function ${name}() is not supported by the harness`);
    }
  };

  const value = or();
  if (pos !== tokens.length) throw new Error(`expression: unexpected ${tokens[pos]?.value} in ${source}`);
  return value;
}

function property(value: unknown, name: string): unknown {
  if (value === null || typeof value !== "object") return null;
  // Context keys are case-insensitive on the runner.
  const record = value as Record<string, unknown>;
  if (name in record) return record[name] ?? null;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? null : (record[key] ?? null);
}

function compare(op: string, left: unknown, right: unknown): boolean {
  let a = left;
  let b = right;
  if (typeof a === "string" && typeof b === "string") {
    a = a.toLowerCase();
    b = b.toLowerCase();
  } else if (typeof a !== typeof b || typeof a === "boolean" || a === null || b === null) {
    a = toNumber(a);
    b = toNumber(b);
  }
  switch (op) {
    case "==":
      return a === b;
    case "!=":
      return a !== b;
    case "<":
      return (a as number) < (b as number);
    case ">":
      return (a as number) > (b as number);
    case "<=":
      return (a as number) <= (b as number);
    default:
      return (a as number) >= (b as number);
  }
}

function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number") return value;
  if (typeof value === "string") return value.trim() === "" ? 0 : Number(value);
  return Number.NaN;
}

/** The names and reasons of every step a run did not execute, for a test's report. */
export function notRun(run: WorkflowRun): string[] {
  return run.steps
    .filter((step) => step.status === "skipped-by-if" || step.status === "skipped-by-harness")
    .map(
      (step) =>
        `${step.job} / ${step.name}: ${step.status === "skipped-by-if" ? "its if: is false" : step.reason}`,
    );
}

/** Makes a fresh RUNNER_TEMP (and removes it with the returned function). */
export function makeRunnerTemp(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "astrolens-runner-"));
  mkdirSync(dir, { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The script that installs actionlint, act, zizmor and shellcheck. */
export const INSTALL_WORKFLOW_TOOLS = "scripts/install-workflow-tools.sh";

/** A pinned workflow tool in .local/tools/bin; missing, it is an error naming the install script. */
export function workflowTool(name: string): string {
  const path = join(findProjectRoot(), ".local", "tools", "bin", name);
  if (!existsSync(path))
    throw new Error(`${name} is not installed at ${path}: run ${INSTALL_WORKFLOW_TOOLS}`);
  return path;
}
