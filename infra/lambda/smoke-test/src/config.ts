/**
 * Where the smoke test's expectations come from: the event first, then the function's
 * environment, then defaults. Pure (the environment is a parameter); every problem is a
 * sentence naming the field or variable and how to fix it, and all are reported at once.
 */
import { z } from "zod";
import {
  contractFromManifestText,
  parseSmokeContract,
  SmokeConfigurationError,
  type SmokeContract,
} from "./contract.js";
import { describeIssues } from "./issues.js";
import type { LatencyBudget, SmokeExpectations, SmokeTargetSpec } from "./types.js";

export type Env = Readonly<Record<string, string | undefined>>;

/** Generous for a 64x64 model on one vCPU (the service answers these images in ~10 ms). */
export const DEFAULT_LATENCY_BUDGET: LatencyBudget = { perRequest: 2_000, total: 10_000 };

/** A Lambda invocation ends at 15 minutes; a budget past that could never be met. */
const MAX_BUDGET_MS = 900_000;

export const ENV = {
  targetUrl: "SMOKE_TARGET_URL",
  contract: "SMOKE_CONTRACT_JSON",
  perRequest: "SMOKE_LATENCY_BUDGET_MS",
  total: "SMOKE_TOTAL_BUDGET_MS",
} as const;

export interface Resolved {
  contract: SmokeContract;
  budget: LatencyBudget;
}

export type Resolution<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/**
 * The expected contract and the latency budget. `where` names the event's fields in
 * messages (`hookDetails.` for the ECS hook, empty for a direct invocation).
 */
export function resolveExpectations(input: SmokeExpectations, env: Env, where: string): Resolution<Resolved> {
  const problems: string[] = [];
  let contract: SmokeContract | undefined;
  try {
    contract = resolveContract(input, env, where);
  } catch (err) {
    if (!(err instanceof SmokeConfigurationError)) throw err;
    problems.push(err.message);
  }
  const budget = resolveBudget(input.latencyBudgetMs, env, where, problems);
  if (contract === undefined || problems.length > 0) return { ok: false, problems };
  return { ok: true, value: { contract, budget } };
}

function resolveContract(input: SmokeExpectations, env: Env, where: string): SmokeContract {
  if (input.contract !== undefined) {
    const contract = parseSmokeContract(input.contract, `${where}contract`);
    if (input.manifestSha256 !== undefined && contract.manifestSha256 === undefined) {
      return { ...contract, manifestSha256: parseSha256(input.manifestSha256, `${where}manifestSha256`) };
    }
    return contract;
  }
  if (input.manifest !== undefined) {
    if (typeof input.manifest === "string") {
      const contract = contractFromManifestText(input.manifest, `${where}manifest`);
      if (input.manifestSha256 !== undefined && input.manifestSha256 !== contract.manifestSha256) {
        throw new SmokeConfigurationError(
          `${where}manifestSha256 is ${input.manifestSha256}, but the sha256 of ${where}manifest (the text given) is ${contract.manifestSha256}; pass the manifest file's exact text, or drop ${where}manifestSha256`,
        );
      }
      return contract;
    }
    if (typeof input.manifest !== "object" || input.manifest === null) {
      throw new SmokeConfigurationError(
        `${where}manifest must be the manifest.json text or its parsed object, got ${typeof input.manifest}`,
      );
    }
    // An object lost the file's bytes, so its sha256 can only come from the caller.
    const contract = contractFromManifestText(JSON.stringify(input.manifest), `${where}manifest`);
    const { manifestSha256: _unknowable, ...rest } = contract;
    return input.manifestSha256 === undefined
      ? rest
      : { ...rest, manifestSha256: parseSha256(input.manifestSha256, `${where}manifestSha256`) };
  }
  const fromEnv = env[ENV.contract]?.trim();
  if (fromEnv) {
    let json: unknown;
    try {
      json = JSON.parse(fromEnv);
    } catch (err) {
      throw new SmokeConfigurationError(
        `${ENV.contract} is not valid JSON (${(err as Error).message}); set it to the smoke contract's JSON`,
      );
    }
    return parseSmokeContract(json, ENV.contract);
  }
  throw new SmokeConfigurationError(
    `no expected model contract: pass ${where}contract (contractFromManifest of the released model's manifest.json) ` +
      `or ${where}manifest (the manifest.json text), or set ${ENV.contract} on the function`,
  );
}

