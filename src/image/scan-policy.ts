import { ConfigurationError } from "../errors.js";
import { SEVERITIES, type Severity, type TrivyReport } from "./trivy-report.js";
import { type Waiver, waiverEndsAt } from "./waivers.js";

export { SEVERITIES, type Severity } from "./trivy-report.js";

/**
 * Decides whether a scanned image may ship. Pure: a Trivy report and a policy in, a
 * verdict out; the clock is part of the policy so a verdict can be reproduced.
 */
export interface ScanPolicy {
  /** Severities that block the release. */
  failOn: Severity[];
  /** Severities listed in the summary without blocking; others are counted but hidden. */
  reportOn: Severity[];
  /** When true, a vulnerability with no fixed version never blocks (there is nothing to upgrade to). */
  ignoreUnfixed: boolean;
  waivers: Waiver[];
  /** The moment waiver expiry is judged against. */
  now: Date;
}

export const DEFAULT_FAIL_ON: readonly Severity[] = ["CRITICAL", "HIGH"];
export const DEFAULT_REPORT_ON: readonly Severity[] = SEVERITIES;

/** A policy with the defaults (fail on CRITICAL and HIGH, report all, keep unfixed, no waivers). */
export function scanPolicyWithDefaults(options: Partial<ScanPolicy> & { now: Date }): ScanPolicy {
  return {
    failOn: options.failOn ?? [...DEFAULT_FAIL_ON],
    reportOn: options.reportOn ?? [...DEFAULT_REPORT_ON],
    ignoreUnfixed: options.ignoreUnfixed ?? false,
    waivers: options.waivers ?? [],
    now: options.now,
  };
}

export type FindingKind = "vulnerability" | "secret" | "misconfiguration";

/** In the order a reader should see them: what blocks first. */
export const CLASSIFICATIONS = [
  "blocking",
  "expired-waiver",
  "waived",
  "unfixed-ignored",
  "reported",
  "hidden",
] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

export interface Finding {
  kind: FindingKind;
  /** VulnerabilityID, secret RuleID or misconfiguration ID. */
  id: string;
  /** Other ids a waiver may use (a misconfiguration's AVDID). */
  aliases: string[];
  severity: Severity;
  /** The scanned target (OS packages, a lock file, a file with a secret, a Dockerfile). */
  target: string;
  package?: string;
  installedVersion?: string;
  fixedVersion?: string;
  /** Trivy's vulnerability status: fixed, affected, will_not_fix, fix_deferred, ... */
  status?: string;
  title?: string;
  url?: string;
  /** `file:line` for secrets. */
  location?: string;
  /** False only for a vulnerability without a fixed version. */
  fixable: boolean;
}

export interface ClassifiedFinding extends Finding {
  classification: Classification;
  /** The waiver that matched (for `waived` and `expired-waiver`, or an expired one that no longer mattered). */
  waiver?: Waiver;
}

export interface WaiverUse {
  waiver: Waiver;
  /** applied: waived at least one finding; expired: past its date and matched a finding; unused: matched nothing. */
  status: "applied" | "expired" | "unused";
  /** How many findings it matched. */
  matched: number;
}

export type SeverityCounts = Record<Severity, number>;
export type ClassificationCounts = Record<Classification, number>;

export interface ScanVerdict {
  passed: boolean;
  artifact: { name: string; imageId?: string; repoDigests: string[]; os?: string };
  policy: { failOn: Severity[]; reportOn: Severity[]; ignoreUnfixed: boolean; evaluatedAt: string };
  counts: {
    total: number;
    bySeverity: SeverityCounts;
    byClassification: ClassificationCounts;
    bySeverityAndClassification: Record<Severity, ClassificationCounts>;
  };
  /** Every finding, hidden ones included, blocking first, then by severity. */
  findings: ClassifiedFinding[];
  /** One sentence per finding that blocks the release. */
  reasons: string[];
  waivers: WaiverUse[];
  /** Waivers that matched no finding: they can be removed. Never a reason to fail. */
  unusedWaivers: Waiver[];
  summaryLine: string;
}

/**
 * Classifies every vulnerability, secret and failed misconfiguration in a Trivy report
 * and decides whether the image passes.
 *
 * Order of precedence for one finding: an unexpired waiver waives it; otherwise, with
 * `ignoreUnfixed`, a vulnerability without a fix is ignored; otherwise a severity in
 * `failOn` blocks — and if an expired waiver matched, the verdict says so, because the
 * team had accepted it and must now look again; otherwise it is reported or hidden.
 */
