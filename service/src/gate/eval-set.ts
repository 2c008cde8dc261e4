/**
 * Evaluation sets (test/fixtures/eval/README.md): a `manifest.json` naming image files and
 * their labels (or ground-truth boxes). `file` paths are relative to the evaluation root,
 * the parent of the manifest's folder (e.g. `synthetic/0001.fits` from
 * `test/fixtures/eval/synthetic/manifest.json`). Images are read and decoded in batches,
 * by the service's own `decodeImage`, so the gate sees exactly what the service would.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { z } from "zod";
import type { DecodedImage } from "../contract.js";
import { decodeImage } from "../decode/index.js";
import { defaultServerConfig } from "../server/config.js";
import { EvalSetError } from "./errors.js";
import type { Box } from "./types.js";

const finite = z.number().refine(Number.isFinite, "must be a finite number");
const nonNegative = finite.refine((v) => v >= 0, "must be >= 0");
const boxSchema = z.tuple([finite, finite, nonNegative, nonNegative]);

const itemSchema = z
  .object({
    file: z.string().min(1, "must name a file"),
    label: z.string().min(1).optional(),
    boxes: z.array(boxSchema).optional(),
    /** Informational (where the cut-out came from). */
    source: z.string().optional(),
  })
  .refine((i) => (i.label === undefined) !== (i.boxes === undefined), {
    message: "must have either `label` or `boxes` (exactly one)",
  });

export const evalSetManifestSchema = z.object({
  schemaVersion: z.literal(1),
  name: z.string().min(1),
  classes: z
    .array(z.string().min(1))
    .min(1, "must name at least one class")
    .refine((c) => new Set(c).size === c.length, "must be unique"),
  items: z.array(itemSchema),
});

export type EvalSetManifest = z.infer<typeof evalSetManifestSchema>;

export interface EvalItem {
  /** Absolute path of the image. */
  path: string;
  /** The path as the manifest wrote it (relative to the evaluation root). */
  file: string;
  /** Index into `EvalSet.classes`, for labelled items. */
  label?: number;
  /** Ground-truth boxes [x, y, w, h], for detection items. */
  boxes?: Box[];
}

export interface EvalSet {
  name: string;
  classes: string[];
  items: EvalItem[];
  /** Absolute path of the manifest. */
  manifestPath: string;
  /** Absolute path of the evaluation root the `file` paths are relative to. */
  root: string;
}

/**
 * Reads and validates an evaluation-set manifest. Every error names the manifest and, where
 * it is about an item, the item's index and file: an unknown label (with the classes it
 * could be), a missing image, an empty set. Images are only checked to exist here; they
 * are read in batches by `readEvalBatches`.
 */
