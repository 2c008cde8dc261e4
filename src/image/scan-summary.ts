import {
  CLASSIFICATIONS,
  type Classification,
  type ClassifiedFinding,
  isBlocking,
  type ScanVerdict,
  SEVERITIES,
  type WaiverUse,
} from "./scan-policy.js";

/**
 * Renders a scan verdict for people: GitHub-flavoured markdown for the job summary and
 * a few plain lines for a terminal. Pure functions; writing them is the caller's job.
 */

export interface ScanSummaryOptions {
  /** Findings tables longer than this are folded into `<details>`. */
  foldAfterRows?: number;
  /** Markdown heading level of the headline (the summary may sit under a release heading). */
  headingLevel?: 2 | 3 | 4;
}

const CLASSIFICATION_LABELS: Record<Classification, string> = {
  blocking: "Blocking",
  "expired-waiver": "Expired waiver",
  waived: "Waived",
  "unfixed-ignored": "Unfixed (ignored)",
  reported: "Reported",
  hidden: "Hidden",
};

/** The job-summary markdown for one verdict. */
export function renderScanSummary(verdict: ScanVerdict, options: ScanSummaryOptions = {}): string {
  const foldAfter = options.foldAfterRows ?? 10;
  const heading = "#".repeat(options.headingLevel ?? 3);
  const sections: string[] = [];

  sections.push(`${heading} ${renderHeadline(verdict)}`);
  sections.push(renderPolicyLine(verdict));

  if (verdict.reasons.length > 0) {
    sections.push(
      [`**Blocking the release:**`, "", ...verdict.reasons.map((reason) => `- ${escapeInline(reason)}`)].join(
        "\n",
      ),
    );
  }

  sections.push(renderCountsTable(verdict));

  // Blocking findings are never folded away: they are why the job failed.
  const blocking = verdict.findings.filter(isBlocking);
  if (blocking.length > 0) {
    sections.push(`**Blocking findings**\n\n${renderFindingsTable(blocking)}`);
  }
  const others = verdict.findings.filter((f) => !isBlocking(f) && f.classification !== "hidden");
  if (others.length > 0) {
    const title = `Other findings (${others.length})`;
    const table = renderFindingsTable(others);
    sections.push(others.length > foldAfter ? fold(title, table) : `**${title}**\n\n${table}`);
  }
  const hidden = verdict.counts.byClassification.hidden;
  if (hidden > 0) {
    sections.push(
      `_${hidden} finding${hidden === 1 ? "" : "s"} below the reporting threshold ${
        hidden === 1 ? "is" : "are"
      } counted but not listed._`,
    );
  }

  const waivers = renderWaivers(verdict.waivers, foldAfter);
  if (waivers) sections.push(waivers);

  return `${sections.join("\n\n")}\n`;
}

/** A few plain-text lines for a terminal. */
export function formatVerdictForConsole(verdict: ScanVerdict): string {
  const lines = [verdict.summaryLine];
  for (const reason of verdict.reasons) lines.push(`  ✗ ${reason}`);
  const severities = SEVERITIES.filter((s) => verdict.counts.bySeverity[s] > 0).map(
    (s) => `${s} ${verdict.counts.bySeverity[s]}`,
  );
  lines.push(`  findings: ${severities.length > 0 ? severities.join(", ") : "none"}`);
  const expired = verdict.waivers.filter((use) => use.status === "expired");
  for (const use of expired) {
    lines.push(`  waiver for ${use.waiver.id} expired on ${use.waiver.expires}${originSuffix(use)}`);
  }
  if (verdict.unusedWaivers.length > 0) {
    lines.push(
      `  unused waivers (can be removed): ${verdict.unusedWaivers.map((w) => waiverLabel(w)).join(", ")}`,
    );
  }
  return lines.join("\n");
}

function renderHeadline(verdict: ScanVerdict): string {
  const blocking = verdict.reasons.length;
  return verdict.passed
    ? `✅ Image scan passed: ${code(verdict.artifact.name)}`
    : `❌ Image scan failed: ${blocking} blocking finding${blocking === 1 ? "" : "s"} in ${code(
        verdict.artifact.name,
      )}`;
}

