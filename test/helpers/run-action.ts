import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findProjectRoot } from "../../src/local/paths.js";

export interface ActionRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Parsed from the GITHUB_OUTPUT file the action wrote. */
  outputs: Record<string, string>;
  /** The GITHUB_STEP_SUMMARY file's content. */
  summary: string;
}

/** The environment variable the runner passes an input in: spaces to `_`, upper-cased, dashes kept. */
export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, "_").toUpperCase()}`;
}

/**
 * Parses a GitHub file command file (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STATE): each entry
 * is either `name=value` on one line or the heredoc form `name<<DELIMITER`, the value's
 * lines, then `DELIMITER` alone on a line. A heredoc without its closing delimiter is an
 * error, as it is on the runner.
 */
export function parseFileCommand(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line === "") continue;
    const heredoc = line.indexOf("<<");
    const equals = line.indexOf("=");
    if (heredoc > 0 && (equals === -1 || heredoc < equals)) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      const value: string[] = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        if (lines[i] === delimiter) {
          closed = true;
          break;
        }
        value.push(lines[i] ?? "");
      }
      if (!closed) throw new Error(`file command: "${name}<<${delimiter}" is never closed`);
      values[name] = value.join("\n");
    } else if (equals > 0) {
      values[line.slice(0, equals)] = line.slice(equals + 1);
    } else {
      throw new Error(`file command: cannot parse line ${JSON.stringify(line)}`);
    }
  }
  return values;
}

/**
 * Runs a bundled action (`node dist/<name>/index.js`, or `service/dist/<name>/index.js` for
 * the composite actions that need the inference runtime) the way the GitHub runner does:
 * inputs as `INPUT_*` variables, fresh GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / GITHUB_ENV /
 * GITHUB_STATE files and RUNNER_TEMP, the repository root as working directory. The
 * parent's environment is passed on (PATH, HOME), minus any `INPUT_*` and `GITHUB_*`
 * variables of its own, so nothing leaks into the step but what is given.
 */
export async function runActionBundle(
  name: string,
  inputs: Record<string, string>,
  env: Record<string, string> = {},
): Promise<ActionRun> {
  const root = findProjectRoot();
  // Composite actions that need the inference runtime have their bundle under service/dist.
  const candidates = [join(root, "dist", name, "index.js"), join(root, "service", "dist", name, "index.js")];
  const bundle = candidates.find((path) => existsSync(path));
  if (!bundle) throw new Error(`no bundle for ${name} (${candidates.join(" or ")}): run npm run build`);
  const dir = mkdtempSync(join(tmpdir(), `astrolens-action-${name}-`));
  const files = {
    GITHUB_OUTPUT: join(dir, "output"),
    GITHUB_STEP_SUMMARY: join(dir, "step-summary"),
    GITHUB_ENV: join(dir, "env"),
    GITHUB_STATE: join(dir, "state"),
  };
  for (const file of Object.values(files)) writeFileSync(file, "");
  const runnerTemp = join(dir, "runner-temp");
  mkdirSync(runnerTemp);

  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith("INPUT_") || key.startsWith("GITHUB_")) continue;
    childEnv[key] = value;
  }
  Object.assign(childEnv, env, files, { RUNNER_TEMP: runnerTemp, GITHUB_ACTIONS: "true", CI: "true" });
  for (const [input, value] of Object.entries(inputs)) childEnv[inputVariable(input)] = value;

  try {
    const { exitCode, stdout, stderr } = await new Promise<{
      exitCode: number | null;
      stdout: string;
      stderr: string;
    }>((resolve, reject) => {
      const child = spawn(process.execPath, [bundle], {
        cwd: root,
        env: childEnv,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ exitCode: code, stdout, stderr }));
    });
    return {
      exitCode,
      stdout,
      stderr,
      outputs: parseFileCommand(readFileSync(files.GITHUB_OUTPUT, "utf8")),
      summary: readFileSync(files.GITHUB_STEP_SUMMARY, "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
