/**
 * The function's two ways in: the ECS lifecycle hook (AWS-BEHAVIOUR.md A3) and a direct
 * invocation. Both resolve their expectations, run the same test and log the verdict as
 * one JSON line; neither throws, because a thrown error would reach ECS as a bare
 * "function error" instead of the reason the release was rolled back.
 */
import { z } from "zod";
import { checkTestTraffic } from "./checks.js";
import { ENV, type Env, parseDirectTarget, parseTargetUrl, resolveExpectations } from "./config.js";
import { runSmokeTest } from "./run.js";
import type { SmokeTarget } from "./targets.js";
import type {
  EcsLifecycleHookEvent,
  SmokeCheck,
  SmokeHookInput,
  SmokeHookResponse,
  SmokeInvocation,
  SmokeVerdict,
} from "./types.js";
import { configurationFailure, summarise } from "./verdict.js";

/** The stage at which the test runs: green takes test traffic, not yet production. */
export const SMOKE_STAGE = "POST_TEST_TRAFFIC_SHIFT";

/** The edges, injected so the dispatch is tested without AWS or the network. */
export interface SmokeDeps {
  env: Env;
  httpTarget(url: string): SmokeTarget;
  sageMakerTarget(endpointName: string, targetVariant?: string): SmokeTarget;
  /** One structured log entry (the handler writes it as a JSON line for CloudWatch Logs). */
  log(entry: Record<string, unknown>): void;
  now?: () => number;
}

/** Any event with a `lifecycleStage` is ECS's; anything else is a direct invocation. */
export function isHookEvent(event: unknown): event is { lifecycleStage: unknown } {
  return typeof event === "object" && event !== null && "lifecycleStage" in event;
}

/** The handler: never throws; a bug still answers FAILED (hook) or a failed verdict (direct). */
export function createSmokeHandler(
  deps: SmokeDeps,
): (event: unknown) => Promise<SmokeHookResponse | SmokeVerdict> {
  return async (event) => {
    const hook = isHookEvent(event);
    try {
      return hook ? await handleHookEvent(event, deps) : await handleDirectInvocation(event, deps);
    } catch (err) {
      const detail = `internal error in the smoke test: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
      const verdict = summarise("(unknown)", [{ name: "smoke test", ok: false, detail, ms: 0 }], null, 0);
      deps.log({ level: "error", message: "smoke test crashed", verdict });
      return hook ? toHookResponse(verdict) : verdict;
    }
  };
}

// Lenient on purpose: ECS builds these events, and a field we do not use must not fail a release.
const hookEventSchema = z.object({
  executionId: z.string().optional(),
  lifecycleStage: z.string(),
  resourceArn: z.string().optional(),
  executionDetails: z
    .object({
      serviceArn: z.string().optional(),
      targetServiceRevisionArn: z.string().optional(),
      testTrafficWeights: z.record(z.string(), z.number()).optional(),
      productionTrafficWeights: z.record(z.string(), z.number()).optional(),
    })
    .optional()
    .catch(undefined),
  hookDetails: z.unknown().optional(),
});

/** ECS calls: run the test at POST_TEST_TRAFFIC_SHIFT, answer SUCCEEDED elsewhere. */
export async function handleHookEvent(event: unknown, deps: SmokeDeps): Promise<SmokeHookResponse> {
  const parsed = hookEventSchema.safeParse(event);
  if (!parsed.success) {
    const verdict = configurationFailure("(unknown)", [
      `the ECS lifecycle hook event has no usable lifecycleStage: ${JSON.stringify((event as EcsLifecycleHookEvent).lifecycleStage)}`,
    ]);
    deps.log({ level: "error", message: "smoke test verdict", mode: "hook", verdict });
    return toHookResponse(verdict);
  }
  const { executionId, lifecycleStage, resourceArn, executionDetails } = parsed.data;
  const ids = { mode: "hook", executionId, lifecycleStage, resourceArn };

  if (lifecycleStage !== SMOKE_STAGE) {
    // ECS re-invokes the traffic-shift hooks during a rollback, with the weights reversed:
    // green is being abandoned then, and judging it could only get in the rollback's way.
    const summary = `smoke test not run at ${lifecycleStage}: it runs only at ${SMOKE_STAGE}; nothing to judge at this stage (ECS also calls traffic-shift hooks during a rollback)`;
    deps.log({ level: "info", message: summary, ...ids });
    return {
      hookStatus: "SUCCEEDED",
      hookDetails: { ok: true, summary, target: null, modelVersion: null, failedChecks: [] },
    };
  }

  const details = parseHookDetails(parsed.data.hookDetails);
  const problems = details.ok ? [] : details.problems;
  const input: SmokeHookInput = details.ok ? details.value : {};
  const url =
    input.targetUrl !== undefined
      ? parseTargetUrl(input.targetUrl, "hookDetails.targetUrl")
      : deps.env[ENV.targetUrl]?.trim()
        ? parseTargetUrl(deps.env[ENV.targetUrl], ENV.targetUrl)
        : {
            ok: false as const,
            problems: [
              `no target: set ${ENV.targetUrl} on the function to the ALB test listener's URL, or pass hookDetails.targetUrl`,
            ],
          };
  if (!url.ok) problems.push(...url.problems);
  const expectations = resolveExpectations(input, deps.env, "hookDetails.");
  if (!expectations.ok) problems.push(...expectations.problems);

  let verdict: SmokeVerdict;
  if (!url.ok || !expectations.ok || problems.length > 0) {
    verdict = configurationFailure(url.ok ? url.value : "(no target)", problems);
  } else {
    const before: SmokeCheck[] = [];
    const traffic = checkTestTraffic(executionDetails ?? {});
    if (traffic !== undefined) before.push(traffic);
    verdict = await runSmokeTest({
      target: deps.httpTarget(url.value),
      ...expectations.value,
      before,
      ...(deps.now ? { now: deps.now } : {}),
    });
  }
  deps.log({ level: verdict.ok ? "info" : "error", message: "smoke test verdict", ...ids, verdict });
  return toHookResponse(verdict);
}

