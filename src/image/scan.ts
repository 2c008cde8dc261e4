import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigurationError, withContext } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { findProgram, runCommand } from "../tools/command.js";
import { evaluateScan, type ScanPolicy, type ScanVerdict } from "./scan-policy.js";
import { parseTrivyReport, type TrivyReport } from "./trivy-report.js";

export interface ScanOptions {
  /** The docker-archive tarball of the image (build-image's archive output). */
  archive: string;
  /** The Dockerfile, checked for misconfigurations with Trivy's embedded checks. */
  dockerfile?: string;
  digest: string;
  policy: ScanPolicy;
  outputDir: string;
  cacheDir: string;
  /** Never download: use the DB already in the cache (required here, optional on runners). */
  offline: boolean;
  /** Where to fetch the DB from, in order (mirrors first: ghcr.io rate-limits). */
  dbRepositories: string[];
  trivyPath?: string;
  logger: Logger;
}

export interface ScanResult {
  verdict: ScanVerdict;
  digest: string;
  reportFile: string;
  sarifFile: string;
  sbomFile: string;
  verdictFile: string;
}

export const DEFAULT_DB_REPOSITORIES = [
  "mirror.gcr.io/aquasec/trivy-db:2",
  "ghcr.io/aquasecurity/trivy-db:2",
];

/**
 * Scans a built image with Trivy (vulnerabilities, secrets, image-config and
 * Dockerfile misconfigurations), applies the policy, and writes the JSON report,
 * SARIF for code scanning, a CycloneDX SBOM and the verdict next to each other.
 */
export async function scanImage(options: ScanOptions): Promise<ScanResult> {
  const { logger } = options;
  const trivy = locateTrivy(options.trivyPath);
  if (!existsSync(options.archive)) {
    throw new ConfigurationError(
      `input "archive": ${options.archive} does not exist; run build-image first and pass its archive output`,
    );
  }
  mkdirSync(options.outputDir, { recursive: true });
  const common = ["--cache-dir", options.cacheDir, "--quiet", "--skip-version-check", "--disable-telemetry"];
  await ensureDatabase(trivy, options, common);

  const offlineFlags = [
    "--skip-db-update",
    "--skip-java-db-update",
    "--skip-check-update",
    "--skip-vex-repo-update",
    "--offline-scan",
  ];
  const imageReportFile = join(options.outputDir, "trivy-image.json");
  await logger.group("Scanning the image with Trivy", async () => {
    await runTrivy(
      trivy,
      [
        "image",
        ...common,
        ...offlineFlags,
        "--input",
        options.archive,
        "--scanners",
        "vuln,secret,misconfig",
        "--image-config-scanners",
        "misconfig,secret",
        "--list-all-pkgs",
        "--format",
        "json",
        "--output",
        imageReportFile,
      ],
      logger,
    );
  });
  let report = parseTrivyReport(readFileSync(imageReportFile, "utf8"), imageReportFile);

  if (options.dockerfile) {
    const dockerfile = options.dockerfile;
    if (!existsSync(dockerfile))
      throw new ConfigurationError(`input "dockerfile": ${dockerfile} does not exist`);
    const configReportFile = join(options.outputDir, "trivy-dockerfile.json");
    await logger.group("Checking the Dockerfile with Trivy", async () => {
      await runTrivy(
        trivy,
        [
          "config",
          ...common,
          "--skip-check-update",
          "--format",
          "json",
          "--output",
          configReportFile,
          dockerfile,
        ],
        logger,
      );
    });
    report = mergeReports(report, parseTrivyReport(readFileSync(configReportFile, "utf8"), configReportFile));
  }

  const reportFile = join(options.outputDir, "trivy-report.json");
  writeFileSync(reportFile, JSON.stringify(report, null, 2));
  const sarifFile = join(options.outputDir, "trivy.sarif");
  const sbomFile = join(options.outputDir, "sbom.cdx.json");
  await logger.group("Writing SARIF and the CycloneDX SBOM", async () => {
    await runTrivy(
      trivy,
      ["convert", "--quiet", "--format", "sarif", "--output", sarifFile, reportFile],
      logger,
    );
    await runTrivy(
      trivy,
      ["convert", "--quiet", "--format", "cyclonedx", "--output", sbomFile, imageReportFile],
      logger,
    );
  });

  const verdict = evaluateScan(report, options.policy);
  const verdictFile = join(options.outputDir, "scan-verdict.json");
  writeFileSync(verdictFile, `${JSON.stringify({ digest: options.digest, ...verdict }, null, 2)}\n`);
  return { verdict, digest: options.digest, reportFile, sarifFile, sbomFile, verdictFile };
}

/** Trivy from `trivy-path`, `.local/tools/bin` (scripts/install-trivy.sh) or PATH. */
export function locateTrivy(explicit?: string): string {
  if (explicit) {
    if (!existsSync(explicit)) throw new ConfigurationError(`input "trivy-path": ${explicit} does not exist`);
    return explicit;
  }
  const found = findProgram("trivy", [join(process.cwd(), ".local", "tools", "bin")]);
  if (!found) {
    throw new ConfigurationError(
      "Trivy is not installed: run scripts/install-trivy.sh (a pinned Trivy into .local/tools/bin), or install it from https://trivy.dev and put it on PATH",
    );
  }
  return found;
}

async function ensureDatabase(trivy: string, options: ScanOptions, common: string[]): Promise<void> {
  const metadata = join(options.cacheDir, "db", "metadata.json");
  if (existsSync(metadata)) return;
  if (options.offline) {
    throw new ConfigurationError(
      `no Trivy vulnerability DB in ${options.cacheDir} and offline is set: build the local one (go run ./scripts/trivy-db --out ${options.cacheDir}) or set offline to false to download it`,
    );
  }
  await options.logger.group("Downloading the Trivy vulnerability DB", async () => {
    await runTrivy(
      trivy,
      ["image", ...common, "--download-db-only", "--db-repository", options.dbRepositories.join(",")],
      options.logger,
    );
  });
}

async function runTrivy(trivy: string, args: string[], logger: Logger): Promise<void> {
  try {
    await runCommand(trivy, args, { logger, env: { ...process.env, TRIVY_DISABLE_TELEMETRY: "true" } });
  } catch (err) {
    throw withContext(`trivy ${args[0]}`, err);
  }
}

/** One report for the policy: the image scan plus the Dockerfile check's results. */
function mergeReports(image: TrivyReport, config: TrivyReport): TrivyReport {
  return { ...image, Results: [...(image.Results ?? []), ...(config.Results ?? [])] };
}
