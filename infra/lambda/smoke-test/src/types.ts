/**
 * Everything that crosses the smoke-test Lambda's boundary: the two events it accepts, the
 * ECS hook response and the verdict. Type-only, so the deploy code (src/deploy) can import
 * it without pulling in the Lambda's runtime code.
 */
import type { SmokeContract } from "./contract.js";

export type { SmokeContract } from "./contract.js";

/**
 * ECS lifecycle stages (AWS-BEHAVIOUR.md A2). Open-ended: the describe-side enum already
 * lacks one stage, so an unknown stage must not be a type error for callers.
 */
export type EcsLifecycleStage =
  | "RECONCILE_SERVICE"
  | "PRE_SCALE_UP"
  | "POST_SCALE_UP"
  | "TEST_TRAFFIC_SHIFT"
  | "POST_TEST_TRAFFIC_SHIFT"
  | "PRE_PRODUCTION_TRAFFIC_SHIFT"
  | "PRODUCTION_TRAFFIC_SHIFT"
  | "POST_PRODUCTION_TRAFFIC_SHIFT"
  | (string & {});

/** What ECS sends a Lambda lifecycle hook (AWS-BEHAVIOUR.md A3). */
export interface EcsLifecycleHookEvent {
  executionId: string;
  lifecycleStage: EcsLifecycleStage;
  /** The service-deployment ARN. */
  resourceArn: string;
  executionDetails: {
    serviceArn: string;
    /** The green revision, also during a rollback. */
    targetServiceRevisionArn: string;
    /** Revision ARN -> percent; often `{}`. */
    testTrafficWeights: Record<string, number>;
    productionTrafficWeights: Record<string, number>;
  };
  /** The hook's configured `hookDetails` (a JSON document; a JSON string is accepted too). */
  hookDetails?: SmokeHookInput | string;
}

/**
 * What the deploy code puts in `lifecycleHooks[].hookDetails` for this hook. Each field
 * overrides the function's environment (SMOKE_TARGET_URL, SMOKE_CONTRACT_JSON,
 * SMOKE_LATENCY_BUDGET_MS, SMOKE_TOTAL_BUDGET_MS).
 */
export interface SmokeHookInput extends SmokeExpectations {
  /** The ALB test listener's URL, e.g. `http://alb-dns:8443/`. */
  targetUrl?: string;
}

/** Where the expected contract and the latency budget come from, in either mode. */
export interface SmokeExpectations {
  /** The model's smoke contract (`contractFromManifest`); wins over `manifest`. */
  contract?: SmokeContract;
  /**
   * The whole model manifest: its JSON text (then its sha256 is the expected
   * `manifestSha256`, as the service hashes the file's bytes) or the parsed object.
   */
  manifest?: string | Record<string, unknown>;
  /** The expected manifest sha256 when `manifest` is an object. */
  manifestSha256?: string;
  latencyBudgetMs?: Partial<LatencyBudget>;
}

/** The ECS hook response contract (AWS-BEHAVIOUR.md A3). */
export interface EcsLifecycleHookResponse {
  hookStatus: "SUCCEEDED" | "FAILED" | "IN_PROGRESS";
  /** Seconds before ECS re-invokes an IN_PROGRESS hook. */
  callBackDelay?: number;
  hookDetails?: Record<string, unknown>;
}

/** This hook's response: it decides in one invocation, so never IN_PROGRESS. */
export interface SmokeHookResponse extends EcsLifecycleHookResponse {
  hookStatus: "SUCCEEDED" | "FAILED";
  hookDetails: SmokeHookOutcome;
}

/**
 * The verdict, shortened for `hookDetails` (the full one goes to the function's log). A type
 * alias, not an interface, so it is assignable to the JSON document ECS takes.
 */
export type SmokeHookOutcome = {
  ok: boolean;
  summary: string;
  /** Null when the stage does not run the test. */
  target: string | null;
  modelVersion: string | null;
  failedChecks: string[];
};

/** Invoking the function directly (the deploy code, or a person with `aws lambda invoke`). */
export interface SmokeInvocation extends SmokeExpectations {
  target: SmokeTargetSpec;
}

export type SmokeTargetSpec =
  | { url: string }
  /** SageMaker InvokeEndpoint; `targetVariant` pins one production variant. */
  | { endpointName: string; targetVariant?: string };

/** Milliseconds. */
export interface LatencyBudget {
  /** Each request, /ping included, from sending to the whole body received. */
  perRequest: number;
  /** The whole test; also bounds how long the function runs. */
  total: number;
}

export interface SmokeCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** Time the check's request took (0 when it sent none). */
  ms: number;
  /** Set when the check does not apply to this target (ok is then true). */
  skipped?: true;
}

export interface SmokeVerdict {
  ok: boolean;
  /** The URL, or `sagemaker:<endpoint>[/<variant>]`. */
  target: string;
  /** The version the target reported serving; null when it never said. */
  modelVersion: string | null;
  checks: SmokeCheck[];
  /** One sentence; names the first failed check. */
  summary: string;
}
