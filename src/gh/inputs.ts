import type { z } from "zod";
import { ConfigurationError } from "../errors.js";

/** Reads one raw input by its kebab-case name; "" when it was not given. */
export type InputReader = (name: string) => string;

/**
 * Parses raw string inputs with a zod schema whose keys are the input names, so every
 * action states its inputs, their defaults and their checks in one place. A bad value
 * is a ConfigurationError naming the input and what was expected.
 */
export function parseInputs<S extends z.ZodObject>(schema: S, read: InputReader): z.infer<S> {
  const raw: Record<string, string | undefined> = {};
  for (const name of Object.keys(schema.shape)) {
    const value = read(name).trim();
    raw[name] = value === "" ? undefined : value;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "?");
    const given = raw[name];
    const seen = given === undefined ? "it was not given" : `got ${JSON.stringify(given)}`;
    return `input "${name}": ${issue.message} (${seen})`;
  });
  throw new ConfigurationError(problems.join("; "));
}

/** Splits a list input given as commas and/or new lines. */
export function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(/[\n,]/)
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** Reads `INPUT_<NAME>` the way the Actions runner passes inputs (for the CLI and tests). */
export function envInputReader(env: NodeJS.ProcessEnv = process.env): InputReader {
  return (name) => env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "";
}
