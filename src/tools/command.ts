import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { ConfigurationError } from "../errors.js";
import type { Logger } from "../gh/logger.js";

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  logger?: Logger;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Log each output line at info level as it arrives (long builds show progress). */
  stream?: boolean;
  /** How to install the program, for the error when it is missing. */
  installHint?: string;
}

export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} exited with ${exitCode ?? "a signal"}: ${lastLines(stderr, 8) || "(no output)"}`);
  }
}

/**
 * Runs a program without a shell (arguments are never re-parsed, so inputs cannot
 * inject commands), collecting its output. A missing program is a ConfigurationError
 * that says how to install it; a non-zero exit is a CommandError carrying stderr.
 */
export function runCommand(
  program: string,
  args: string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const { logger } = options;
  logger?.debug(`$ ${program} ${args.join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const forward = (chunk: string) => {
      if (!options.stream || !logger) return;
      for (const line of chunk.split("\n")) if (line.trim()) logger.info(line);
    };
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      forward(chunk);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      forward(chunk);
    });
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") {
        reject(
          new ConfigurationError(
            `${program} is not installed or not on PATH${options.installHint ? `: ${options.installHint}` : ""}`,
          ),
        );
      } else reject(err);
    });
    child.on("close", (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new CommandError(program, code, stderr || stdout));
    });
  });
}

/** The full path of `program` on PATH (or in `extraDirs`), or undefined. */
export function findProgram(
  program: string,
  extraDirs: string[] = [],
  env = process.env,
): string | undefined {
  const dirs = [...extraDirs, ...(env.PATH ?? "").split(delimiter)].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

function lastLines(text: string, count: number): string {
  return text.trim().split("\n").slice(-count).join("\n");
}
