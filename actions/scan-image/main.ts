import { z } from "zod";
import { ConfigurationError } from "../../src/errors.js";
import {
  actionsInputReader,
  actionsLogger,
  runAction,
  setOutputs,
  writeSummary,
} from "../../src/gh/actions.js";
import { parseInputs, splitList } from "../../src/gh/inputs.js";
import { booleanInput } from "../../src/gh/schema.js";
import { Summary } from "../../src/gh/summary.js";
import { DEFAULT_DB_REPOSITORIES, scanImage } from "../../src/image/scan.js";
import { resolveScanPolicy } from "../../src/image/scan-policy-file.js";
import { renderScanSummary } from "../../src/image/scan-summary.js";

const inputs = z.object({
  archive: z.string().default(".astrolens/build/image.tar"),
  digest: z
    .string()
    .regex(/^sha256:[a-f0-9]{64}$/, "expected sha256: and 64 hex digits (build-image's digest output)"),
  dockerfile: z.string().default("Dockerfile"),
  "fail-on": z.string().default("CRITICAL,HIGH"),
  "report-on": z.string().default("CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN"),
  "ignore-unfixed": booleanInput(false),
  "waivers-file": z.string().optional(),
  "output-dir": z.string().default(".astrolens/scan"),
  "cache-dir": z.string().optional(),
  offline: booleanInput(false),
  "db-repository": z.string().default(DEFAULT_DB_REPOSITORIES.join(",")),
  "trivy-path": z.string().optional(),
  "fail-build": booleanInput(true),
});

/** The action's logic; `index.ts` runs it (and `npx @github/local-action` calls it). */
export async function run(): Promise<void> {
  await runAction("scan-image", async () => {
    const input = parseInputs(inputs, actionsInputReader);
    const policy = await resolveScanPolicy({
      failOn: input["fail-on"],
      reportOn: input["report-on"],
      ignoreUnfixed: input["ignore-unfixed"],
      waiversFile: input["waivers-file"],
    });
    const cacheDir =
      input["cache-dir"] ?? process.env.TRIVY_CACHE_DIR ?? `${process.env.HOME ?? "."}/.cache/trivy`;
    const result = await scanImage({
      archive: input.archive,
      dockerfile: input.dockerfile,
      digest: input.digest,
      policy,
      outputDir: input["output-dir"],
      cacheDir,
      offline: input.offline,
      dbRepositories: splitList(input["db-repository"]),
      trivyPath: input["trivy-path"],
      logger: actionsLogger,
    });
    const { verdict } = result;
    setOutputs({
      verdict: verdict.passed ? "pass" : "fail",
      "scanned-digest": result.digest,
      critical: verdict.counts.bySeverity.CRITICAL,
      high: verdict.counts.bySeverity.HIGH,
      medium: verdict.counts.bySeverity.MEDIUM,
      low: verdict.counts.bySeverity.LOW,
      unknown: verdict.counts.bySeverity.UNKNOWN,
      blocking: verdict.counts.byClassification.blocking + verdict.counts.byClassification["expired-waiver"],
      waived: verdict.counts.byClassification.waived,
      "report-file": result.reportFile,
      "sarif-file": result.sarifFile,
      "sbom-file": result.sbomFile,
      "verdict-file": result.verdictFile,
    });
    for (const reason of verdict.reasons) actionsLogger.error(reason);
    await writeSummary(new Summary().raw(renderScanSummary(verdict)));
    if (!verdict.passed && input["fail-build"]) throw new ConfigurationError(verdict.summaryLine);
  });
}
