/**
 * What the gate says about broken inputs: each a clear error that names the problem,
 * never a number. (Unknown labels, empty sets and mismatched class lists are in
 * eval-set.test.ts and evaluate.test.ts; policy errors in test/unit/gate-policy.test.ts.)
 */
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../../src/gh/logger.js";
import { runGate } from "../../src/gate/run.js";
import { modelDir, SETS } from "./helpers.js";

/** A copy of a model folder with its manifest edited (and its sha256s kept honest). */
// biome-ignore lint/suspicious/noExplicitAny: the test edits raw manifest JSON of any shape
type RawManifest = Record<string, any>;

function editedModel(version: "v1" | "v2", edit: (dir: string, manifest: RawManifest) => void): string {
  const dir = mkdtempSync(join(tmpdir(), "gate-model-"));
  cpSync(modelDir(version), dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  edit(dir, manifest);
  for (const part of ["classifier", "detector"]) {
    manifest[part].sha256 = createHash("sha256")
      .update(readFileSync(join(dir, manifest[part].file)))
      .digest("hex");
  }
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  return dir;
}

const gate = (candidate: string, production = modelDir("v1")) =>
  runGate({ candidate, production, sets: SETS, intraOpThreads: 1, logger: createMemoryLogger() });

describe("the gate's errors", () => {
  it("names a corrupt ONNX file", async () => {
    const dir = editedModel("v2", (d) =>
      writeFileSync(join(d, "classifier.onnx"), Buffer.from("not an onnx model")),
    );
    await expect(gate(dir)).rejects.toThrow(/cannot open the classifier model .*classifier\.onnx/);
  });

  it("names an ONNX file that is not the one the manifest describes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gate-model-"));
    cpSync(modelDir("v2"), dir, { recursive: true });
    writeFileSync(join(dir, "detector.onnx"), readFileSync(join(modelDir("v1"), "detector.onnx")));
    await expect(gate(dir)).rejects.toThrow(
      /detector\.onnx does not match the manifest: detector\.sha256 expects/,
    );
  });

  it("names a model whose input shape is not the manifest's", async () => {
    const dir = editedModel("v2", (_d, manifest) => {
      manifest.tileSize = 32;
      manifest.classifier.input.shape = [-1, 1, 32, 32];
      manifest.detector.input.shape = [-1, 1, 32, 32];
    });
    // Against itself, so the contract check passes and the runtime check must catch it.
    await expect(gate(dir, dir)).rejects.toThrow(/has shape \[.*64, 64\], expected \[N, 1, 32, 32\]/);
  });

  it("refuses two models that disagree on the classes, before evaluating anything", async () => {
    const dir = editedModel("v2", (_d, manifest) => {
      manifest.classifier.classes[2] = "satellite_trail";
    });
    await expect(gate(dir)).rejects.toThrow(
      /do not share a contract.*classifier\.classes: candidate \(astrolens 2\.0\.0\) has .*"satellite_trail"/,
    );
  });
});
