import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EvalSetError } from "../../src/gate/errors.js";
import { loadEvalSet, readEvalBatches } from "../../src/gate/eval-set.js";
import { EVAL_ROOT, SETS } from "./helpers.js";

const CLASSES = ["point_source", "extended_source", "streak", "hot_pixels", "empty_sky"];

describe("loadEvalSet", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "gate-evalset-"));
    await mkdir(join(root, "set"));
    await copyFile(join(EVAL_ROOT, "synthetic/0001.fits"), join(root, "set/a.fits"));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const write = async (manifest: unknown) => {
    const path = join(root, "set/manifest.json");
    await writeFile(path, JSON.stringify(manifest));
    return path;
  };

  it("reads the shipped sets, files relative to the evaluation root", async () => {
    const synthetic = await loadEvalSet(SETS.classification);
    expect(synthetic.items).toHaveLength(500);
    expect(synthetic.classes).toEqual(CLASSES);
    expect(synthetic.items[0]).toMatchObject({ file: "synthetic/0001.fits", label: 0 });
    expect(synthetic.items[0]?.path).toBe(join(EVAL_ROOT, "synthetic/0001.fits"));
    const detection = await loadEvalSet(SETS.detection);
    expect(detection.items).toHaveLength(50);
    expect(detection.items[0]?.boxes?.[0]).toHaveLength(4);
    expect((await loadEvalSet(SETS.ood)).items).toHaveLength(100);
  });

  it("names a missing image file", async () => {
    const path = await write({
      schemaVersion: 1,
      name: "t",
      classes: CLASSES,
      items: [
        { file: "set/a.fits", label: "streak" },
        { file: "set/gone.fits", label: "streak" },
      ],
    });
    await expect(loadEvalSet(path)).rejects.toThrow(EvalSetError);
    await expect(loadEvalSet(path)).rejects.toThrow(/item 1: file set\/gone\.fits does not exist/);
  });

  it("names a label that is not one of the classes", async () => {
    const path = await write({
      schemaVersion: 1,
      name: "t",
      classes: CLASSES,
      items: [{ file: "set/a.fits", label: "galaxy" }],
    });
    await expect(loadEvalSet(path)).rejects.toThrow(
      /item 0 \(set\/a\.fits\): label "galaxy" is not one of the classes \["point_source",/,
    );
  });

  it("refuses an empty set, a bad schema and a path outside the root", async () => {
    const empty = await write({ schemaVersion: 1, name: "t", classes: CLASSES, items: [] });
    await expect(loadEvalSet(empty)).rejects.toThrow(/is empty/);
    const bad = await write({ schemaVersion: 2, name: "t", classes: CLASSES, items: [{ file: "x" }] });
    await expect(loadEvalSet(bad)).rejects.toThrow(
      /schemaVersion.*items\.0: must have either `label` or `boxes`/,
    );
    const outside = await write({
      schemaVersion: 1,
      name: "t",
      classes: CLASSES,
      items: [{ file: "../../etc/passwd", label: "streak" }],
    });
    await expect(loadEvalSet(outside)).rejects.toThrow(/outside the evaluation root/);
    await expect(loadEvalSet(join(root, "nope/manifest.json"))).rejects.toThrow(/does not exist/);
  });

  it("names a file that cannot be decoded, when its batch is read", async () => {
    await writeFile(join(root, "set/junk.fits"), "not a fits file");
    const path = await write({
      schemaVersion: 1,
      name: "t",
      classes: CLASSES,
      items: [
        { file: "set/a.fits", label: "streak" },
        { file: "set/junk.fits", label: "streak" },
      ],
    });
    const set = await loadEvalSet(path);
    const batches = readEvalBatches(set, { batchSize: 1 });
    const first = await batches.next();
    expect(first.value?.[0]?.image).toMatchObject({ width: 64, height: 64, format: "fits" });
    await expect(batches.next()).rejects.toThrow(/item 1: cannot decode set\/junk\.fits/);
  });

  it("reads in batches, in order", async () => {
    const set = await loadEvalSet(SETS.ood);
    const sizes: number[] = [];
    const indices: number[] = [];
    for await (const b of readEvalBatches(set, { batchSize: 30 })) {
      sizes.push(b.length);
      indices.push(...b.map((d) => d.index));
    }
    expect(sizes).toEqual([30, 30, 30, 10]);
    expect(indices).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
