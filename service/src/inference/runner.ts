/**
 * The two ONNX sessions (classifier, detector) behind one `run(tiles)` call. Tiles are
 * stacked into one [N, 1, T, T] float32 batch; both models run on it concurrently
 * (onnxruntime-node runs sessions off the JS thread), and the outputs are split per tile.
 */
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import type { TileOutput } from "../contract.js";
import type { ModelManifest } from "../model/manifest.js";

export interface ModelRunnerOptions {
  /** Threads for one operator (onnxruntime's intra-op pool); default: onnxruntime's choice. */
  intraOpThreads?: number;
}

/** Which models a `run` needs: the service always runs both; the gate only what it scores. */
export interface ModelParts {
  classifier: boolean;
  detector: boolean;
}

export const BOTH_MODELS: ModelParts = { classifier: true, detector: true };

export interface ModelRunner {
  readonly tileSize: number;
  /** Runs the models on a batch of normalised tiles (each tileSize * tileSize samples). */
  run(tiles: readonly Float32Array[], parts?: ModelParts): Promise<TileOutput[]>;
  /** Releases both sessions. */
  close(): Promise<void>;
}

/** The model folder's sessions do not fit the manifest (names or shapes). */
export class ModelRunnerError extends Error {
  override readonly name = "ModelRunnerError";
}

/**
 * Opens the classifier and detector named in `manifest` from `dir` with all graph
 * optimisations, and checks that their input/output names and shapes match the manifest.
 * Verify the files first with `loadModelManifest`, which checks their sha256.
 */