export function evaluateScan(report: TrivyReport, policy: ScanPolicy): ScanVerdict {
  const failOn = new Set(policy.failOn);
  const reportOn = new Set(policy.reportOn);
  const matchedBy = new Map<Waiver, number>();
  const appliedWaivers = new Set<Waiver>();

  const findings = collectFindings(report).map((finding): ClassifiedFinding => {
    const matches = policy.waivers.filter((waiver) => waiverMatches(waiver, finding));
    for (const waiver of matches) matchedBy.set(waiver, (matchedBy.get(waiver) ?? 0) + 1);
    const unexpired = matches.filter((waiver) => waiverEndsAt(waiver) > policy.now);
    const active = pickWaiver(unexpired);
    const expired = pickWaiver(matches.filter((waiver) => waiverEndsAt(waiver) <= policy.now));

    if (active) {
      // Every unexpired waiver that matched covers the finding, not only the one shown.
      for (const waiver of unexpired) appliedWaivers.add(waiver);
      return { ...finding, classification: "waived", waiver: active };
    }
    const withExpired = expired ? { waiver: expired } : {};
    if (policy.ignoreUnfixed && !finding.fixable) {
      return { ...finding, classification: "unfixed-ignored", ...withExpired };
    }
    if (failOn.has(finding.severity)) {
      return { ...finding, classification: expired ? "expired-waiver" : "blocking", ...withExpired };
    }
    return {
      ...finding,
      classification: reportOn.has(finding.severity) ? "reported" : "hidden",
      ...withExpired,
    };
  });
  findings.sort(compareFindings);

  const waivers = policy.waivers.map((waiver): WaiverUse => {
    const matched = matchedBy.get(waiver) ?? 0;
    const status = appliedWaivers.has(waiver) ? "applied" : matched > 0 ? "expired" : "unused";
    return { waiver, status, matched };
  });
  const unusedWaivers = waivers.filter((use) => use.status === "unused").map((use) => use.waiver);

  const blocking = findings.filter(isBlocking);
  const counts = countFindings(findings);
  const artifact = describeArtifact(report);
  const passed = blocking.length === 0;
  return {
    passed,
    artifact,
    policy: {
      failOn: sortSeverities(policy.failOn),
      reportOn: sortSeverities(policy.reportOn),
      ignoreUnfixed: policy.ignoreUnfixed,
      evaluatedAt: policy.now.toISOString(),
    },
    counts,
    findings,
    reasons: blocking.map(describeBlockingFinding),
    waivers,
    unusedWaivers,
    summaryLine: summarise(artifact.name, passed, blocking, counts),
  };
}

/** True for the classifications that fail the scan. */
export function isBlocking(finding: Pick<ClassifiedFinding, "classification">): boolean {
  return finding.classification === "blocking" || finding.classification === "expired-waiver";
}

/**
 * Parses a comma-separated severity list from an action input or CLI flag
 * (`critical, HIGH`): case-insensitive, trimmed, duplicates dropped, most severe first.
 *
 * @param input the raw text
 * @param inputName the input's name, used in errors (`fail-on`)
 * @throws ConfigurationError for an unknown severity or an empty list
 */
export function parseSeverities(input: string, inputName: string): Severity[] {
  const valid = SEVERITIES.join(", ");
  const names = input
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
  if (names.length === 0) {
    // An empty list would turn the gate off silently; that must be a visible choice.
    throw new ConfigurationError(
      `${inputName} is empty: expected a comma-separated list of severities such as CRITICAL,HIGH (valid: ${valid})`,
    );
  }
  const unknown = names.filter((name) => !(SEVERITIES as readonly string[]).includes(name.toUpperCase()));
  if (unknown.length > 0) {
    throw new ConfigurationError(
      `${inputName} has unknown ${unknown.length === 1 ? "severity" : "severities"} ${unknown
        .map((name) => `'${name}'`)
        .join(", ")}: use a comma-separated list of ${valid}`,
    );
  }
  return sortSeverities(names.map((name) => name.toUpperCase() as Severity));
}

function collectFindings(report: TrivyReport): Finding[] {
  const findings: Finding[] = [];
  for (const result of report.Results ?? []) {
    for (const vuln of result.Vulnerabilities ?? []) {
      const fixedVersion = vuln.FixedVersion?.trim() || undefined;
      findings.push({
        kind: "vulnerability",
        id: vuln.VulnerabilityID,
        aliases: [],
        severity: vuln.Severity,
        target: result.Target,
        package: vuln.PkgName,
        installedVersion: vuln.InstalledVersion,
        ...(fixedVersion ? { fixedVersion } : {}),
        ...(vuln.Status ? { status: vuln.Status } : {}),
        ...(vuln.Title ? { title: vuln.Title } : {}),
        ...(vuln.PrimaryURL ? { url: vuln.PrimaryURL } : {}),
        fixable: fixedVersion !== undefined,
      });
    }
    for (const secret of result.Secrets ?? []) {
      findings.push({
        kind: "secret",
        id: secret.RuleID,
        aliases: [],
        severity: secret.Severity,
        target: result.Target,
        title: secret.Title,
        location: secret.StartLine === undefined ? result.Target : `${result.Target}:${secret.StartLine}`,
        fixable: true,
      });
    }
    for (const misconfig of result.Misconfigurations ?? []) {
      if (misconfig.Status !== "FAIL") continue;
      findings.push({
        kind: "misconfiguration",
        id: misconfig.ID,
        aliases: misconfig.AVDID ? [misconfig.AVDID] : [],
        severity: misconfig.Severity,
        target: result.Target,
        title: misconfig.Title,
        ...(misconfig.PrimaryURL ? { url: misconfig.PrimaryURL } : {}),
        fixable: true,
      });
    }
  }
  return findings;
}

