import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import {
  evaluateScan,
  parseSeverities,
  type ScanPolicy,
  type ScanVerdict,
  scanPolicyWithDefaults,
} from "../../src/image/scan-policy.js";
import { parseTrivyReport, type TrivyReport } from "../../src/image/trivy-report.js";
import type { Waiver } from "../../src/image/waivers.js";

// Real Trivy reports, read in place; a missing directory fails the test (readFileSync throws).
const TRIVY_FIXTURES = fileURLToPath(new URL("../../../shared/fixtures/trivy/", import.meta.url));
const SCAN_FIXTURES = fileURLToPath(new URL("../fixtures/scan/", import.meta.url));

function trivy(name: string): TrivyReport {
  const path = `${TRIVY_FIXTURES}${name}`;
  return parseTrivyReport(readFileSync(path, "utf8"), path);
}

function local(name: string): TrivyReport {
  const path = `${SCAN_FIXTURES}${name}`;
  return parseTrivyReport(readFileSync(path, "utf8"), path);
}

const NOW = new Date("2026-06-15T12:00:00Z");

function evaluate(report: TrivyReport, options: Partial<ScanPolicy> = {}): ScanVerdict {
  return evaluateScan(report, scanPolicyWithDefaults({ now: NOW, ...options }));
}

function ids(verdict: ScanVerdict, classification: string): string[] {
  return verdict.findings
    .filter((f) => f.classification === classification)
    .map((f) => `${f.id}/${f.package ?? f.target}`);
}

const LIBIDN2_WAIVER: Waiver = {
  id: "CVE-2019-18224",
  package: "libidn2-0",
  reason: "not reachable: we never convert international domain names",
  expires: "2026-12-31",
  origin: ".astrolens/scan-waivers.yaml:2",
};

