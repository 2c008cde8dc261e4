import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { evaluateScan, type ScanPolicy, scanPolicyWithDefaults } from "../../src/image/scan-policy.js";
import { formatVerdictForConsole, renderScanSummary } from "../../src/image/scan-summary.js";
import { parseTrivyReport, type TrivyReport } from "../../src/image/trivy-report.js";
import type { Waiver } from "../../src/image/waivers.js";

const TRIVY_FIXTURES = fileURLToPath(new URL("../../../shared/fixtures/trivy/", import.meta.url));

function trivy(name: string): TrivyReport {
  const path = `${TRIVY_FIXTURES}${name}`;
  return parseTrivyReport(readFileSync(path, "utf8"), path);
}

const NOW = new Date("2026-06-15T12:00:00Z");
const verdictFor = (name: string, options: Partial<ScanPolicy> = {}) =>
  evaluateScan(trivy(name), scanPolicyWithDefaults({ now: NOW, ...options }));

describe("renderScanSummary", () => {
  it("heads a failed scan with the verdict and lists each blocking finding as a row", () => {
    const markdown = renderScanSummary(verdictFor("distroless-base.json", { failOn: ["LOW"] }));
    expect(markdown.split("\n")[0]).toBe(
      "### ❌ Image scan failed: 2 blocking findings in `testdata/fixtures/images/distroless-base.tar.gz`",
    );
    expect(markdown).toContain(
      "| [CVE-2019-1563](https://avd.aquasec.com/nvd/cve-2019-1563) | libssl1.1 | 1.1.0k-1~deb9u1 | 1.1.0l-1~deb9u1 | LOW | Blocking |",
    );
    expect(markdown).toContain(
      "| [CVE-2019-1563](https://avd.aquasec.com/nvd/cve-2019-1563) | openssl | 1.1.0k-1~deb9u1 | 1.1.0l-1~deb9u1 | LOW | Blocking |",
    );
    expect(markdown).toContain(
      "| [CVE-2019-1551](https://avd.aquasec.com/nvd/cve-2019-1551) | openssl | 1.1.0k-1~deb9u1 | _none_ (affected) | MEDIUM | Reported |",
    );
    expect(markdown).toContain("- CVE-2019-1563 (LOW) in openssl 1.1.0k-1~deb9u1, fixed in 1.1.0l-1~deb9u1");
  });

  it("heads a passing scan and counts by severity and classification", () => {
    const markdown = renderScanSummary(verdictFor("alpine-310.json"));
    expect(markdown.split("\n")[0]).toBe(
      "### ✅ Image scan passed: `testdata/fixtures/images/alpine-310.tar.gz`",
    );
    expect(markdown).toContain(
      "| Severity | Blocking | Expired waiver | Waived | Unfixed (ignored) | Reported | Hidden | Total |",
    );
    expect(markdown).toContain("| MEDIUM | 0 | 0 | 0 | 0 | 4 | 0 | 4 |");
    expect(markdown).toContain("| **Total** | 0 | 0 | 0 | 0 | 4 | 0 | 4 |");
    expect(markdown).not.toContain("Blocking findings");
    expect(markdown).not.toContain("<details>");
  });

  it("folds long tables, but never the blocking findings", () => {
    const markdown = renderScanSummary(verdictFor("debian-buster.json"), { foldAfterRows: 0 });
    expect(markdown).toContain("**Blocking findings**\n\n| ID |");
    expect(markdown).toContain("<details>\n<summary>Other findings (1)</summary>\n\n| ID |");
  });

  it("lists waivers that applied, expired and went unused", () => {
    const applied: Waiver = {
      id: "CVE-2019-18224",
      package: "libidn2-0",
      reason: "a | b",
      expires: "2026-12-31",
    };
    const expired: Waiver = { id: "CVE-2019-18276", reason: "old", expires: "2026-01-01" };
    const unused: Waiver = { id: "CVE-2000-0001", reason: "gone", expires: "2026-12-31" };
    const markdown = renderScanSummary(
      verdictFor("debian-buster.json", { waivers: [applied, expired, unused], failOn: ["CRITICAL", "LOW"] }),
    );
    expect(markdown.split("\n")[0]).toContain("failed: 1 blocking finding in");
    expect(markdown).toContain("**Waivers (1 expired, 1 applied, 1 unused)**");
    expect(markdown).toContain("| CVE-2019-18276 | any | 2026-01-01 | **Expired** | 1 | old |");
    expect(markdown).toContain("| CVE-2019-18224 | libidn2-0 | 2026-12-31 | Applied | 1 | a \\| b |");
    expect(markdown).toContain("| CVE-2000-0001 | any | 2026-12-31 | Unused — can be removed | 0 | gone |");
    expect(markdown).toContain("| LOW | Expired waiver (CVE-2019-18276, until 2026-01-01) |");
  });
});

describe("formatVerdictForConsole", () => {
  it("gives the summary line, one line per reason and the counts", () => {
    expect(formatVerdictForConsole(verdictFor("debian-buster.json"))).toBe(
      [
        "Image scan failed for testdata/fixtures/images/debian-buster.tar.gz: 1 blocking finding (1 CRITICAL); " +
          "1 reported, 0 waived, 0 unfixed ignored",
        "  ✗ CVE-2019-18224 (CRITICAL) in libidn2-0 2.0.5-1, fixed in 2.0.5-1+deb10u1",
        "  findings: CRITICAL 1, LOW 1",
      ].join("\n"),
    );
  });

  it("mentions unused waivers as removable", () => {
    const unused: Waiver = { id: "CVE-2000-0001", reason: "gone", expires: "2026-12-31", origin: "w.yaml:2" };
    expect(formatVerdictForConsole(verdictFor("alpine-310.json", { waivers: [unused] }))).toContain(
      "  unused waivers (can be removed): CVE-2000-0001 (w.yaml:2)",
    );
  });
});