export async function createModelRunner(
  manifest: ModelManifest,
  dir: string,
  options: ModelRunnerOptions = {},
): Promise<ModelRunner> {
  // onnxruntime-node runs a session on the JavaScript thread, one session at a time, so
  // each session gets every core (onnxruntime's default) — but its idle threads sleep
  // instead of spinning on the cores the event loop needs between batches. Measured on 2
  // cores (bench:service): 1471 tiles/s this way, 960 spinning, 858 at 1 thread.
  const sessionOptions: InferenceSession.SessionOptions = {
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
    ...(options.intraOpThreads !== undefined && { intraOpNumThreads: options.intraOpThreads }),
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
  const open = async (part: "classifier" | "detector") => {
    const path = join(dir, manifest[part].file);
    try {
      return await InferenceSession.create(path, sessionOptions);
    } catch (err) {
      throw new ModelRunnerError(`cannot open the ${part} model ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  const [classifier, detector] = await Promise.all([open("classifier"), open("detector")]);
  try {
    const { classifier: c, detector: d } = manifest;
    checkSession(
      "classifier",
      classifier,
      c.input.name,
      [c.outputs.logits, c.outputs.embedding],
      manifest.tileSize,
    );
    checkSession("detector", detector, d.input.name, [d.output.name], manifest.tileSize);
  } catch (err) {
    await Promise.allSettled([classifier.release(), detector.release()]);
    throw err;
  }

  const size = manifest.tileSize;
  const classes = manifest.classifier.classes.length;
  const embeddingDim = manifest.classifier.embeddingDim;
  const detectorRows = 4 + manifest.detector.classes.length;

  return {
    tileSize: size,
    async run(tiles, parts = BOTH_MODELS) {
      const n = tiles.length;
      if (n === 0) return [];
      const batch = new Float32Array(n * size * size);
      tiles.forEach((tile, i) => {
        if (tile.length !== size * size) {
          throw new ModelRunnerError(`tile ${i} has ${tile.length} samples, expected ${size}x${size}`);
        }
        batch.set(tile, i * size * size);
      });
      const dims = [n, 1, size, size];
      const input = (name: string) => ({ [name]: new Tensor("float32", batch, dims) });
      const [cOut, dOut] = await Promise.all([
        parts.classifier ? classifier.run(input(manifest.classifier.input.name)) : undefined,
        parts.detector ? detector.run(input(manifest.detector.input.name)) : undefined,
      ]);
      // A model left out answers with neutral outputs: zero logits and embedding, no boxes.
      const skipped = (width: number) => ({ data: new Float32Array(n * width), dims: [n, width] });
      const logits = cOut
        ? floatOutput(cOut, manifest.classifier.outputs.logits, n, "classifier logits")
        : skipped(classes);
      const embedding = cOut
        ? floatOutput(cOut, manifest.classifier.outputs.embedding, n, "classifier embedding")
        : skipped(embeddingDim);
      const boxes = dOut
        ? floatOutput(dOut, manifest.detector.output.name, n, "detector output")
        : { data: new Float32Array(0), dims: [n, detectorRows, 0] };
      expectPerTile(logits, n, classes, `[N, ${classes}] (one logit per class)`, "classifier logits");
      expectPerTile(
        embedding,
        n,
        embeddingDim,
        `[N, ${embeddingDim}] (embeddingDim)`,
        "classifier embedding",
      );
      if (boxes.data.length % (n * detectorRows) !== 0 || boxes.dims[1] !== detectorRows) {
        throw new ModelRunnerError(
          `detector output has shape [${boxes.dims.join(", ")}], expected [N, ${detectorRows}, anchors] (YOLOv8 layout)`,
        );
      }
      const perDetector = boxes.data.length / n;
      return Array.from({ length: n }, (_, i) => ({
        logits: logits.data.slice(i * classes, (i + 1) * classes),
        embedding: embedding.data.slice(i * embeddingDim, (i + 1) * embeddingDim),
        detector: boxes.data.slice(i * perDetector, (i + 1) * perDetector),
      }));
    },
    async close() {
      await Promise.all([classifier.release(), detector.release()]);
    },
  };
}

function checkSession(
  part: string,
  session: InferenceSession,
  inputName: string,
  outputNames: string[],
  tileSize: number,
): void {
  const problems: string[] = [];
  if (!session.inputNames.includes(inputName)) {
    problems.push(
      `input "${inputName}" not found (the model has inputs ${JSON.stringify(session.inputNames)})`,
    );
  }
  for (const name of outputNames) {
    if (!session.outputNames.includes(name)) {
      problems.push(
        `output "${name}" not found (the model has outputs ${JSON.stringify(session.outputNames)})`,
      );
    }
  }
  const meta = session.inputMetadata.find((m) => m.name === inputName);
  if (meta?.isTensor) {
    if (meta.type !== "float32")
      problems.push(`input "${inputName}" is ${meta.type}, the manifest says float32`);
    // Symbolic dimensions (strings) are fine; fixed ones must be [*, 1, T, T].
    const expected = [undefined, 1, tileSize, tileSize];
    const fixedMismatch =
      meta.shape.length !== 4 ||
      meta.shape.some((d, i) => typeof d === "number" && d >= 0 && i > 0 && d !== expected[i]);
    if (fixedMismatch) {
      problems.push(
        `input "${inputName}" has shape [${meta.shape.join(", ")}], expected [N, 1, ${tileSize}, ${tileSize}]`,
      );
    }
  }
  if (problems.length > 0) {
    throw new ModelRunnerError(`the ${part} model does not match the manifest: ${problems.join("; ")}`);
  }
}

function floatOutput(
  outputs: InferenceSession.ReturnType,
  name: string,
  n: number,
  what: string,
): { data: Float32Array; dims: readonly number[] } {
  const tensor = outputs[name];
  if (tensor === undefined) throw new ModelRunnerError(`${what}: the model returned no output "${name}"`);
  if (tensor.type !== "float32" || !(tensor.data instanceof Float32Array)) {
    throw new ModelRunnerError(`${what} ("${name}") is ${tensor.type}, expected float32`);
  }
  if (tensor.dims[0] !== n) {
    throw new ModelRunnerError(`${what} ("${name}") has batch size ${tensor.dims[0]}, expected ${n}`);
  }
  return { data: tensor.data, dims: tensor.dims };
}

function expectPerTile(
  t: { data: Float32Array; dims: readonly number[] },
  n: number,
  per: number,
  shape: string,
  what: string,
) {
  if (t.data.length !== n * per) {
    throw new ModelRunnerError(`${what} has shape [${t.dims.join(", ")}], expected ${shape}`);
  }
}
