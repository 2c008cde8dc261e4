/**
 * The gate's verdicts with the real models from the model build on the real held-out
 * sets: v2 (candidate) against v1 (production) and back, a model against itself, a tiny
 * set, and a class floor that v2 misses although its accuracy rises.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../../src/gh/logger.js";
import { runGate } from "../../src/gate/run.js";
import { EVAL_ROOT, modelDir, SETS } from "./helpers.js";

const DEFAULT_POLICY = join(EVAL_ROOT, "../../../.astrolens/gate-policy.yaml");

function gate(
  candidate: "v1" | "v2",
  production: "v1" | "v2",
  overrides: Partial<Parameters<typeof runGate>[0]> = {},
) {
  return runGate({
    candidate: modelDir(candidate),
    production: modelDir(production),
    sets: SETS,
    policyFile: DEFAULT_POLICY,
    intraOpThreads: 1,
    logger: createMemoryLogger(),
    ...overrides,
  });
}

/** A policy file: the repository's default with some keys replaced. */
function policyWith(lines: string): string {
  const dir = mkdtempSync(join(tmpdir(), "gate-policy-"));
  const text = readFileSync(DEFAULT_POLICY, "utf8");
  const keys = lines.split("\n").map((line) => line.split(":")[0]);
  const kept = text.split("\n").filter((line) => !keys.some((key) => line.startsWith(`${key}:`)));
  writeFileSync(join(dir, "policy.yaml"), `${kept.join("\n")}\n${lines}\n`);
  return join(dir, "policy.yaml");
}

describe("the accuracy gate on the real models", () => {
  it("passes v2 against v1, a significant improvement", async () => {
    const { comparison, markdown, json } = await gate("v2", "v1");
    expect(comparison.verdict, comparison.reasons.join(" ")).toBe("pass");
    expect(comparison.candidate.accuracy).toBeCloseTo(0.958, 3);
    expect(comparison.production.accuracy).toBeCloseTo(0.934, 3);
    expect(comparison.mcnemar.c).toBeGreaterThan(comparison.mcnemar.b);
    expect(comparison.mcnemar.pValue).toBeLessThan(0.05);
    expect(comparison.blocksRelease).toBe(false);
    expect(markdown.split("\n")[0]).toMatch(/pass/i);
    expect(JSON.parse(json).verdict).toBe("pass");
  });

  it("fails v1 against v2, a real regression", async () => {
    const { comparison } = await gate("v1", "v2");
    expect(comparison.verdict).toBe("fail");
    expect(comparison.blocksRelease).toBe(true);
    expect(comparison.reasons.join(" ")).toMatch(/significantly less accurate/i);
  });

  it("calls a model against itself not a regression", async () => {
    const { comparison } = await gate("v2", "v2");
    expect(comparison.mcnemar.b).toBe(0);
    expect(comparison.mcnemar.c).toBe(0);
    expect(comparison.verdict).toBe("pass");
    expect(comparison.reasons.join(" ")).toMatch(/not a regression/i);
  });

  it("on a tiny evaluation set, calls the real difference inconclusive, not a pass", async () => {
    // The first 12 items of the held-out set, with the set's folder linked beside them.
    const root = mkdtempSync(join(tmpdir(), "gate-tiny-"));
    symlinkSync(join(EVAL_ROOT, "synthetic"), join(root, "synthetic"));
    mkdirSync(join(root, "tiny"));
    const manifest = JSON.parse(readFileSync(SETS.classification, "utf8"));
    manifest.items = manifest.items.filter((_: unknown, index: number) => index % 40 === 0).slice(0, 12);
    writeFileSync(join(root, "tiny", "manifest.json"), JSON.stringify(manifest));
    const { comparison } = await gate("v2", "v1", {
      sets: { classification: join(root, "tiny", "manifest.json") },
    });
    expect(comparison.items).toBe(12);
    expect(comparison.verdict, comparison.reasons.join(" ")).toBe("inconclusive");
    expect(comparison.blocksRelease).toBe(true);
  });

  it("fails a candidate on the class whose recall falls below its floor, though accuracy rises", async () => {
    const { comparison } = await gate("v2", "v1", {
      policyFile: policyWith("min-class-recall: { empty_sky: 0.97 }"),
    });
    expect(comparison.candidate.accuracy).toBeGreaterThan(comparison.production.accuracy);
    expect(comparison.verdict).toBe("fail");
    expect(comparison.reasons.join(" ")).toContain('"empty_sky"');
  });
});
