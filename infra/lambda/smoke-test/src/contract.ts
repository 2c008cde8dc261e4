/**
 * The smoke contract: the part of the model manifest (service/models/README.md) that a
 * caller can check from outside the service — identity, classes, OOD thresholds and vote
 * rule, detector classes and confidence floor, tile size. It is built from the manifest's
 * own schema pieces, so the two cannot drift; what is left out (the ONNX files, the
 * Mahalanobis statistics — 115 kB of the 116 kB) cannot be observed in a response, and
 * leaving it out keeps the contract small enough for a hook's `hookDetails` or a Lambda
 * environment variable (4 KB for all of them).
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import {
  type ModelManifest,
  ModelManifestError,
  modelManifestSchema,
  parseModelManifest,
} from "../../../../service/src/model/manifest.js";
import { describeIssues } from "./issues.js";

const manifestFields = modelManifestSchema.shape;

export const smokeContractSchema = z
  .object({
    name: manifestFields.name,
    version: manifestFields.version,
    /** Optional: without it the smoke test proves the version, not the exact manifest. */
    manifestSha256: manifestFields.classifier.shape.sha256.optional(),
    tileSize: manifestFields.tileSize,
    classifier: manifestFields.classifier.pick({ classes: true }),
    detector: manifestFields.detector.pick({ classes: true, confidenceThreshold: true }),
    ood: manifestFields.ood.pick({ thresholds: true, rule: true, minVotes: true }),
  })
  .superRefine((c, ctx) => {
    if (new Set(c.classifier.classes).size !== c.classifier.classes.length) {
      ctx.addIssue({ code: "custom", path: ["classifier", "classes"], message: "must be unique" });
    }
  });

export type SmokeContract = z.infer<typeof smokeContractSchema>;

/** The caller's expectations are missing or unusable; the message says how to fix them. */
export class SmokeConfigurationError extends Error {
  override readonly name = "SmokeConfigurationError";
}

/**
 * The smoke contract of a parsed manifest. Pass the sha256 of the manifest file's bytes
 * (what the service reports) so the test proves the exact model, not only its version.
 */
export function contractFromManifest(manifest: ModelManifest, manifestSha256?: string): SmokeContract {
  return smokeContractSchema.parse({ ...manifest, manifestSha256 });
}

/** The smoke contract of a manifest file's bytes: validated as the service does, hashed as it does. */
export function contractFromManifestText(text: string | Uint8Array, source = "manifest"): SmokeContract {
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : Buffer.from(text);
  try {
    const manifest = parseModelManifest(bytes, source);
    return contractFromManifest(manifest, createHash("sha256").update(bytes).digest("hex"));
  } catch (err) {
    if (err instanceof ModelManifestError) throw new SmokeConfigurationError(err.message, { cause: err });
    throw err;
  }
}

/** Validates a smoke contract (a whole manifest object passes too: extra fields are dropped). */
export function parseSmokeContract(value: unknown, source: string): SmokeContract {
  const result = smokeContractSchema.safeParse(value);
  if (!result.success) {
    throw new SmokeConfigurationError(
      `${source} is not a smoke contract (${describeIssues(result.error, source).join("; ")}); ` +
        "build it from the model's manifest.json with contractFromManifest",
    );
  }
  return result.data;
}
