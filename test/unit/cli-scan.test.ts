import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { main } from "../../src/cli/main.js";

// The shared Trivy fixtures live beside the checkout: <repo>/../shared/fixtures/trivy.
const TRIVY_FIXTURES = fileURLToPath(new URL("../../../shared/fixtures/trivy/", import.meta.url));
const DEBIAN = join(TRIVY_FIXTURES, "debian-buster.json");
const ALPINE = join(TRIVY_FIXTURES, "alpine-310.json");

const dir = mkdtempSync(join(tmpdir(), "astrolens-cli-scan-test-"));

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let stdout: MockInstance<typeof process.stdout.write>;
let stderr: MockInstance<typeof process.stderr.write>;

beforeEach(() => {
  stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const written = (spy: MockInstance<typeof process.stdout.write>): string =>
  spy.mock.calls.map(([chunk]) => String(chunk)).join("");

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("astrolens-release scan", () => {
  it("returns 1 for debian-buster (a fixed CRITICAL blocks) and prints the verdict", async () => {
    expect(await main(["scan", "--report", DEBIAN])).toBe(1);
    expect(written(stdout)).toContain("CVE-2019-18224");
  });

  it("returns 0 for alpine-310 (only MEDIUM findings) with the default policy", async () => {
    expect(await main(["scan", "--report", ALPINE])).toBe(0);
    expect(written(stderr)).toBe("");
  });

  it("prints the verdict as parseable JSON with --json", async () => {
    expect(await main(["scan", "--report", DEBIAN, "--json"])).toBe(1);
    const verdict = JSON.parse(written(stdout)) as {
      passed: boolean;
      policy: { failOn: string[] };
      reasons: string[];
    };
    expect(verdict.passed).toBe(false);
    expect(verdict.policy.failOn).toEqual(["CRITICAL", "HIGH"]);
    expect(verdict.reasons).toEqual([
      "CVE-2019-18224 (CRITICAL) in libidn2-0 2.0.5-1, fixed in 2.0.5-1+deb10u1",
    ]);
  });

  it("prints passed: true as JSON for alpine-310", async () => {
    expect(await main(["scan", "--report", ALPINE, "--json"])).toBe(0);
    expect(JSON.parse(written(stdout)).passed).toBe(true);
  });

  it("applies a --policy file: fail-on MEDIUM makes alpine-310 fail", async () => {
    const policy = file("medium.yaml", "fail-on: MEDIUM\n");
    expect(await main(["scan", "--report", ALPINE, "--policy", policy, "--json"])).toBe(1);
    const verdict = JSON.parse(written(stdout)) as { passed: boolean; policy: { failOn: string[] } };
    expect(verdict.passed).toBe(false);
    expect(verdict.policy.failOn).toEqual(["MEDIUM"]);
  });

  it("applies --waivers: a waiver for the CRITICAL lets debian-buster pass", async () => {
    const waivers = file(
      "waivers.yaml",
      [
        "waivers:",
        "  - id: CVE-2019-18224",
        "    package: libidn2-0",
        "    reason: not reachable",
        "    expires: 2099-12-31",
        "",
      ].join("\n"),
    );
    expect(await main(["scan", "--report", DEBIAN, "--waivers", waivers])).toBe(0);
  });

  it("returns 1 with a message when --report is missing", async () => {
    expect(await main(["scan"])).toBe(1);
    expect(written(stderr)).toBe(
      "error: astrolens-release scan: --report is required: the path of a Trivy JSON report\n",
    );
    expect(written(stdout)).toBe("");
  });

  it("returns 1 with a message when the report cannot be read", async () => {
    const missing = join(dir, "no-such-report.json");
    expect(await main(["scan", "--report", missing])).toBe(1);
    expect(written(stderr)).toContain(
      `--report: ${missing} cannot be read; give the path of a Trivy JSON report`,
    );
  });

  it("returns 1 naming the policy file's problem", async () => {
    const policy = file("bad.yaml", "fail-on: SEVERE\n");
    expect(await main(["scan", "--report", ALPINE, "--policy", policy])).toBe(1);
    expect(written(stderr)).toContain("fail-on has unknown severity 'SEVERE'");
  });
});

describe("astrolens-release commands", () => {
  it("returns 2 for an unknown command, naming it", async () => {
    expect(await main(["launch"])).toBe(2);
    expect(written(stderr)).toBe('error: unknown command "launch": run astrolens-release --help\n');
  });

  it("says what a release command needs before touching anything", async () => {
    expect(await main(["deploy", "--env", "local"])).toBe(1);
    expect(written(stderr)).toContain("--env and --image are required");
    stderr.mockClear();
    expect(await main(["rollback"])).toBe(1);
    expect(written(stderr)).toContain("--env is required: astrolens-release rollback --env local");
    stderr.mockClear();
    expect(await main(["local", "alarm", "x", "--state", "RED"])).toBe(1);
    expect(written(stderr)).toContain("usage: astrolens-release local alarm NAME --state ALARM|OK");
    stderr.mockClear();
    expect(await main(["status", "--env", "Prod!"])).toBe(1);
    expect(written(stderr)).toContain('environment "Prod!" is not a valid name');
  });

  it("returns 2 and prints usage with no command, 0 with --help", async () => {
    expect(await main([])).toBe(2);
    expect(written(stdout)).toContain("astrolens-release scan --report FILE");
    stdout.mockClear();
    expect(await main(["--help"])).toBe(0);
    expect(written(stdout)).toContain("Usage:");
  });
});
