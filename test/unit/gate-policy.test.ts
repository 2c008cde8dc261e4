import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import {
  classRecallFloors,
  DEFAULT_GATE_POLICY,
  parseGatePolicy,
  readGatePolicy,
} from "../../src/gate/policy.js";

const dir = mkdtempSync(join(tmpdir(), "astrolens-gate-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function errorOf(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected a ConfigurationError");
}

describe("readGatePolicy", () => {
  it("reads the shipped default policy", () => {
    const policy = readGatePolicy(join(import.meta.dirname, "../../.astrolens/gate-policy.yaml"));
    expect(policy).toEqual({
      minAccuracy: 0.85,
      maxAccuracyRegression: 0.01,
      minClassRecall: 0.7,
      minOodAuroc: { mahalanobis: 0.85 },
      maxMapRegression: 0.02,
      significance: 0.05,
      bootstrapIterations: 2000,
      seed: 20240601,
      inconclusive: "block",
    });
  });

  it("fills defaults for an empty file", () => {
    expect(readGatePolicy(file("empty.yaml", ""))).toEqual(DEFAULT_GATE_POLICY);
  });

  it("reads per-class recall floors and per-score OOD floors", () => {
    const policy = readGatePolicy(
      file(
        "maps.yaml",
        "min-class-recall:\n  galaxy: 0.8\n  star: 0.6\nmin-ood-auroc:\n  msp: 0.7\n  ensemble: 0.85\ninconclusive: allow\n",
      ),
    );
    expect(policy.minClassRecall).toEqual({ galaxy: 0.8, star: 0.6 });
    expect(policy.minOodAuroc).toEqual({ msp: 0.7, ensemble: 0.85 });
    expect(policy.inconclusive).toBe("allow");
    expect(classRecallFloors(policy, ["galaxy", "star", "quasar"])).toEqual(
      new Map([
        ["galaxy", 0.8],
        ["star", 0.6],
      ]),
    );
  });

  it("rejects an unknown key, naming the file, the key and the allowed keys", () => {
    const path = file("unknown.yaml", "min-accuracy: 0.9\nmin_accuracy: 0.9\n");
    const { message } = errorOf(() => readGatePolicy(path));
    expect(message).toContain(`gate policy ${path}: unknown key "min_accuracy"`);
    expect(message).toContain("allowed keys are min-accuracy, max-accuracy-regression");
  });

  it("rejects an unknown OOD score name", () => {
    const { message } = errorOf(() => parseGatePolicy({ "min-ood-auroc": { odin: 0.8 } }, "p.yaml"));
    expect(message).toMatch(/gate policy p\.yaml: .*min-ood-auroc/);
  });

  it.each([
    ["min-accuracy: 1.5\n", "min-accuracy"],
    ["max-accuracy-regression: -0.01\n", "max-accuracy-regression"],
    ["significance: 0\n", "significance"],
    ["significance: 0.9\n", "significance"],
    ["bootstrap-iterations: 10\n", "bootstrap-iterations"],
    ["bootstrap-iterations: 2000.5\n", "bootstrap-iterations"],
    ["seed: -1\n", "seed"],
    ["inconclusive: maybe\n", "inconclusive"],
    ["min-class-recall:\n  galaxy: 2\n", "min-class-recall.galaxy"],
  ])("rejects an out-of-range value: %s", (text, key) => {
    const path = file(`range-${key}.yaml`, text);
    const { message } = errorOf(() => readGatePolicy(path));
    expect(message).toContain(`gate policy ${path}: ${key}`);
  });

  it("names a missing file and a file that is not YAML", () => {
    expect(errorOf(() => readGatePolicy(join(dir, "nope.yaml"))).message).toMatch(
      /nope\.yaml does not exist/,
    );
    expect(errorOf(() => readGatePolicy(file("bad.yaml", "min-accuracy: [0.9\n"))).message).toMatch(
      /bad\.yaml is not valid YAML/,
    );
  });
});
