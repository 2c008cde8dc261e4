/**
 * Model sources for the gate: a local model folder, or an `s3://bucket/prefix/` URI whose
 * `manifest.json` and the ONNX files it names are downloaded into a temporary folder. Either
 * way the folder is then loaded with `loadModelManifest`, which checks the ONNX sha256s.
 * The S3 client is injected as a downloader, so this module carries no AWS SDK.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  type LoadedModelManifest,
  loadModelManifest,
  MANIFEST_FILE,
  ModelManifestError,
  parseModelManifest,
} from "../model/manifest.js";
import { ModelSourceError } from "./errors.js";

/** Fetches one object's bytes; the caller wires it to `@aws-sdk/client-s3` GetObject. */
export type S3Downloader = (bucket: string, key: string) => Promise<Buffer | Uint8Array>;

export interface ResolveOptions {
  /** Required for s3:// sources. */
  download?: S3Downloader;
  /** Where temporary folders go (default: the OS temp dir). */
  tmpRoot?: string;
}

export interface ResolvedModel {
  /** The source as given. */
  source: string;
  /** The verified model. */
  model: LoadedModelManifest;
  /** Removes the temporary folder of a downloaded model; a no-op for a local one. */
  cleanup(): Promise<void>;
}

/** Parses `s3://bucket/prefix` into bucket and a key prefix ending in "/" (or empty). */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  const bucket = m?.[1];
  if (m === null || bucket === undefined || bucket.length === 0) {
    throw new ModelSourceError(`${JSON.stringify(uri)} is not an s3://bucket/prefix/ URI`);
  }
  const rest = m[2] ?? "";
  const prefix = rest === "" || rest.endsWith("/") ? rest : `${rest}/`;
  return { bucket, prefix };
}

export async function resolveModelSource(
  source: string,
  options: ResolveOptions = {},
): Promise<ResolvedModel> {
  if (source.startsWith("s3://")) return resolveS3(source, options);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    throw new ModelSourceError(
      `model source ${JSON.stringify(source)}: unsupported scheme; give a local folder or an s3://bucket/prefix/ URI`,
    );
  }
  const dir = resolve(source);
  try {
    return { source, model: await loadModelManifest(dir), cleanup: async () => {} };
  } catch (err) {
    if (err instanceof ModelManifestError) {
      throw new ModelSourceError(`model source ${source}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

async function resolveS3(source: string, options: ResolveOptions): Promise<ResolvedModel> {
  const { bucket, prefix } = parseS3Uri(source);
  const download = options.download;
  if (download === undefined) {
    throw new ModelSourceError(`model source ${source}: an S3 downloader is needed for s3:// sources`);
  }
  const fetchObject = async (name: string): Promise<Buffer> => {
    const key = `${prefix}${name}`;
    try {
      const bytes = await download(bucket, key);
      return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      throw new ModelSourceError(
        `model source ${source}: cannot download s3://${bucket}/${key}: ${(err as Error).message ?? err}`,
        { cause: err },
      );
    }
  };
  const dir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), "astrolens-model-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const manifestBytes = await fetchObject(MANIFEST_FILE);
    let manifest: ReturnType<typeof parseModelManifest>;
    try {
      manifest = parseModelManifest(manifestBytes, `s3://${bucket}/${prefix}${MANIFEST_FILE}`);
    } catch (err) {
      throw new ModelSourceError(`model source ${source}: ${(err as Error).message}`, { cause: err });
    }
    // File names are plain names (the manifest schema refuses paths), so they stay in `dir`.
    const files = [...new Set([manifest.classifier.file, manifest.detector.file])];
    const bodies = await Promise.all(files.map(fetchObject));
    await writeFile(join(dir, MANIFEST_FILE), manifestBytes);
    await Promise.all(files.map((f, i) => writeFile(join(dir, f), bodies[i] as Buffer)));
    let model: LoadedModelManifest;
    try {
      model = await loadModelManifest(dir);
    } catch (err) {
      throw new ModelSourceError(`model source ${source}: ${(err as Error).message}`, { cause: err });
    }
    return { source, model, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
