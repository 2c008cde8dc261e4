import { existsSync, readFileSync } from "node:fs";
import { ConfigurationError } from "../errors.js";

/** Parses a `KEY=value` env file (the format `set -a; . file` and dotenv both read). */
export function parseEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match?.[1]) vars[match[1]] = match[2]?.replace(/^"(.*)"$/, "$1") ?? "";
  }
  return vars;
}

export function formatEnvFile(vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([key, value]) => `${key}=${value}`);
  return `# Written by \`astrolens-release local up\`: the local AWS and registry.\n${lines.join("\n")}\n`;
}

/** Reads the local stack's env file, or says how to create it. */
export function readLocalEnv(envFile: string): Record<string, string> {
  if (!existsSync(envFile)) {
    throw new ConfigurationError(
      `the local AWS is not set up (${envFile} is missing): run \`astrolens-release local up\``,
    );
  }
  return parseEnvFile(readFileSync(envFile, "utf8"));
}
