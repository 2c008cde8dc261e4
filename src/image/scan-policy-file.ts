import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { parseSeverities, type ScanPolicy, scanPolicyWithDefaults } from "./scan-policy.js";
import { loadWaivers } from "./waivers.js";

/**
 * The scan policy as a file, for the CLI and for teams that keep it in the repository:
 *
 * ```yaml
 * fail-on: CRITICAL,HIGH
 * report-on: CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN
 * ignore-unfixed: false
 * waivers-file: scan-waivers.yaml   # relative to this file
 * ```
 */
const policyFileSchema = z.strictObject({
  "fail-on": z.string().optional(),
  "report-on": z.string().optional(),
  "ignore-unfixed": z.boolean().optional(),
  "waivers-file": z.string().optional(),
});

export interface PolicySettings {
  failOn?: string;
  reportOn?: string;
  ignoreUnfixed?: boolean;
  waiversFile?: string;
}

/** Reads a policy file into settings (paths resolved against the file). */
export function readPolicyFile(path: string): PolicySettings {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, "utf8")) ?? {};
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === "ENOENT"
        ? "does not exist"
        : `is not valid YAML (${(err as Error).message.split("\n")[0]})`;
    throw new ConfigurationError(`policy file ${path} ${reason}`);
  }
  const parsed = policyFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join(".") || "(top level)"}: ${issue.message}`,
    );
    throw new ConfigurationError(
      `policy file ${path}: ${problems.join("; ")}; allowed keys are fail-on, report-on, ignore-unfixed, waivers-file`,
    );
  }
  const file = parsed.data;
  return {
    failOn: file["fail-on"],
    reportOn: file["report-on"],
    ignoreUnfixed: file["ignore-unfixed"],
    waiversFile: file["waivers-file"] ? resolve(dirname(path), file["waivers-file"]) : undefined,
  };
}

/**
 * Turns settings (from action inputs, CLI flags or a policy file) into a policy,
 * naming the input that was wrong when one is.
 */
export async function resolveScanPolicy(settings: PolicySettings, now = new Date()): Promise<ScanPolicy> {
  return scanPolicyWithDefaults({
    now,
    ...(settings.failOn ? { failOn: parseSeverities(settings.failOn, "fail-on") } : {}),
    ...(settings.reportOn ? { reportOn: parseSeverities(settings.reportOn, "report-on") } : {}),
    ...(settings.ignoreUnfixed !== undefined ? { ignoreUnfixed: settings.ignoreUnfixed } : {}),
    ...(settings.waiversFile ? { waivers: await loadWaivers(settings.waiversFile) } : {}),
  });
}
