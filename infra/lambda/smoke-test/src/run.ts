/**
 * One smoke test: /ping, each known image through /invocations, the total latency. Requests
 * go one at a time, so each latency is the target's own, not a queue behind our requests.
 */
import {
  checkInvocation,
  checkPing,
  checkTotalLatency,
  type Exchange,
  reportedModelVersion,
} from "./checks.js";
import type { SmokeContract } from "./contract.js";
import { type KnownImage, knownImages } from "./images.js";
import type { Reply, SmokeTarget } from "./targets.js";
import type { LatencyBudget, SmokeCheck, SmokeVerdict } from "./types.js";
import { summarise } from "./verdict.js";

export interface SmokeRun {
  target: SmokeTarget;
  contract: SmokeContract;
  budget: LatencyBudget;
  images?: readonly KnownImage[];
  /** Checks made before any request (e.g. the ECS test-traffic weights), listed first. */
  before?: SmokeCheck[];
  /** Milliseconds, monotonic. */
  now?: () => number;
}

/**
 * Runs the smoke test. Never throws for anything the target does: every failure is a
 * check. Each request may take what is left of the total budget (so a slow answer is
 * measured, not cut off at the per-request budget), and none starts once it is spent.
 */
export async function runSmokeTest(run: SmokeRun): Promise<SmokeVerdict> {
  const { target, contract, budget } = run;
  const now = run.now ?? (() => performance.now());
  const started = now();
  const checks: SmokeCheck[] = [...(run.before ?? [])];
  let modelVersion: string | null = null;
  let requests = 0;

  const exchange = async (send: (signal: AbortSignal) => Promise<Reply>): Promise<Exchange> => {
    const left = budget.total - (now() - started);
    if (left <= 0) {
      return { kind: "not-sent", reason: `the total latency budget of ${budget.total} ms was spent` };
    }
    requests += 1;
    const signal = AbortSignal.timeout(Math.ceil(left));
    const t0 = now();
    let result: Exchange;
    try {
      result = { kind: "reply", ...(await send(signal)), ms: now() - t0 };
    } catch (err) {
      const ms = now() - t0;
      const message = signal.aborted
        ? `none within ${Math.round(ms)} ms, when the total latency budget of ${budget.total} ms ran out`
        : describeError(err);
      result = { kind: "error", message, ms };
    }
    modelVersion ??= reportedModelVersion(result) ?? null;
    return result;
  };

  if (target.ping) {
    const ping = target.ping.bind(target);
    checks.push(checkPing(await exchange(ping), contract, budget));
  } else {
    checks.push({
      name: "ping",
      ok: true,
      skipped: true,
      detail: `skipped: ${target.pingSkipped ?? "no /ping"}`,
      ms: 0,
    });
  }
  for (const image of run.images ?? knownImages) {
    const reply = await exchange((signal) => target.invoke(image.bytes, image.contentType, signal));
    checks.push(checkInvocation(image, reply, contract, budget));
  }
  const elapsed = now() - started;
  checks.push(checkTotalLatency(elapsed, requests, budget));
  return summarise(target.label, checks, modelVersion, elapsed);
}

/** An error without an answer, with its cause (fetch hides ECONNREFUSED in `cause`). */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  const name = err.name && err.name !== "Error" && err.name !== "TypeError" ? `${err.name}: ` : "";
  return `${name}${err.message}${cause}`;
}