describe("evaluateScan on debian-buster (1 CRITICAL fixed, 1 LOW unfixed)", () => {
  const report = trivy("debian-buster.json");

  it("fails on the fixed CRITICAL with the defaults and reports the LOW", () => {
    const verdict = evaluate(report);
    expect(verdict.passed).toBe(false);
    expect(ids(verdict, "blocking")).toEqual(["CVE-2019-18224/libidn2-0"]);
    expect(ids(verdict, "reported")).toEqual(["CVE-2019-18276/bash"]);
    expect(verdict.reasons).toEqual([
      "CVE-2019-18224 (CRITICAL) in libidn2-0 2.0.5-1, fixed in 2.0.5-1+deb10u1",
    ]);
    expect(verdict.counts.bySeverity).toEqual({ CRITICAL: 1, HIGH: 0, MEDIUM: 0, LOW: 1, UNKNOWN: 0 });
    expect(verdict.counts.byClassification).toEqual({
      blocking: 1,
      "expired-waiver": 0,
      waived: 0,
      "unfixed-ignored": 0,
      reported: 1,
      hidden: 0,
    });
    expect(verdict.summaryLine).toBe(
      "Image scan failed for testdata/fixtures/images/debian-buster.tar.gz: 1 blocking finding (1 CRITICAL); " +
        "1 reported, 0 waived, 0 unfixed ignored",
    );
    expect(verdict.artifact).toEqual({
      name: "testdata/fixtures/images/debian-buster.tar.gz",
      imageId: "sha256:c2c03a296d2329a4f3ab72a7bf38b78a8a80108204d326b0139d6af700e152d1",
      repoDigests: [],
      os: "debian 10.1",
    });
  });

  it("never blocks on the unfixed LOW with ignoreUnfixed, even when failOn includes LOW", () => {
    const verdict = evaluate(report, { failOn: ["CRITICAL", "HIGH", "MEDIUM", "LOW"], ignoreUnfixed: true });
    expect(ids(verdict, "blocking")).toEqual(["CVE-2019-18224/libidn2-0"]);
    expect(ids(verdict, "unfixed-ignored")).toEqual(["CVE-2019-18276/bash"]);

    const lowOnly = evaluate(report, { failOn: ["LOW"], ignoreUnfixed: true });
    expect(lowOnly.passed).toBe(true);
    expect(ids(lowOnly, "unfixed-ignored")).toEqual(["CVE-2019-18276/bash"]);
    expect(ids(lowOnly, "reported")).toEqual(["CVE-2019-18224/libidn2-0"]);
  });

  it("blocks on the unfixed LOW when failOn includes LOW and unfixed ones count", () => {
    const verdict = evaluate(report, { failOn: ["LOW"], ignoreUnfixed: false });
    expect(verdict.passed).toBe(false);
    expect(verdict.reasons).toEqual([
      "CVE-2019-18276 (LOW) in bash 5.0-4, no fixed version (status: affected)",
    ]);
  });

  it("hides severities outside reportOn but still counts them", () => {
    const verdict = evaluate(report, { reportOn: ["CRITICAL", "HIGH"] });
    expect(ids(verdict, "hidden")).toEqual(["CVE-2019-18276/bash"]);
    expect(verdict.counts.total).toBe(2);
  });

  it("passes when an unexpired waiver covers the CRITICAL", () => {
    const verdict = evaluate(report, { waivers: [LIBIDN2_WAIVER] });
    expect(verdict.passed).toBe(true);
    expect(ids(verdict, "waived")).toEqual(["CVE-2019-18224/libidn2-0"]);
    expect(verdict.findings.find((f) => f.classification === "waived")?.waiver).toBe(LIBIDN2_WAIVER);
    expect(verdict.waivers).toEqual([{ waiver: LIBIDN2_WAIVER, status: "applied", matched: 1 }]);
    expect(verdict.unusedWaivers).toEqual([]);
    expect(verdict.reasons).toEqual([]);
  });

  it("still applies a waiver on its last day and blocks from the next day (UTC)", () => {
    const lastDay = evaluateScan(
      report,
      scanPolicyWithDefaults({ now: new Date("2026-12-31T23:59:59Z"), waivers: [LIBIDN2_WAIVER] }),
    );
    expect(lastDay.passed).toBe(true);
    const nextDay = evaluateScan(
      report,
      scanPolicyWithDefaults({ now: new Date("2027-01-01T00:00:00Z"), waivers: [LIBIDN2_WAIVER] }),
    );
    expect(nextDay.passed).toBe(false);
  });

  it("blocks when the same waiver has expired, naming the waiver and the date", () => {
    const expired = { ...LIBIDN2_WAIVER, expires: "2026-01-01" };
    const verdict = evaluate(report, { waivers: [expired] });
    expect(verdict.passed).toBe(false);
    expect(ids(verdict, "expired-waiver")).toEqual(["CVE-2019-18224/libidn2-0"]);
    expect(verdict.reasons).toEqual([
      "waiver for CVE-2019-18224 expired on 2026-01-01 (.astrolens/scan-waivers.yaml:2), so " +
        "CVE-2019-18224 (CRITICAL) in libidn2-0 2.0.5-1, fixed in 2.0.5-1+deb10u1 blocks again: " +
        "fix it, or renew the waiver with a new reason and expiry",
    ]);
    expect(verdict.waivers).toEqual([{ waiver: expired, status: "expired", matched: 1 }]);
    expect(verdict.summaryLine).toContain("1 blocking finding (1 CRITICAL, 1 with an expired waiver)");
  });

  it("does not waive a finding in another package, and lists the waiver as unused", () => {
    const other: Waiver = { ...LIBIDN2_WAIVER, package: "libidn11" };
    const stale: Waiver = { id: "CVE-2000-0001", reason: "gone", expires: "2027-01-01" };
    const verdict = evaluate(report, { waivers: [other, stale] });
    expect(verdict.passed).toBe(false);
    expect(verdict.unusedWaivers).toEqual([other, stale]);
  });

  it("matches waiver ids case-insensitively and without a package in any package", () => {
    const verdict = evaluate(report, {
      waivers: [{ id: "cve-2019-18224", reason: "accepted", expires: "2026-12-31" }],
    });
    expect(verdict.passed).toBe(true);
  });

  it("lets an unexpired waiver win over an expired one for the same finding", () => {
    const old = { ...LIBIDN2_WAIVER, package: undefined, expires: "2025-01-01" } as Waiver;
    const verdict = evaluate(report, { waivers: [old, LIBIDN2_WAIVER] });
    expect(verdict.passed).toBe(true);
    expect(verdict.waivers.map((use) => use.status)).toEqual(["expired", "applied"]);
  });

  it("does not let an expired waiver block a finding that would not block anyway", () => {
    const expiredLow: Waiver = { id: "CVE-2019-18276", reason: "old", expires: "2020-01-01" };
    const verdict = evaluate(report, { waivers: [expiredLow, LIBIDN2_WAIVER] });
    expect(verdict.passed).toBe(true);
    expect(ids(verdict, "reported")).toEqual(["CVE-2019-18276/bash"]);
    expect(verdict.waivers[0]).toEqual({ waiver: expiredLow, status: "expired", matched: 1 });
  });
});

