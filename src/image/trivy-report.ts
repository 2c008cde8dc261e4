import { z } from "zod";
import { ConfigurationError } from "../errors.js";

/**
 * The parts of Trivy's JSON report (SchemaVersion 2) that the scan policy reads.
 *
 * Objects are loose: Trivy adds fields between releases (CVSS, DataSource, Layer,
 * CauseMetadata, ...) and a new field must never fail a release. The fields we read
 * are checked strictly, so a report from another tool fails here, not as a silent pass.
 */

export const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"] as const;
export type Severity = (typeof SEVERITIES)[number];

const severitySchema = z.enum(SEVERITIES);

export const trivyVulnerabilitySchema = z.looseObject({
  VulnerabilityID: z.string().min(1),
  PkgName: z.string(),
  InstalledVersion: z.string(),
  // Absent (or empty) when no fixed version exists; Status then says why
  // ("affected", "will_not_fix", "fix_deferred", "end_of_life", ...).
  FixedVersion: z.string().optional(),
  Status: z.string().optional(),
  Severity: severitySchema,
  Title: z.string().optional(),
  PrimaryURL: z.string().optional(),
});

export const trivySecretSchema = z.looseObject({
  RuleID: z.string().min(1),
  Category: z.string(),
  Severity: severitySchema,
  Title: z.string(),
  StartLine: z.number().int().optional(),
  EndLine: z.number().int().optional(),
});

export const trivyMisconfigurationSchema = z.looseObject({
  ID: z.string().min(1),
  AVDID: z.string().optional(),
  Title: z.string(),
  Message: z.string().optional(),
  Resolution: z.string().optional(),
  Severity: severitySchema,
  PrimaryURL: z.string().optional(),
  Status: z.enum(["FAIL", "PASS", "EXCEPTION"]),
});

export const trivyResultSchema = z.looseObject({
  Target: z.string(),
  Class: z.string(),
  // Secret results carry no Type.
  Type: z.string().optional(),
  Vulnerabilities: z.array(trivyVulnerabilitySchema).optional(),
  Secrets: z.array(trivySecretSchema).optional(),
  Misconfigurations: z.array(trivyMisconfigurationSchema).optional(),
});

export const trivyReportSchema = z.looseObject({
  SchemaVersion: z.literal(2),
  ArtifactName: z.string(),
  ArtifactType: z.string().optional(),
  // Image scans always have Metadata with an ImageID; repository and filesystem
  // scans (secrets, Dockerfile checks) may have none, and distroless/scratch images no OS.
  Metadata: z
    .looseObject({
      ImageID: z.string().optional(),
      RepoDigests: z.array(z.string()).optional(),
      RepoTags: z.array(z.string()).optional(),
      OS: z.looseObject({ Family: z.string(), Name: z.string() }).optional(),
    })
    .optional(),
  // Omitted by Trivy when nothing was scanned.
  Results: z.array(trivyResultSchema).optional(),
});

export type TrivyVulnerability = z.infer<typeof trivyVulnerabilitySchema>;
export type TrivySecret = z.infer<typeof trivySecretSchema>;
export type TrivyMisconfiguration = z.infer<typeof trivyMisconfigurationSchema>;
export type TrivyResult = z.infer<typeof trivyResultSchema>;
export type TrivyReport = z.infer<typeof trivyReportSchema>;

const MAX_LISTED_ISSUES = 5;

/**
 * Parses the text of a Trivy JSON report (`trivy image --format json`).
 *
 * @param json the report text
 * @param source where it came from (a path), named in errors
 * @throws ConfigurationError when the text is not JSON or not a Trivy v2 report
 */
export function parseTrivyReport(json: string, source: string): TrivyReport {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new ConfigurationError(
      `${source} is not valid JSON (${detail}): expected the output of \`trivy image --format json\`; ` +
        "check that Trivy wrote the report to this file and that it was not truncated",
    );
  }
  const parsed = trivyReportSchema.safeParse(data);
  if (parsed.success) return parsed.data;

  const issues = parsed.error.issues.slice(0, MAX_LISTED_ISSUES).map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join(".") : "(top level)";
    return `${path}: ${issue.message}`;
  });
  const more = parsed.error.issues.length - issues.length;
  if (more > 0) issues.push(`and ${more} more`);
  throw new ConfigurationError(
    `${source} is not a Trivy JSON report (schema version 2): ${issues.join("; ")}. ` +
      "Expected the output of `trivy image --format json` from Trivy 0.20 or later",
  );
}
