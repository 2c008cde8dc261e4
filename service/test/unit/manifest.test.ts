import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModelManifest, ModelManifestError, parseModelManifest } from "../../src/model/manifest.js";
import { modelFolder, sha256, tinyManifest } from "./model-fixture.js";

async function manifestError(promise: Promise<unknown>): Promise<ModelManifestError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelManifestError);
  return err as ModelManifestError;
}

describe("loadModelManifest", () => {
  it("parses the manifest and reports the sha256 of its bytes", async () => {
    const { dir, manifestText } = modelFolder();
    const loaded = await loadModelManifest(dir);
    expect(loaded.manifestSha256).toBe(sha256(manifestText));
    expect(loaded.dir).toBe(dir);
    expect(loaded.manifest.version).toBe("0.0.1");
    expect(loaded.manifest.classifier.classes).toEqual(["point_source", "streak", "empty_sky"]);
  });

  it("names the file, the expected and the actual sha256 on a mismatch", async () => {
    const { dir } = modelFolder();
    writeFileSync(join(dir, "detector.onnx"), "not the model");
    const err = await manifestError(loadModelManifest(dir));
    const expected = tinyManifest().detector.sha256;
    expect(err.message).toBe(
      `model file ${join(dir, "detector.onnx")} does not match the manifest: detector.sha256 expects ${expected}, ` +
        `the file's sha256 is ${sha256("not the model")}; rebuild the model folder or update the manifest`,
    );
  });

  it("says when the folder, the manifest or a model file is missing", async () => {
    expect((await manifestError(loadModelManifest("/nonexistent/models/v9"))).message).toBe(
      "model folder /nonexistent/models/v9 does not exist",
    );
    const { dir } = modelFolder();
    const noManifest = modelFolder().dir;
    writeFileSync(join(noManifest, "manifest.json"), "{");
    expect((await manifestError(loadModelManifest(noManifest))).message).toMatch(
      /manifest\.json is not valid JSON: /,
    );
    const m = tinyManifest();
    m.classifier.file = "missing.onnx";
    const missingFile = modelFolder(m).dir;
    expect((await manifestError(loadModelManifest(missingFile))).message).toBe(
      `model file ${join(missingFile, "missing.onnx")} named in the manifest does not exist`,
    );
    const { rmSync } = await import("node:fs");
    rmSync(join(dir, "manifest.json"));
    expect((await manifestError(loadModelManifest(dir))).message).toBe(
      `model folder ${dir} has no manifest.json`,
    );
  });
});

describe("parseModelManifest", () => {
  const parse = (m: unknown) => () => parseModelManifest(JSON.stringify(m));

  it("lists schema problems with their paths", () => {
    const m = tinyManifest();
    m.schemaVersion = 2;
    m.classifier.sha256 = "abc";
    delete m.detector.iouThreshold;
    expect(parse(m)).toThrow(ModelManifestError);
    try {
      parse(m)();
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toMatch(/^manifest\.json does not match the manifest schema: /);
      expect(message).toContain("schemaVersion: ");
      expect(message).toContain("classifier.sha256: must be 64 lower-case hex digits (a sha256)");
      expect(message).toContain("detector.iouThreshold: ");
    }
  });

  it("checks that dimensions agree", () => {
    const m = tinyManifest();
    m.tileSize = 8;
    m.ood.mahalanobis.classMeans = [[0, 0]];
    m.ood.mahalanobis.precision = [[1, 0], [0]];
    expect(parse(m)).toThrow(
      "manifest.json does not match the manifest schema: " +
        "classifier.input.shape: must be [-1, 1, 8, 8] (tileSize 8); " +
        "detector.input.shape: must be [-1, 1, 8, 8] (tileSize 8); " +
        "ood.mahalanobis.classMeans: must have one row per class (3), has 1; " +
        "ood.mahalanobis.precision.1: must have embeddingDim (2) numbers",
    );
  });

  it("refuses model file names that leave the folder", () => {
    const m = tinyManifest();
    m.detector.file = "../detector.onnx";
    expect(parse(m)).toThrow("detector.file: must be a plain file name");
  });
});