describe("evaluateScan on debian-buster scanned with --ignore-unfixed", () => {
  const report = trivy("debian-buster-ignore-unfixed.json");

  it("holds only the fixed CRITICAL, which blocks", () => {
    const verdict = evaluate(report);
    expect(verdict.passed).toBe(false);
    expect(ids(verdict, "blocking")).toEqual(["CVE-2019-18224/libidn2-0"]);
    expect(verdict.counts.total).toBe(1);
    expect(verdict.counts.bySeverity.LOW).toBe(0);
  });

  it("gives the same blocking findings as our ignoreUnfixed on the full report", () => {
    const ours = evaluate(trivy("debian-buster.json"), { failOn: ["CRITICAL", "LOW"], ignoreUnfixed: true });
    const trivys = evaluate(report, { failOn: ["CRITICAL", "LOW"] });
    expect(trivys.reasons).toEqual(ours.reasons);
  });
});

describe("evaluateScan on alpine-310 (4 MEDIUM, all fixed)", () => {
  const report = trivy("alpine-310.json");

  it("passes with the defaults and reports the four MEDIUM", () => {
    const verdict = evaluate(report);
    expect(verdict.passed).toBe(true);
    expect(verdict.counts.bySeverity).toEqual({ CRITICAL: 0, HIGH: 0, MEDIUM: 4, LOW: 0, UNKNOWN: 0 });
    expect(ids(verdict, "reported")).toEqual([
      "CVE-2019-1549/libcrypto1.1",
      "CVE-2019-1549/libssl1.1",
      "CVE-2019-1551/libcrypto1.1",
      "CVE-2019-1551/libssl1.1",
    ]);
    expect(verdict.summaryLine).toBe(
      "Image scan passed for testdata/fixtures/images/alpine-310.tar.gz: no blocking findings; " +
        "4 reported, 0 waived, 0 unfixed ignored",
    );
  });

  it("fails on all four with failOn MEDIUM", () => {
    const verdict = evaluate(report, { failOn: ["MEDIUM"] });
    expect(verdict.passed).toBe(false);
    expect(verdict.counts.byClassification.blocking).toBe(4);
    expect(verdict.reasons).toContain("CVE-2019-1551 (MEDIUM) in libssl1.1 1.1.1c-r0, fixed in 1.1.1d-r2");
  });

  it("waives one id in every package with a package-less waiver", () => {
    const waiver: Waiver = { id: "CVE-2019-1551", reason: "RSAZ unused", expires: "2026-12-31" };
    const verdict = evaluate(report, { failOn: ["MEDIUM"], waivers: [waiver] });
    expect(ids(verdict, "waived")).toEqual(["CVE-2019-1551/libcrypto1.1", "CVE-2019-1551/libssl1.1"]);
    expect(ids(verdict, "blocking")).toEqual(["CVE-2019-1549/libcrypto1.1", "CVE-2019-1549/libssl1.1"]);
    expect(verdict.waivers).toEqual([{ waiver, status: "applied", matched: 2 }]);
  });
});

describe("evaluateScan on distroless-base (2 MEDIUM unfixed, 2 LOW fixed)", () => {
  const report = trivy("distroless-base.json");

  it("passes with the defaults", () => {
    const verdict = evaluate(report);
    expect(verdict.passed).toBe(true);
    expect(verdict.counts.bySeverity).toEqual({ CRITICAL: 0, HIGH: 0, MEDIUM: 2, LOW: 2, UNKNOWN: 0 });
  });

  it("passes with failOn MEDIUM and ignoreUnfixed, both MEDIUM having no fix", () => {
    const verdict = evaluate(report, { failOn: ["MEDIUM"], ignoreUnfixed: true });
    expect(verdict.passed).toBe(true);
    expect(ids(verdict, "unfixed-ignored")).toEqual(["CVE-2019-1551/libssl1.1", "CVE-2019-1551/openssl"]);
  });

  it("fails with failOn MEDIUM when unfixed ones count", () => {
    expect(evaluate(report, { failOn: ["MEDIUM"] }).passed).toBe(false);
  });

  it("fails with failOn LOW on the two fixed LOW", () => {
    const verdict = evaluate(report, { failOn: ["LOW"], ignoreUnfixed: true });
    expect(verdict.passed).toBe(false);
    expect(verdict.reasons).toEqual([
      "CVE-2019-1563 (LOW) in libssl1.1 1.1.0k-1~deb9u1, fixed in 1.1.0l-1~deb9u1",
      "CVE-2019-1563 (LOW) in openssl 1.1.0k-1~deb9u1, fixed in 1.1.0l-1~deb9u1",
    ]);
  });
});

