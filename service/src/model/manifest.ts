/**
 * The model manifest (service/models/README.md): the one contract between the model
 * build, the service, the accuracy gate and the smoke test. Loading it checks the shape,
 * the internal consistency (dimensions that must agree) and the ONNX files' sha256.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits (a sha256)");
const finite = z.number().refine(Number.isFinite, "must be a finite number");
const positiveInt = z.number().int().positive();
/** [-1 (any batch), 1 channel, tileSize, tileSize]. */
const inputShape = z.tuple([z.literal(-1), z.literal(1), positiveInt, positiveInt]);
const fileName = z
  .string()
  .min(1)
  .refine(
    (f) => !f.includes("/") && !f.includes("\\") && f !== "." && f !== "..",
    "must be a plain file name",
  );

export const modelManifestSchema = z
  .object({
    schemaVersion: z.literal(1),
    name: z.string().min(1),
    version: z
      .string()
      .regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/, "must be a semver version like 1.0.0"),
    tileSize: positiveInt,
    normalisation: z.object({
      method: z.literal("robust-asinh"),
      softening: z.number().positive(),
      padding: z.literal("median"),
    }),
    classifier: z.object({
      file: fileName,
      sha256: sha256Hex,
      input: z.object({ name: z.string().min(1), shape: inputShape, dtype: z.literal("float32") }),
      outputs: z.object({ logits: z.string().min(1), embedding: z.string().min(1) }),
      embeddingDim: positiveInt,
      classes: z.array(z.string().min(1)).min(2),
    }),
    ood: z.object({
      tpr: z.number().gt(0).lte(1),
      thresholds: z.object({ msp: finite, energy: finite, mahalanobis: finite }),
      rule: z.literal("majority"),
      minVotes: z.number().int().min(1).max(3),
      mahalanobis: z.object({
        classMeans: z.array(z.array(finite)),
        precision: z.array(z.array(finite)),
      }),
    }),
    detector: z.object({
      file: fileName,
      sha256: sha256Hex,
      input: z.object({ name: z.string().min(1), shape: inputShape, dtype: z.literal("float32") }),
      output: z.object({ name: z.string().min(1), layout: z.literal("yolov8") }),
      classes: z.array(z.string().min(1)).min(1),
      confidenceThreshold: z.number().min(0).max(1),
      iouThreshold: z.number().min(0).max(1),
    }),
    training: z.object({
      seed: z.number().int(),
      dataSeed: z.number().int(),
      samples: z.number().int().nonnegative(),
      epochs: z.number().int().nonnegative(),
      detectorSamples: z.number().int().nonnegative(),
      detectorEpochs: z.number().int().nonnegative(),
      /** Free text: the torch version as built. */
      torch: z.string(),
      onnxOpset: z.number().int().positive(),
    }),
    metrics: z.object({
      accuracy: z.number().min(0).max(1),
      macroF1: z.number().min(0).max(1),
      perClassRecall: z.record(z.string(), z.number().min(0).max(1)),
      oodAuroc: z.object({
        msp: z.number().min(0).max(1),
        energy: z.number().min(0).max(1),
        mahalanobis: z.number().min(0).max(1),
      }),
      detectorMap50: z.number().min(0).max(1),
    }),
    tolerance: z.object({
      accuracy: z.number().nonnegative(),
      macroF1: z.number().nonnegative(),
      detectorMap50: z.number().nonnegative(),
    }),
  })
  .superRefine((m, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: "custom", path, message });
    for (const part of ["classifier", "detector"] as const) {
      const [, , h, w] = m[part].input.shape;
      if (h !== m.tileSize || w !== m.tileSize) {
        issue(
          [part, "input", "shape"],
          `must be [-1, 1, ${m.tileSize}, ${m.tileSize}] (tileSize ${m.tileSize})`,
        );
      }
    }
    const { classMeans, precision } = m.ood.mahalanobis;
    const dim = m.classifier.embeddingDim;
    const classes = m.classifier.classes.length;
    if (classMeans.length !== classes) {
      issue(
        ["ood", "mahalanobis", "classMeans"],
        `must have one row per class (${classes}), has ${classMeans.length}`,
      );
    }
    classMeans.forEach((row, i) => {
      if (row.length !== dim)
        issue(["ood", "mahalanobis", "classMeans", i], `must have embeddingDim (${dim}) numbers`);
    });
    if (precision.length !== dim) {
      issue(["ood", "mahalanobis", "precision"], `must be embeddingDim x embeddingDim (${dim}x${dim})`);
    }
    precision.forEach((row, i) => {
      if (row.length !== dim)
        issue(["ood", "mahalanobis", "precision", i], `must have embeddingDim (${dim}) numbers`);
    });
    if (new Set(m.classifier.classes).size !== classes) issue(["classifier", "classes"], "must be unique");
  });

export type ModelManifest = z.infer<typeof modelManifestSchema>;

export interface LoadedModelManifest {
  manifest: ModelManifest;
  /** sha256 of manifest.json's bytes: with `version`, the served model's identity. */
  manifestSha256: string;
  /** Absolute path of the model folder (the ONNX files' directory). */
  dir: string;
}

/** A model folder that cannot be served: missing, malformed or with files that do not match. */
export class ModelManifestError extends Error {
  override readonly name = "ModelManifestError";
}

export const MANIFEST_FILE = "manifest.json";

/**
 * Reads `<dir>/manifest.json`, validates it and checks each ONNX file's sha256 against it.
 * Throws `ModelManifestError` naming the folder, the file and what was expected.
 */
export async function loadModelManifest(dir: string): Promise<LoadedModelManifest> {
  const root = resolve(dir);
  const info = await stat(root).catch(() => undefined);
  if (info === undefined) throw new ModelManifestError(`model folder ${root} does not exist`);
  if (!info.isDirectory()) throw new ModelManifestError(`model folder ${root} is not a directory`);

  const path = join(root, MANIFEST_FILE);
  const bytes = await readModelFile(path, `model folder ${root} has no ${MANIFEST_FILE}`);
  const manifest = parseModelManifest(bytes, path);
  for (const part of ["classifier", "detector"] as const) {
    await verifyFileSha256(join(root, manifest[part].file), manifest[part].sha256, `${part}.sha256`);
  }
  return { manifest, manifestSha256: sha256(bytes), dir: root };
}

/** Validates manifest bytes (no file checks); `source` names them in errors. */
export function parseModelManifest(bytes: Buffer | string, source = MANIFEST_FILE): ModelManifest {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === "string" ? bytes : bytes.toString("utf8"));
  } catch (err) {
    throw new ModelManifestError(`${source} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const result = modelManifestSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues
      .slice(0, 10)
      .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`);
    const more = result.error.issues.length > 10 ? ` (and ${result.error.issues.length - 10} more)` : "";
    throw new ModelManifestError(
      `${source} does not match the manifest schema: ${problems.join("; ")}${more}`,
    );
  }
  return result.data;
}

async function verifyFileSha256(path: string, expected: string, field: string): Promise<void> {
  const bytes = await readModelFile(path, `model file ${path} named in the manifest does not exist`);
  const actual = sha256(bytes);
  if (actual !== expected) {
    throw new ModelManifestError(
      `model file ${path} does not match the manifest: ${field} expects ${expected}, the file's sha256 is ${actual}; ` +
        "rebuild the model folder or update the manifest",
    );
  }
}

/** Reads a file of the model folder; a missing one is `missing`, anything else names the code. */
async function readModelFile(path: string, missing: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelManifestError(code === "ENOENT" ? missing : `cannot read ${path}: ${code ?? err}`, {
      cause: err,
    });
  }
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}
