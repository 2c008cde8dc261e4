import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { readPolicyFile, resolveScanPolicy } from "../../src/image/scan-policy-file.js";

const dir = mkdtempSync(join(tmpdir(), "astrolens-policy-test-"));
const NOW = new Date("2026-06-15T12:00:00Z");

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function policyFile(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** A pattern matching `text` literally (temp paths may hold regex characters). */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function readError(path: string): ConfigurationError {
  try {
    readPolicyFile(path);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected readPolicyFile to throw");
}

const WAIVERS = [
  "waivers:",
  "  - id: CVE-2019-1551",
  "    reason: RSAZ is only used for 512-bit keys",
  "    expires: 2026-12-31",
  "",
].join("\n");

describe("readPolicyFile", () => {
  it("reads every setting", () => {
    const path = policyFile(
      "full.yaml",
      "fail-on: CRITICAL\nreport-on: CRITICAL,HIGH\nignore-unfixed: true\nwaivers-file: waivers.yaml\n",
    );
    expect(readPolicyFile(path)).toEqual({
      failOn: "CRITICAL",
      reportOn: "CRITICAL,HIGH",
      ignoreUnfixed: true,
      waiversFile: join(dir, "waivers.yaml"),
    });
  });

  it("resolves waivers-file relative to the policy file, not the working directory", () => {
    const path = policyFile("nested/deeper/policy.yaml", "waivers-file: ../scan-waivers.yaml\n");
    expect(readPolicyFile(path).waiversFile).toBe(join(dir, "nested", "scan-waivers.yaml"));
  });

  it("keeps an absolute waivers-file as it is", () => {
    const path = policyFile("absolute.yaml", "waivers-file: /etc/astrolens/waivers.yaml\n");
    expect(readPolicyFile(path).waiversFile).toBe("/etc/astrolens/waivers.yaml");
  });

  it("reads an empty file as no settings", () => {
    expect(readPolicyFile(policyFile("empty.yaml", ""))).toEqual({
      failOn: undefined,
      reportOn: undefined,
      ignoreUnfixed: undefined,
      waiversFile: undefined,
    });
  });

  it("rejects an unknown key, naming it and listing the allowed keys", () => {
    const path = policyFile("unknown.yaml", "fail-on: HIGH\nfailOn: HIGH\n");
    const message = readError(path).message;
    expect(message).toMatch(new RegExp(`^policy file ${literal(path)}: .*failOn`));
    expect(message).toContain("; allowed keys are fail-on, report-on, ignore-unfixed, waivers-file");
  });

  it("rejects a value of the wrong type, naming the key", () => {
    const path = policyFile("wrong-type.yaml", 'ignore-unfixed: "yes"\n');
    expect(readError(path).message).toMatch(new RegExp(`^policy file ${literal(path)}: ignore-unfixed: `));
  });

  it("says a missing file does not exist", () => {
    const path = join(dir, "absent.yaml");
    expect(readError(path).message).toBe(`policy file ${path} does not exist`);
  });

  it("says a file that is not YAML is not valid YAML", () => {
    const path = policyFile("broken.yaml", "fail-on: [HIGH\n");
    expect(readError(path).message).toMatch(
      new RegExp(`^policy file ${literal(path)} is not valid YAML \\(`),
    );
  });
});

describe("resolveScanPolicy", () => {
  it("uses the defaults for settings that are not given", async () => {
    expect(await resolveScanPolicy({}, NOW)).toEqual({
      failOn: ["CRITICAL", "HIGH"],
      reportOn: ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"],
      ignoreUnfixed: false,
      waivers: [],
      now: NOW,
    });
  });

  it("parses severities case-insensitively and loads the waivers file", async () => {
    const waiversFile = policyFile("resolve/waivers.yaml", WAIVERS);
    const policy = await resolveScanPolicy(
      { failOn: "medium, critical", reportOn: "LOW", ignoreUnfixed: true, waiversFile },
      NOW,
    );
    expect(policy.failOn).toEqual(["CRITICAL", "MEDIUM"]);
    expect(policy.reportOn).toEqual(["LOW"]);
    expect(policy.ignoreUnfixed).toBe(true);
    expect(policy.waivers.map((waiver) => [waiver.id, waiver.expires])).toEqual([
      ["CVE-2019-1551", "2026-12-31"],
    ]);
  });

  it("loads the waivers a policy file points at", async () => {
    policyFile("chain/scan-waivers.yaml", WAIVERS);
    const path = policyFile("chain/policy.yaml", "waivers-file: scan-waivers.yaml\n");
    const policy = await resolveScanPolicy(readPolicyFile(path), NOW);
    expect(policy.waivers).toHaveLength(1);
    expect(policy.waivers[0]?.origin).toContain(join(dir, "chain", "scan-waivers.yaml"));
  });

  it('names "fail-on" for an unknown severity', async () => {
    const result = resolveScanPolicy({ failOn: "CRITICAL,SEVERE" }, NOW);
    await expect(result).rejects.toBeInstanceOf(ConfigurationError);
    await expect(resolveScanPolicy({ failOn: "CRITICAL,SEVERE" }, NOW)).rejects.toThrow(
      "fail-on has unknown severity 'SEVERE': use a comma-separated list of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN",
    );
  });

  it('names "report-on" for an unknown severity', async () => {
    await expect(resolveScanPolicy({ reportOn: "HI" }, NOW)).rejects.toThrow(
      "report-on has unknown severity 'HI'",
    );
  });

  it("fails for a missing waivers file", async () => {
    const waiversFile = join(dir, "no-such-waivers.yaml");
    await expect(resolveScanPolicy({ waiversFile }, NOW)).rejects.toThrow(
      `waiver file ${waiversFile} does not exist`,
    );
  });
});