/** Someone invoked the function with `{ target, contract | manifest, latencyBudgetMs? }`. */
export async function handleDirectInvocation(event: unknown, deps: SmokeDeps): Promise<SmokeVerdict> {
  const spec = parseDirectTarget(event);
  let verdict: SmokeVerdict;
  if (!spec.ok) {
    verdict = configurationFailure("(no target)", spec.problems);
  } else {
    const target =
      "url" in spec.value
        ? deps.httpTarget(spec.value.url)
        : deps.sageMakerTarget(spec.value.endpointName, spec.value.targetVariant);
    const expectations = resolveExpectations(event as SmokeInvocation, deps.env, "");
    verdict = expectations.ok
      ? await runSmokeTest({ target, ...expectations.value, ...(deps.now ? { now: deps.now } : {}) })
      : configurationFailure(target.label, expectations.problems);
  }
  deps.log({ level: verdict.ok ? "info" : "error", message: "smoke test verdict", mode: "direct", verdict });
  return verdict;
}

/** The hook's answer: the verdict's decision, and its summary for whoever reads the deployment. */
export function toHookResponse(verdict: SmokeVerdict): SmokeHookResponse {
  return {
    hookStatus: verdict.ok ? "SUCCEEDED" : "FAILED",
    hookDetails: {
      ok: verdict.ok,
      summary: verdict.summary,
      target: verdict.target,
      modelVersion: verdict.modelVersion,
      failedChecks: verdict.checks.filter((c) => !c.ok).map((c) => c.name),
    },
  };
}

/**
 * The hook's configured details. ECS passes a JSON document; accept its text too, since
 * what arrives depends on how the hook was configured.
 */
function parseHookDetails(
  raw: unknown,
): { ok: true; value: SmokeHookInput } | { ok: false; problems: string[] } {
  if (raw === undefined || raw === null) return { ok: true, value: {} };
  let value: unknown = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch (err) {
      return { ok: false, problems: [`hookDetails is not valid JSON: ${(err as Error).message}`] };
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      ok: false,
      problems: [
        `hookDetails must be an object { targetUrl?, contract?, manifest?, latencyBudgetMs? }, got ${JSON.stringify(value)}`,
      ],
    };
  }
  return { ok: true, value: value as SmokeHookInput };
}
