/** Checks -> the verdict, and the verdict's one-sentence summary. */
import type { SmokeCheck, SmokeVerdict } from "./types.js";

/** The verdict of a run: ok only when every check is; the summary names the first failure. */
export function summarise(
  target: string,
  checks: SmokeCheck[],
  modelVersion: string | null,
  elapsedMs: number,
): SmokeVerdict {
  const failed = checks.filter((c) => !c.ok);
  const first = failed[0];
  const summary =
    first === undefined
      ? `smoke test passed: ${checks.length} check${checks.length === 1 ? "" : "s"} against ${target}` +
        `${modelVersion === null ? "" : ` (model ${modelVersion})`} in ${Math.round(elapsedMs)} ms`
      : `smoke test failed at "${first.name}": ${first.detail}` +
        `${failed.length > 1 ? ` (${failed.length} of ${checks.length} checks failed)` : ""}`;
  return { ok: first === undefined, target, modelVersion, checks, summary };
}

/** The verdict when the test could not start: what is missing, and how to fix it. */
export function configurationFailure(target: string, problems: string[]): SmokeVerdict {
  return summarise(
    target,
    [{ name: "configuration", ok: false, detail: problems.join("; "), ms: 0 }],
    null,
    0,
  );
}
