import * as core from "@actions/core";
import { errorMessage } from "../errors.js";
import type { InputReader } from "./inputs.js";
import type { Logger } from "./logger.js";
import type { Summary } from "./summary.js";

/** The runner's side of the seams: the only module that imports `@actions/core`. */
export const actionsLogger: Logger = {
  debug: (m) => core.debug(m),
  info: (m) => core.info(m),
  warning: (m) => core.warning(m),
  error: (m) => core.error(m),
  group: (name, fn) => core.group(name, fn),
  setSecret: (value) => {
    if (value) core.setSecret(value);
  },
};

export const actionsInputReader: InputReader = (name) => core.getInput(name);

export function setOutputs(outputs: Record<string, string | number | boolean>): void {
  for (const [name, value] of Object.entries(outputs)) core.setOutput(name, String(value));
}

export async function writeSummary(summary: Summary): Promise<void> {
  // Outside a runner (local-action without a summary file) there is nowhere to write.
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  await core.summary.addRaw(summary.toMarkdown()).write();
}

/**
 * Runs an action's body with the one failure path every entry shares: the error's
 * message, prefixed once, goes to `setFailed`.
 */
export async function runAction(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    core.debug(err instanceof Error && err.stack ? err.stack : String(err));
    core.setFailed(`${name} failed: ${errorMessage(err)}`);
  }
}
