import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { loadWaivers, parseWaivers, waiverEndsAt } from "../../src/image/waivers.js";

const FILE = ".astrolens/scan-waivers.yaml";
const EXAMPLE = fileURLToPath(new URL("../fixtures/scan/scan-waivers.yaml", import.meta.url));

function problems(text: string): string {
  try {
    parseWaivers(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return (err as Error).message;
  }
  throw new Error("expected parseWaivers to throw");
}

describe("parseWaivers", () => {
  it("reads id, package, reason and expires, recording where each waiver was written", () => {
    const text = [
      "waivers:",
      "  - id: CVE-2019-1543",
      "    package: openssl",
      '    reason: "not reachable: we never call the affected API"',
      "    expires: 2026-12-31",
      "  - id: DS002",
      "    reason: USER is set in the base image",
      "    expires: '2027-01-31'",
    ].join("\n");
    expect(parseWaivers(text, FILE)).toEqual([
      {
        id: "CVE-2019-1543",
        package: "openssl",
        reason: "not reachable: we never call the affected API",
        expires: "2026-12-31",
        origin: `${FILE}:2`,
      },
      { id: "DS002", reason: "USER is set in the base image", expires: "2027-01-31", origin: `${FILE}:6` },
    ]);
  });

  it("treats an empty file and an empty list as no waivers", () => {
    expect(parseWaivers("", FILE)).toEqual([]);
    expect(parseWaivers("# nothing waived\n", FILE)).toEqual([]);
    expect(parseWaivers("waivers:\n", FILE)).toEqual([]);
    expect(parseWaivers("waivers: []\n", FILE)).toEqual([]);
  });

  it("names the file for malformed YAML", () => {
    expect(problems("waivers:\n  - id: CVE-1\n   reason: [unclosed\n")).toMatch(
      /^\.astrolens\/scan-waivers\.yaml is not valid YAML: .+\. Fix the syntax/,
    );
  });

  it("says how to add a missing expiry", () => {
    expect(problems("waivers:\n  - id: CVE-2019-1543\n    reason: accepted\n")).toBe(
      "waiver 1 (CVE-2019-1543) in .astrolens/scan-waivers.yaml:2 has no expires: add an expiry date such as " +
        "expires: 2027-01-31 — waivers must end so they are reviewed",
    );
  });

  it("counts entries from 1 and names the second one", () => {
    const text = [
      "waivers:",
      "  - id: CVE-1",
      "    reason: ok",
      "    expires: 2026-01-01",
      "  - id: CVE-2019-1543",
      "    reason: ok",
    ].join("\n");
    expect(problems(text)).toMatch(
      /^waiver 2 \(CVE-2019-1543\) in \.astrolens\/scan-waivers\.yaml:5 has no expires:/,
    );
  });

  it("requires a non-empty reason", () => {
    expect(problems("waivers:\n  - id: CVE-1\n    reason: '  '\n    expires: 2026-01-01\n")).toBe(
      'waiver 1 (CVE-1) in .astrolens/scan-waivers.yaml:2 has no reason: add reason: "…" saying why the ' +
        "finding is acceptable — the reason is shown in every scan summary",
    );
  });

  it.each([
    ["2026-02-30", "a day February does not have"],
    ["2026-13-01", "month 13"],
    ["31/12/2026", "another date format"],
    ["next year", "words"],
    ["2026-12-31T00:00:00Z", "a timestamp"],
  ])("rejects expires: %s (%s)", (value) => {
    expect(problems(`waivers:\n  - id: CVE-1\n    reason: ok\n    expires: ${value}\n`)).toBe(
      `waiver 1 (CVE-1) in .astrolens/scan-waivers.yaml:2 has an invalid expires '${value}': expected a ` +
        "calendar date as YYYY-MM-DD, such as expires: 2027-01-31",
    );
  });

  it("rejects unknown keys and suggests the intended one", () => {
    expect(problems("waivers:\n  - id: CVE-1\n    reason: ok\n    expiry: 2026-01-01\n")).toBe(
      [
        "waiver 1 (CVE-1) in .astrolens/scan-waivers.yaml:2 has an unknown key 'expiry': did you mean 'expires'? " +
          "the keys are id, package, reason, expires",
        "waiver 1 (CVE-1) in .astrolens/scan-waivers.yaml:2 has no expires: add an expiry date such as " +
          "expires: 2027-01-31 — waivers must end so they are reviewed",
      ].join("\n"),
    );
    expect(problems("ignores:\n  - CVE-1\n")).toBe(
      ".astrolens/scan-waivers.yaml has an unknown top-level key 'ignores': the only key is 'waivers'",
    );
  });

  it("requires an id", () => {
    expect(problems("waivers:\n  - reason: ok\n    expires: 2026-01-01\n")).toMatch(
      /^waiver 1 in \.astrolens\/scan-waivers\.yaml:2 has no id: add the vulnerability id, secret rule id or misconfiguration id/,
    );
  });

  it("rejects a duplicate id for the same package, but allows the id with and without a package", () => {
    const entry = (pkg?: string) =>
      `  - id: CVE-1\n${pkg ? `    package: ${pkg}\n` : ""}    reason: ok\n    expires: 2026-01-01\n`;
    expect(parseWaivers(`waivers:\n${entry("openssl")}${entry()}`, FILE)).toHaveLength(2);
    expect(problems(`waivers:\n${entry("openssl")}${entry()}${entry("openssl")}`)).toBe(
      "waiver 3 (CVE-1) in .astrolens/scan-waivers.yaml:9 repeats waiver 1 (CVE-1 in openssl): keep one entry " +
        "per id and package, so there is one reason and one expiry to review",
    );
  });

  it("reports every problem in the file at once", () => {
    const text = "waivers:\n  - id: CVE-1\n  - id: CVE-2\n    reason: ok\n";
    expect(problems(text).split("\n")).toHaveLength(3);
  });

  it("refuses a waivers value that is not a list", () => {
    expect(problems("waivers:\n  id: CVE-1\n")).toMatch(
      /'waivers' must be a list of entries .* but it is a mapping$/,
    );
  });
});

describe("waiverEndsAt", () => {
  it("ends at the start of the following day, UTC", () => {
    expect(waiverEndsAt({ expires: "2026-12-31" }).toISOString()).toBe("2027-01-01T00:00:00.000Z");
  });
});

describe("loadWaivers", () => {
  const dir = mkdtempSync(join(tmpdir(), "waivers-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the example waiver file", async () => {
    const waivers = await loadWaivers(EXAMPLE);
    expect(waivers.map((w) => [w.id, w.package, w.expires])).toEqual([
      ["CVE-2019-18224", "libidn2-0", "2026-12-31"],
      ["CVE-2019-1551", undefined, "2026-06-30"],
      ["AVD-DS-0002", undefined, "2026-03-31"],
    ]);
    expect(waivers[0]?.origin).toBe(`${EXAMPLE}:3`);
  });

  it("names the path of a missing file", async () => {
    const missing = join(dir, "absent.yaml");
    await expect(loadWaivers(missing)).rejects.toThrow(
      new ConfigurationError(
        `waiver file ${missing} does not exist: create it (see the example in the scan action's README) or remove the waivers input`,
      ),
    );
  });

  it("names the path in parse errors", async () => {
    const path = join(dir, "bad.yaml");
    writeFileSync(path, "waivers:\n  - id: CVE-1\n    expires: 2026-01-01\n");
    await expect(loadWaivers(path)).rejects.toThrow(`waiver 1 (CVE-1) in ${path}:2 has no reason`);
  });
});
