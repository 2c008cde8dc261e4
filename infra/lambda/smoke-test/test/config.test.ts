/** Where the expectations come from, and what a caller is told when they are missing or wrong. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseModelManifest } from "../../../../service/src/model/manifest.js";
import { DEFAULT_LATENCY_BUDGET, parseDirectTarget, resolveExpectations } from "../src/config.js";
import { contractFromManifest, contractFromManifestText } from "../src/contract.js";
import { contractV2, MANIFEST_V2_TEXT } from "./helpers.js";

const sha = createHash("sha256").update(MANIFEST_V2_TEXT).digest("hex");

function problems(result: ReturnType<typeof resolveExpectations>): string {
  if (result.ok) throw new Error("expected problems, got a resolution");
  return result.problems.join(" | ");
}

describe("the expected contract", () => {
  it("is derived from the manifest text with the file's sha256, as the service reports it", () => {
    const result = resolveExpectations({ manifest: MANIFEST_V2_TEXT }, {}, "");
    expect(result).toEqual({ ok: true, value: { contract: contractV2, budget: DEFAULT_LATENCY_BUDGET } });
    expect(contractV2).toMatchObject({
      name: "astrolens",
      version: "2.0.0",
      manifestSha256: sha,
      tileSize: 64,
    });
    expect(contractFromManifest(parseModelManifest(MANIFEST_V2_TEXT), sha)).toEqual(contractV2);
  });

  it("keeps only what a response can show: small enough for hookDetails or a Lambda variable (4 KB)", () => {
    expect(Object.keys(contractV2).sort()).toEqual(
      ["classifier", "detector", "manifestSha256", "name", "ood", "tileSize", "version"].sort(),
    );
    expect(JSON.stringify(contractV2).length).toBeLessThan(1_000);
  });

  it("takes a contract as given, first", () => {
    const result = resolveExpectations({ contract: contractV2, manifest: "ignored" }, {}, "");
    expect(result.ok && result.value.contract).toEqual(contractV2);
  });

  it("takes a whole parsed manifest object, whose sha256 only the caller can know", () => {
    const manifest = JSON.parse(MANIFEST_V2_TEXT) as Record<string, unknown>;
    const without = resolveExpectations({ manifest }, {}, "");
    expect(without.ok && without.value.contract.manifestSha256).toBeUndefined();
    const withSha = resolveExpectations({ manifest, manifestSha256: sha }, {}, "");
    expect(withSha.ok && withSha.value.contract).toEqual(contractV2);
  });

  it("falls back to SMOKE_CONTRACT_JSON", () => {
    const result = resolveExpectations(
      {},
      { SMOKE_CONTRACT_JSON: JSON.stringify(contractV2) },
      "hookDetails.",
    );
    expect(result.ok && result.value.contract).toEqual(contractV2);
  });

  it("says where to put one when there is none", () => {
    expect(problems(resolveExpectations({}, {}, "hookDetails."))).toBe(
      "no expected model contract: pass hookDetails.contract (contractFromManifest of the released model's manifest.json) " +
        "or hookDetails.manifest (the manifest.json text), or set SMOKE_CONTRACT_JSON on the function",
    );
    expect(problems(resolveExpectations({}, { SMOKE_CONTRACT_JSON: "  " }, ""))).toMatch(
      /^no expected model contract: pass contract/,
    );
  });

  it("names the field of a contract that is wrong", () => {
    const { classifier: _dropped, ...broken } = contractV2;
    expect(problems(resolveExpectations({ contract: broken as never }, {}, "hookDetails."))).toMatch(
      /^hookDetails\.contract is not a smoke contract \(hookDetails\.contract\.classifier: .*\); build it from the model's manifest\.json with contractFromManifest$/,
    );
    const duplicated = { ...contractV2, classifier: { classes: ["a", "a"] } };
    expect(problems(resolveExpectations({ contract: duplicated }, {}, ""))).toContain(
      "contract.classifier.classes: must be unique",
    );
  });

  it("names what is wrong with a manifest, as the service's own parser does", () => {
    const manifest = JSON.parse(MANIFEST_V2_TEXT) as Record<string, unknown>;
    delete manifest.ood;
    expect(problems(resolveExpectations({ manifest }, {}, "hookDetails."))).toMatch(
      /^hookDetails\.manifest does not match the manifest schema: ood: /,
    );
    expect(problems(resolveExpectations({ manifest: "{not json" }, {}, ""))).toMatch(
      /^manifest is not valid JSON: /,
    );
    expect(problems(resolveExpectations({ manifest: 42 as never }, {}, ""))).toBe(
      "manifest must be the manifest.json text or its parsed object, got number",
    );
  });

  it("refuses a manifest text whose sha256 is not the one claimed", () => {
    expect(
      problems(resolveExpectations({ manifest: MANIFEST_V2_TEXT, manifestSha256: "0".repeat(64) }, {}, "")),
    ).toContain(`manifestSha256 is ${"0".repeat(64)}, but the sha256 of manifest (the text given) is ${sha}`);
  });

  it("names an unreadable SMOKE_CONTRACT_JSON", () => {
    expect(problems(resolveExpectations({}, { SMOKE_CONTRACT_JSON: "{" }, ""))).toMatch(
      /^SMOKE_CONTRACT_JSON is not valid JSON \(.*\); set it to the smoke contract's JSON$/,
    );
    expect(problems(resolveExpectations({}, { SMOKE_CONTRACT_JSON: '{"name":"x"}' }, ""))).toMatch(
      /^SMOKE_CONTRACT_JSON is not a smoke contract \(SMOKE_CONTRACT_JSON\.version: /,
    );
  });

  it("agrees with contractFromManifestText on a manifest's bytes", () => {
    expect(contractFromManifestText(Buffer.from(MANIFEST_V2_TEXT))).toEqual(contractV2);
  });
});

describe("the latency budget", () => {
  const base = { contract: contractV2 };
  const budgetOf = (result: ReturnType<typeof resolveExpectations>) =>
    result.ok ? result.value.budget : result.problems;

  it("defaults, then the environment, then the event", () => {
    expect(budgetOf(resolveExpectations(base, {}, ""))).toEqual({ perRequest: 2_000, total: 10_000 });
    const env = { SMOKE_LATENCY_BUDGET_MS: "500", SMOKE_TOTAL_BUDGET_MS: "3000" };
    expect(budgetOf(resolveExpectations(base, env, ""))).toEqual({ perRequest: 500, total: 3_000 });
    expect(budgetOf(resolveExpectations({ ...base, latencyBudgetMs: { perRequest: 250 } }, env, ""))).toEqual(
      {
        perRequest: 250,
        total: 3_000,
      },
    );
  });

  it("refuses values that are not whole milliseconds, or a per-request budget over the total", () => {
    expect(problems(resolveExpectations(base, { SMOKE_TOTAL_BUDGET_MS: "10s" }, ""))).toBe(
      'SMOKE_TOTAL_BUDGET_MS must be a whole number of milliseconds, 1-900000, got "10s"',
    );
    expect(
      problems(resolveExpectations({ ...base, latencyBudgetMs: { total: 0 } }, {}, "hookDetails.")),
    ).toContain("hookDetails.latencyBudgetMs.total must be a whole number of milliseconds, 1-900000, got 0");
    expect(problems(resolveExpectations({ ...base, latencyBudgetMs: 500 as never }, {}, ""))).toBe(
      "latencyBudgetMs must be { perRequest?, total? } in milliseconds, got 500",
    );
    expect(
      problems(resolveExpectations({ ...base, latencyBudgetMs: { perRequest: 20_000 } }, {}, "")),
    ).toMatch(/^the per-request latency budget \(20000 ms\) is larger than the total \(10000 ms\)/);
  });

  it("reports every problem at once", () => {
    const result = resolveExpectations({ latencyBudgetMs: { total: -1 } }, {}, "");
    expect(result.ok ? [] : result.problems).toHaveLength(2);
  });
});

describe("a direct invocation's target", () => {
  it("accepts a URL or a SageMaker endpoint", () => {
    expect(parseDirectTarget({ target: { url: "http://127.0.0.1:8080" } })).toEqual({
      ok: true,
      value: { url: "http://127.0.0.1:8080/" },
    });
    expect(
      parseDirectTarget({ target: { endpointName: "astrolens-staging", targetVariant: "green" } }),
    ).toEqual({
      ok: true,
      value: { endpointName: "astrolens-staging", targetVariant: "green" },
    });
  });

  it("says what the event should have been", () => {
    for (const event of [{}, null, "ping", { target: {} }, { target: { url: "x", endpointName: "y" } }]) {
      const result = parseDirectTarget(event);
      expect(result.ok ? "" : result.problems[0]).toMatch(
        /^the event is neither an ECS lifecycle hook event nor a direct invocation \{ target: \{ url \} \| \{ endpointName \}/,
      );
    }
    const badName = parseDirectTarget({ target: { endpointName: "no_underscores" } });
    expect(badName.ok ? "" : badName.problems[0]).toContain("is not a SageMaker name");
    const ftp = parseDirectTarget({ target: { url: "ftp://host/" } });
    expect(ftp.ok ? "" : ftp.problems[0]).toBe("target.url must be http:// or https://, got ftp:");
  });
});