export async function loadEvalSet(manifestPath: string): Promise<EvalSet> {
  const path = resolve(manifestPath);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EvalSetError(
      code === "ENOENT"
        ? `evaluation-set manifest ${path} does not exist`
        : `cannot read evaluation-set manifest ${path}: ${code ?? err}`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EvalSetError(`evaluation-set manifest ${path} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const parsed = evalSetManifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 10)
      .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`);
    const more = parsed.error.issues.length > 10 ? ` (and ${parsed.error.issues.length - 10} more)` : "";
    throw new EvalSetError(
      `evaluation-set manifest ${path} does not match the schema: ${problems.join("; ")}${more}`,
    );
  }
  const manifest = parsed.data;
  if (manifest.items.length === 0) {
    throw new EvalSetError(`evaluation set ${manifest.name} (${path}) is empty: it lists no items`);
  }

  const root = dirname(dirname(path));
  const classIndex = new Map(manifest.classes.map((c, i) => [c, i]));
  const items: EvalItem[] = [];
  const problems: string[] = [];
  manifest.items.forEach((raw, index) => {
    const where = `item ${index} (${raw.file})`;
    if (isAbsolute(raw.file)) {
      problems.push(`${where}: file must be relative to the evaluation root ${root}`);
      return;
    }
    const itemPath = resolve(root, raw.file);
    const rel = relative(root, itemPath);
    if (rel.startsWith("..") || isAbsolute(rel)) {
      problems.push(`${where}: file lies outside the evaluation root ${root}`);
      return;
    }
    const item: EvalItem = { path: itemPath, file: raw.file };
    if (raw.label !== undefined) {
      const label = classIndex.get(raw.label);
      if (label === undefined) {
        problems.push(
          `${where}: label ${JSON.stringify(raw.label)} is not one of the classes ${JSON.stringify(manifest.classes)}`,
        );
        return;
      }
      item.label = label;
    }
    if (raw.boxes !== undefined) item.boxes = raw.boxes.map((b) => [b[0], b[1], b[2], b[3]]);
    items.push(item);
  });
  if (problems.length === 0) {
    const missing = await Promise.all(
      items.map(async (item, index) => {
        const info = await stat(item.path).catch(() => undefined);
        if (info === undefined) return `item ${index}: file ${item.file} does not exist (${item.path})`;
        if (!info.isFile()) return `item ${index}: ${item.file} is not a file (${item.path})`;
        return undefined;
      }),
    );
    for (const m of missing) if (m !== undefined) problems.push(m);
  }
  if (problems.length > 0) {
    const more = problems.length > 10 ? ` (and ${problems.length - 10} more)` : "";
    throw new EvalSetError(
      `evaluation set ${manifest.name} (${path}): ${problems.slice(0, 10).join("; ")}${more}`,
    );
  }
  return { name: manifest.name, classes: manifest.classes, items, manifestPath: path, root };
}

/** The content type the service would be sent for a file, from its name. */
export function contentTypeFor(file: string): string {
  const name = file.toLowerCase();
  if (/\.(fits|fit|fts)(\.gz)?$/.test(name)) return "application/fits";
  if (name.endsWith(".png")) return "image/png";
  if (name.endsWith(".jpg") || name.endsWith(".jpeg")) return "image/jpeg";
  if (name.endsWith(".json")) return "application/json";
  return "application/octet-stream";
}

export interface DecodedEvalItem {
  item: EvalItem;
  /** Position of the item in `EvalSet.items`. */
  index: number;
  image: DecodedImage;
}

export interface ReadOptions {
  /** Items per batch (default 64). */
  batchSize?: number;
  /** Largest image accepted (default: the service's default limit). */
  maxPixels?: number;
}

/**
 * Reads and decodes the set's images `batchSize` at a time, in manifest order. The next
 * batch is read while the caller works on the current one; at most two batches are in
 * memory. A file that cannot be read or decoded is an `EvalSetError` naming it.
 */
export async function* readEvalBatches(
  set: EvalSet,
  options: ReadOptions = {},
): AsyncGenerator<DecodedEvalItem[]> {
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new EvalSetError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const maxPixels = options.maxPixels ?? defaultServerConfig.maxPixels;
  const read = (start: number) =>
    Promise.all(
      set.items.slice(start, start + batchSize).map((item, i) => decodeItem(set, item, start + i, maxPixels)),
    );
  let next: Promise<DecodedEvalItem[]> | undefined = read(0);
  for (let start = 0; next !== undefined; start += batchSize) {
    const current: Promise<DecodedEvalItem[]> = next;
    // Start the following read before handing this batch out; swallow its rejection until
    // it is awaited, so an early return does not leave an unhandled rejection behind.
    next = start + batchSize < set.items.length ? read(start + batchSize) : undefined;
    next?.catch(() => undefined);
    yield await current;
  }
}

async function decodeItem(
  set: EvalSet,
  item: EvalItem,
  index: number,
  maxPixels: number,
): Promise<DecodedEvalItem> {
  let body: Buffer;
  try {
    body = await readFile(item.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EvalSetError(
      `evaluation set ${set.name}: item ${index}: cannot read ${item.file} (${item.path}): ${code ?? err}`,
      { cause: err },
    );
  }
  try {
    const image = await decodeImage(body, contentTypeFor(item.file), { maxPixels });
    return { item, index, image };
  } catch (err) {
    throw new EvalSetError(
      `evaluation set ${set.name}: item ${index}: cannot decode ${item.file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