describe("evaluateScan on secrets and misconfigurations (Trivy's own goldens)", () => {
  it("blocks on a CRITICAL secret and a HIGH secret with the defaults", () => {
    const verdict = evaluate(local("trivy-secrets.json"));
    expect(verdict.passed).toBe(false);
    expect(verdict.reasons).toEqual([
      "secret aws-access-key-id (CRITICAL) in deploy.sh:3: AWS Access Key ID",
      "secret mysecret (HIGH) in deploy.sh:7: My Secret",
    ]);
    // Secrets are always fixable: ignoreUnfixed does not let them through.
    expect(evaluate(local("trivy-secrets.json"), { ignoreUnfixed: true }).passed).toBe(false);
  });

  it("blocks on the failed DS002 check and accepts a waiver by its AVD id", () => {
    const report = local("trivy-dockerfile.json");
    const verdict = evaluate(report);
    expect(verdict.reasons).toEqual([
      "misconfiguration DS002 (HIGH) in Dockerfile: Image user should not be 'root'",
    ]);
    expect(verdict.artifact).toEqual({ name: "testdata/fixtures/repo/dockerfile", repoDigests: [] });
    const waived = evaluate(report, {
      waivers: [{ id: "AVD-DS-0002", reason: "USER set in the base image", expires: "2026-12-31" }],
    });
    expect(waived.passed).toBe(true);
  });

  it("ignores misconfiguration checks that passed", () => {
    const report = local("trivy-dockerfile.json");
    const passing = structuredClone(report);
    const misconfig = passing.Results?.[0]?.Misconfigurations?.[0];
    if (!misconfig) throw new Error("fixture changed: no misconfiguration");
    misconfig.Status = "PASS";
    expect(evaluate(passing).counts.total).toBe(0);
  });
});

describe("parseSeverities", () => {
  it("accepts any case and spacing, drops duplicates and sorts most severe first", () => {
    expect(parseSeverities(" high, Critical ,HIGH,low,", "fail-on")).toEqual(["CRITICAL", "HIGH", "LOW"]);
  });

  it("names the input and lists the valid values for an unknown severity", () => {
    expect(() => parseSeverities("CRITICAL,SEVERE", "fail-on")).toThrow(
      new ConfigurationError(
        "fail-on has unknown severity 'SEVERE': use a comma-separated list of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN",
      ),
    );
    expect(() => parseSeverities("CRITICAL,SEVERE", "fail-on")).toThrow(ConfigurationError);
  });

  it("refuses an empty list rather than silently turning the gate off", () => {
    expect(() => parseSeverities(" , ", "report-on")).toThrow(
      /^report-on is empty: expected a comma-separated list/,
    );
  });
});

describe("parseTrivyReport", () => {
  it("names the file when the text is not JSON", () => {
    expect(() => parseTrivyReport("<html>502 Bad Gateway</html>", "scan/trivy.json")).toThrow(
      /^scan\/trivy\.json is not valid JSON \(.*\): expected the output of `trivy image --format json`/,
    );
  });

  it("names the file and the wrong fields when the shape is not a Trivy v2 report", () => {
    const garbage = JSON.stringify({ SchemaVersion: 2, ArtifactName: "x", Results: [{ Target: "t" }] });
    expect(() => parseTrivyReport(garbage, "scan/trivy.json")).toThrow(
      /^scan\/trivy\.json is not a Trivy JSON report \(schema version 2\): Results\.0\.Class: /,
    );
    const sarif = readFileSync(`${TRIVY_FIXTURES}alpine-310.sarif`, "utf8");
    expect(() => parseTrivyReport(sarif, "alpine-310.sarif")).toThrow(ConfigurationError);
  });

  it("keeps fields it does not model", () => {
    const report = trivy("alpine-310.json");
    expect(report.SchemaVersion).toBe(2);
    const first: Record<string, unknown> = report.Results?.[0]?.Vulnerabilities?.[0] ?? {};
    expect(first.PkgID).toBe("libcrypto1.1@1.1.1c-r0");
  });
});
