import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { ConfigurationError } from "../errors.js";
import { OOD_SCORES, type OodScoreName } from "./metrics.js";

/**
 * The accuracy gate's policy, from `.astrolens/gate-policy.yaml`:
 *
 * ```yaml
 * min-accuracy: 0.85                 # floor on the candidate's accuracy
 * max-accuracy-regression: 0.01      # largest tolerated drop vs production
 * min-class-recall: 0.7              # or per class: { galaxy: 0.8, star: 0.7 }
 * min-ood-auroc: 0.8                 # the ensemble; or per score: { msp: 0.8, ensemble: 0.85 }
 * max-map-regression: 0.02           # detector mAP@0.5 drop vs production
 * significance: 0.05
 * bootstrap-iterations: 2000
 * seed: 20240601
 * inconclusive: block                # or allow
 * ```
 */
export interface GatePolicy {
  /** Floor on the candidate's accuracy; no floor when absent. */
  minAccuracy?: number;
  /** Largest drop of candidate accuracy below production's that still counts as no regression. */
  maxAccuracyRegression: number;
  /** Floor on each class's recall: one number for every class, or a floor per class name. */
  minClassRecall?: number | Record<string, number>;
  /** Floor on the candidate's OOD AUROC per score; a bare number in the file means the ensemble. */
  minOodAuroc?: Partial<Record<OodScoreName, number>>;
  /** Largest tolerated drop of detector mAP@0.5 (point estimate); unchecked when absent. */
  maxMapRegression?: number;
  /** Alpha for McNemar's test; the bootstrap intervals use 1 − alpha coverage. */
  significance: number;
  bootstrapIterations: number;
  seed: number;
  /** Whether an inconclusive verdict blocks the release. */
  inconclusive: "block" | "allow";
}

export const DEFAULT_GATE_POLICY: GatePolicy = {
  maxAccuracyRegression: 0.01,
  significance: 0.05,
  bootstrapIterations: 2000,
  seed: 20240601,
  inconclusive: "block",
};

const fraction = z.number().min(0).max(1);

const policySchema = z.strictObject({
  "min-accuracy": fraction.optional(),
  "max-accuracy-regression": fraction.optional(),
  "min-class-recall": z.union([fraction, z.record(z.string().min(1), fraction)]).optional(),
  "min-ood-auroc": z
    .union([
      fraction,
      z.strictObject({
        msp: fraction.optional(),
        energy: fraction.optional(),
        mahalanobis: fraction.optional(),
        ensemble: fraction.optional(),
      }),
    ])
    .optional(),
  "max-map-regression": fraction.optional(),
  significance: z.number().gt(0).max(0.5).optional(),
  "bootstrap-iterations": z.number().int().min(100).max(100_000).optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  inconclusive: z.enum(["block", "allow"]).optional(),
});

const ALLOWED_KEYS = Object.keys(policySchema.shape).join(", ");

/**
 * Validates a parsed policy document and fills in defaults. `source` names where it
 * came from (a path, or "action input") so every error points at the file and key.
 */
export function parseGatePolicy(raw: unknown, source: string): GatePolicy {
  const parsed = policySchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path.join(".");
      if (issue.code === "unrecognized_keys") {
        const where = key ? ` in ${key}` : "";
        return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}${where}`;
      }
      return `${key || "(top level)"}: ${issue.message}`;
    });
    throw new ConfigurationError(
      `gate policy ${source}: ${problems.join("; ")}; allowed keys are ${ALLOWED_KEYS}`,
    );
  }
  const file = parsed.data;
  const ood = file["min-ood-auroc"];
  const policy: GatePolicy = {
    maxAccuracyRegression: file["max-accuracy-regression"] ?? DEFAULT_GATE_POLICY.maxAccuracyRegression,
    significance: file.significance ?? DEFAULT_GATE_POLICY.significance,
    bootstrapIterations: file["bootstrap-iterations"] ?? DEFAULT_GATE_POLICY.bootstrapIterations,
    seed: file.seed ?? DEFAULT_GATE_POLICY.seed,
    inconclusive: file.inconclusive ?? DEFAULT_GATE_POLICY.inconclusive,
  };
  if (file["min-accuracy"] !== undefined) policy.minAccuracy = file["min-accuracy"];
  if (file["min-class-recall"] !== undefined) policy.minClassRecall = file["min-class-recall"];
  if (ood !== undefined)
    policy.minOodAuroc = typeof ood === "number" ? { ensemble: ood } : dropUndefined(ood);
  if (file["max-map-regression"] !== undefined) policy.maxMapRegression = file["max-map-regression"];
  return policy;
}

function dropUndefined(
  scores: Partial<Record<OodScoreName, number | undefined>>,
): Partial<Record<OodScoreName, number>> {
  const out: Partial<Record<OodScoreName, number>> = {};
  for (const name of OOD_SCORES) {
    const value = scores[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Reads and validates a policy file; a missing or malformed file is a ConfigurationError naming it. */
export function readGatePolicy(path: string): GatePolicy {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, "utf8"));
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === "ENOENT"
        ? "does not exist"
        : `is not valid YAML (${(err as Error).message.split("\n")[0]})`;
    throw new ConfigurationError(`gate policy ${path} ${reason}`);
  }
  return parseGatePolicy(raw, path);
}

/**
 * The recall floor for each class, checking that a per-class map names only classes
 * the model has (a typo would otherwise silently disable a floor).
 */
export function classRecallFloors(
  policy: GatePolicy,
  classes: readonly string[],
  source = "policy",
): Map<string, number> {
  const floors = new Map<string, number>();
  const setting = policy.minClassRecall;
  if (setting === undefined) return floors;
  if (typeof setting === "number") {
    for (const name of classes) floors.set(name, setting);
    return floors;
  }
  const unknown = Object.keys(setting).filter((name) => !classes.includes(name));
  if (unknown.length > 0) {
    throw new ConfigurationError(
      `gate ${source}: min-class-recall names ${unknown.map((n) => `"${n}"`).join(", ")}, which the model does not have (classes: ${classes.join(", ")})`,
    );
  }
  for (const [name, floor] of Object.entries(setting)) floors.set(name, floor);
  return floors;
}