function renderPolicyLine(verdict: ScanVerdict): string {
  const { policy, artifact } = verdict;
  const parts = [
    `Fails on ${policy.failOn.length > 0 ? policy.failOn.join(", ") : "nothing"}`,
    `reports ${policy.reportOn.length > 0 ? policy.reportOn.join(", ") : "nothing"}`,
    policy.ignoreUnfixed ? "ignores vulnerabilities without a fix" : "counts vulnerabilities without a fix",
  ];
  const image = [
    artifact.imageId ? `image ${code(artifact.imageId)}` : undefined,
    artifact.os ? `OS ${escapeCell(artifact.os)}` : undefined,
  ].filter((part): part is string => part !== undefined);
  return `${parts.join("; ")}.${image.length > 0 ? ` Scanned ${image.join(", ")}.` : ""}`;
}

function renderCountsTable(verdict: ScanVerdict): string {
  const columns = CLASSIFICATIONS;
  const header = `| Severity | ${columns.map((c) => CLASSIFICATION_LABELS[c]).join(" | ")} | Total |`;
  const rule = `|---|${columns.map(() => "---:").join("|")}|---:|`;
  const rows = SEVERITIES.map((severity) => {
    const row = verdict.counts.bySeverityAndClassification[severity];
    return `| ${severity} | ${columns.map((c) => row[c]).join(" | ")} | ${verdict.counts.bySeverity[severity]} |`;
  });
  const totals = `| **Total** | ${columns.map((c) => verdict.counts.byClassification[c]).join(" | ")} | ${
    verdict.counts.total
  } |`;
  return [header, rule, ...rows, totals].join("\n");
}

function renderFindingsTable(findings: ClassifiedFinding[]): string {
  const header = "| ID | Package / target | Installed | Fixed | Severity | Classification |";
  const rule = "|---|---|---|---|---|---|";
  const rows = findings.map((f) => {
    const id = f.url ? `[${escapeCell(f.id)}](${f.url})` : escapeCell(f.id);
    const where = f.package ? escapeCell(f.package) : escapeCell(f.location ?? f.target);
    const fixed =
      f.kind !== "vulnerability"
        ? ""
        : f.fixedVersion
          ? escapeCell(f.fixedVersion)
          : `_none_${statusNote(f)}`;
    const waiver = f.waiver ? ` (${f.waiver.id}, until ${f.waiver.expires})` : "";
    return `| ${id} | ${where} | ${escapeCell(f.installedVersion ?? "")} | ${fixed} | ${f.severity} | ${
      CLASSIFICATION_LABELS[f.classification]
    }${escapeCell(waiver)} |`;
  });
  return [header, rule, ...rows].join("\n");
}

function renderWaivers(uses: WaiverUse[], foldAfter: number): string | undefined {
  if (uses.length === 0) return undefined;
  const status: Record<WaiverUse["status"], string> = {
    applied: "Applied",
    expired: "**Expired**",
    unused: "Unused — can be removed",
  };
  const order: WaiverUse["status"][] = ["expired", "applied", "unused"];
  const sorted = [...uses].sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status));
  const header = "| Waiver | Package | Expires | Status | Matched | Reason |";
  const rule = "|---|---|---|---|---:|---|";
  const rows = sorted.map(
    (use) =>
      `| ${escapeCell(use.waiver.id)} | ${escapeCell(use.waiver.package ?? "any")} | ${use.waiver.expires} | ${
        status[use.status]
      } | ${use.matched} | ${escapeCell(use.waiver.reason)} |`,
  );
  const table = [header, rule, ...rows].join("\n");
  const counts = order
    .map((s) => [s, uses.filter((u) => u.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(", ");
  const title = `Waivers (${counts})`;
  return uses.length > foldAfter ? fold(title, table) : `**${title}**\n\n${table}`;
}

function fold(title: string, body: string): string {
  // The blank lines let GitHub render the markdown table inside the HTML block.
  return `<details>\n<summary>${escapeHtml(title)}</summary>\n\n${body}\n\n</details>`;
}

function statusNote(finding: ClassifiedFinding): string {
  return finding.status ? ` (${escapeCell(finding.status)})` : "";
}

function waiverLabel(waiver: WaiverUse["waiver"]): string {
  return `${waiver.id}${waiver.package ? ` in ${waiver.package}` : ""}${waiver.origin ? ` (${waiver.origin})` : ""}`;
}

function originSuffix(use: WaiverUse): string {
  return use.waiver.origin ? ` (${use.waiver.origin})` : "";
}

function code(text: string): string {
  return `\`${text.replaceAll("`", "'")}\``;
}

/** Table cells: a pipe ends the cell and a newline ends the row. */
function escapeCell(text: string): string {
  return escapeHtml(text).replaceAll("|", "\\|").replace(/\r?\n/g, " ");
}

function escapeInline(text: string): string {
  return escapeHtml(text).replace(/\r?\n/g, " ");
}

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