function waiverMatches(waiver: Waiver, finding: Finding): boolean {
  const id = waiver.id.toUpperCase();
  if (id !== finding.id.toUpperCase() && !finding.aliases.some((alias) => alias.toUpperCase() === id)) {
    return false;
  }
  return waiver.package === undefined || waiver.package === finding.package;
}

/** The most specific waiver (one naming a package), then the one that lasts longest. */
function pickWaiver(waivers: Waiver[]): Waiver | undefined {
  return [...waivers].sort(
    (a, b) =>
      Number(b.package !== undefined) - Number(a.package !== undefined) || b.expires.localeCompare(a.expires),
  )[0];
}

const severityRank = (severity: Severity): number => SEVERITIES.indexOf(severity);
const classificationRank = (classification: Classification): number =>
  CLASSIFICATIONS.indexOf(classification);

function sortSeverities(severities: readonly Severity[]): Severity[] {
  return [...new Set(severities)].sort((a, b) => severityRank(a) - severityRank(b));
}

function compareFindings(a: ClassifiedFinding, b: ClassifiedFinding): number {
  return (
    classificationRank(a.classification) - classificationRank(b.classification) ||
    severityRank(a.severity) - severityRank(b.severity) ||
    a.id.localeCompare(b.id) ||
    (a.package ?? a.target).localeCompare(b.package ?? b.target)
  );
}

function zeroBySeverity(): SeverityCounts {
  return { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
}

function zeroByClassification(): ClassificationCounts {
  return { blocking: 0, "expired-waiver": 0, waived: 0, "unfixed-ignored": 0, reported: 0, hidden: 0 };
}

function countFindings(findings: ClassifiedFinding[]): ScanVerdict["counts"] {
  const bySeverity = zeroBySeverity();
  const byClassification = zeroByClassification();
  const bySeverityAndClassification = Object.fromEntries(
    SEVERITIES.map((severity) => [severity, zeroByClassification()]),
  ) as Record<Severity, ClassificationCounts>;
  for (const finding of findings) {
    bySeverity[finding.severity] += 1;
    byClassification[finding.classification] += 1;
    bySeverityAndClassification[finding.severity][finding.classification] += 1;
  }
  return { total: findings.length, bySeverity, byClassification, bySeverityAndClassification };
}

function describeArtifact(report: TrivyReport): ScanVerdict["artifact"] {
  const metadata = report.Metadata;
  return {
    name: report.ArtifactName,
    ...(metadata?.ImageID ? { imageId: metadata.ImageID } : {}),
    repoDigests: metadata?.RepoDigests ?? [],
    ...(metadata?.OS ? { os: `${metadata.OS.Family} ${metadata.OS.Name}` } : {}),
  };
}

/** One sentence naming a finding, e.g. "CVE-2019-1543 (CRITICAL) in openssl 1.1.1b, fixed in 1.1.1c". */
export function describeFinding(finding: Finding): string {
  switch (finding.kind) {
    case "vulnerability": {
      const where = `${finding.package ?? finding.target} ${finding.installedVersion ?? ""}`.trim();
      const fix = finding.fixedVersion
        ? `fixed in ${finding.fixedVersion}`
        : `no fixed version${finding.status ? ` (status: ${finding.status})` : ""}`;
      return `${finding.id} (${finding.severity}) in ${where}, ${fix}`;
    }
    case "secret":
      return `secret ${finding.id} (${finding.severity}) in ${finding.location ?? finding.target}${
        finding.title ? `: ${finding.title}` : ""
      }`;
    case "misconfiguration":
      return `misconfiguration ${finding.id} (${finding.severity}) in ${finding.target}${
        finding.title ? `: ${finding.title}` : ""
      }`;
  }
}

function describeBlockingFinding(finding: ClassifiedFinding): string {
  if (finding.classification === "expired-waiver" && finding.waiver) {
    const origin = finding.waiver.origin ? ` (${finding.waiver.origin})` : "";
    return (
      `waiver for ${finding.waiver.id} expired on ${finding.waiver.expires}${origin}, so ` +
      `${describeFinding(finding)} blocks again: fix it, or renew the waiver with a new reason and expiry`
    );
  }
  return describeFinding(finding);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function summarise(
  artifactName: string,
  passed: boolean,
  blocking: ClassifiedFinding[],
  counts: ScanVerdict["counts"],
): string {
  const c = counts.byClassification;
  const others = `${c.reported} reported, ${c.waived} waived, ${c["unfixed-ignored"]} unfixed ignored`;
  if (passed) return `Image scan passed for ${artifactName}: no blocking findings; ${others}`;
  const bySeverity = SEVERITIES.map(
    (severity) => [severity, blocking.filter((f) => f.severity === severity).length] as const,
  )
    .filter(([, count]) => count > 0)
    .map(([severity, count]) => `${count} ${severity}`);
  const expired = c["expired-waiver"];
  if (expired > 0) bySeverity.push(`${expired} with an expired waiver`);
  return `Image scan failed for ${artifactName}: ${plural(blocking.length, "blocking finding")} (${bySeverity.join(
    ", ",
  )}); ${others}`;
}