function parseSha256(value: unknown, field: string): string {
  if (typeof value === "string" && /^[0-9a-f]{64}$/.test(value)) return value;
  throw new SmokeConfigurationError(
    `${field} must be 64 lower-case hex digits (a sha256), got ${JSON.stringify(value)}`,
  );
}

function resolveBudget(
  input: Partial<LatencyBudget> | undefined,
  env: Env,
  where: string,
  problems: string[],
): LatencyBudget {
  const budget = { ...DEFAULT_LATENCY_BUDGET };
  if (input !== undefined && (typeof input !== "object" || input === null || Array.isArray(input))) {
    problems.push(
      `${where}latencyBudgetMs must be { perRequest?, total? } in milliseconds, got ${JSON.stringify(input)}`,
    );
    input = undefined;
  }
  for (const key of ["perRequest", "total"] as const) {
    const raw = env[ENV[key]]?.trim();
    if (raw) {
      const value = Number(raw);
      if (/^\d+$/.test(raw) && value >= 1 && value <= MAX_BUDGET_MS) budget[key] = value;
      else
        problems.push(`${ENV[key]} must be a whole number of milliseconds, 1-${MAX_BUDGET_MS}, got "${raw}"`);
    }
    const given: unknown = input?.[key];
    if (given !== undefined) {
      if (typeof given === "number" && Number.isInteger(given) && given >= 1 && given <= MAX_BUDGET_MS) {
        budget[key] = given;
      } else {
        problems.push(
          `${where}latencyBudgetMs.${key} must be a whole number of milliseconds, 1-${MAX_BUDGET_MS}, got ${JSON.stringify(given)}`,
        );
      }
    }
  }
  if (budget.perRequest > budget.total) {
    problems.push(
      `the per-request latency budget (${budget.perRequest} ms) is larger than the total (${budget.total} ms); raise the total or lower the per-request budget`,
    );
  }
  return budget;
}

/** An http(s) URL for the target, or the problem with it. */
export function parseTargetUrl(value: unknown, field: string): Resolution<string> {
  if (typeof value !== "string" || value.trim() === "") {
    return { ok: false, problems: [`${field} must be the target's base URL, e.g. http://alb-dns:8443/`] };
  }
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return { ok: false, problems: [`${field} is not a URL: ${JSON.stringify(value)}`] };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { ok: false, problems: [`${field} must be http:// or https://, got ${url.protocol}`] };
  }
  return { ok: true, value: url.href };
}

// SageMaker's own rule for endpoint and variant names.
const sageMakerName = z
  .string()
  .regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/, "is not a SageMaker name (1-63 letters, digits, hyphens)");

const directEventSchema = z.object({
  target: z.union(
    [
      z.object({ url: z.string() }).strict(),
      z.object({ endpointName: sageMakerName, targetVariant: sageMakerName.optional() }).strict(),
    ],
    { error: "must be { url } or { endpointName, targetVariant? }" },
  ),
  contract: z.unknown().optional(),
  manifest: z.unknown().optional(),
  manifestSha256: z.unknown().optional(),
  latencyBudgetMs: z.unknown().optional(),
});

/** A direct invocation's target, or what is wrong with the event. */
export function parseDirectTarget(event: unknown): Resolution<SmokeTargetSpec> {
  const parsed = directEventSchema.safeParse(event);
  if (!parsed.success) {
    return {
      ok: false,
      problems: [
        `the event is neither an ECS lifecycle hook event nor a direct invocation { target: { url } | { endpointName }, contract | manifest, latencyBudgetMs? } (${describeIssues(parsed.error).join("; ")})`,
      ],
    };
  }
  const { target } = parsed.data;
  if ("url" in target) {
    const url = parseTargetUrl(target.url, "target.url");
    return url.ok ? { ok: true, value: { url: url.value } } : url;
  }
  return { ok: true, value: target };
}
