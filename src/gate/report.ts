import { type Comparison, formatP, type MetricDelta, pct } from "./compare.js";
import type { ModelMetrics } from "./metrics.js";

const VERDICT_HEADLINE: Record<Comparison["verdict"], string> = {
  pass: "✅ Accuracy gate passed",
  fail: "❌ Accuracy gate failed",
  inconclusive: "⚠️ Accuracy gate inconclusive",
};

/**
 * The comparison as markdown for a job summary: the verdict in one sentence, then the
 * metrics side by side with deltas and intervals, per-class tables, both confusion
 * matrices, OOD, McNemar and the checks, with the calibration details folded away.
 */
export function renderGateReport(comparison: Comparison): string {
  const { production: prod, candidate: cand, deltas, confidence } = comparison;
  const ciHeader = `${Math.round(confidence * 100)}% CI`;
  const release = comparison.blocksRelease ? "The release is blocked." : "The release may proceed.";
  const lines: string[] = [
    `## ${VERDICT_HEADLINE[comparison.verdict]}`,
    "",
    `**${comparison.verdict.toUpperCase()}** — ${comparison.reasons.join(" ")} ${release}`,
    "",
    "### Metrics",
    "",
    `| Metric | Production | Candidate | Delta | ${ciHeader} |`,
    "| --- | ---: | ---: | ---: | --- |",
    deltaRow("Accuracy", deltas.accuracy),
    deltaRow("Macro-F1", deltas.macroF1),
    ...comparison.classes.map((name) => {
      const d = deltas.classRecall[name];
      return d ? deltaRow(`Recall: ${escapeCell(name)}`, d) : "";
    }),
    plainRow("ECE (lower is better)", prod.ece, cand.ece),
  ];
  if (prod.detection && cand.detection) {
    lines.push(plainRow("Detector mAP@0.5", prod.detection.map50, cand.detection.map50));
  }
  lines.push(
    "",
    `Items: ${comparison.items}. Intervals: paired percentile bootstrap, ${comparison.policy.bootstrapIterations} resamples, seed ${comparison.policy.seed}. ` +
      `Accuracy interval used for the verdict (bootstrap ∪ Agresti–Min): ${pct(comparison.accuracyDecision.lower)} to ${pct(comparison.accuracyDecision.upper)}.`,
    "",
    `**McNemar (exact):** b = ${comparison.mcnemar.b} (production right, candidate wrong), c = ${comparison.mcnemar.c} (candidate right, production wrong), p = ${formatP(comparison.mcnemar.pValue)}, alpha = ${comparison.mcnemar.alpha}.`,
    "",
    "### Per class",
    "",
    "| Class | Support | Precision (prod) | Precision (cand) | Recall (prod) | Recall (cand) | F1 (prod) | F1 (cand) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...comparison.classes.map((name, i) => {
      const p = prod.classes[i];
      const c = cand.classes[i];
      return `| ${escapeCell(name)} | ${p?.support ?? ""} | ${num(p?.precision)} | ${num(c?.precision)} | ${num(p?.recall)} | ${num(c?.recall)} | ${num(p?.f1)} | ${num(c?.f1)} |`;
    }),
    "",
    "### Checks",
    "",
    "| Check | Result | Detail |",
    "| --- | --- | --- |",
    ...comparison.checks.map(
      (check) =>
        `| ${escapeCell(check.name)} | ${check.skipped ? "SKIP" : check.passed ? "OK" : "NG"} | ${escapeCell(check.detail)} |`,
    ),
    "",
  );
  if (prod.ood && cand.ood) {
    lines.push(
      "### Out-of-distribution detection",
      "",
      `In-distribution items: ${cand.ood.inDistribution}; OOD items: ${cand.ood.outOfDistribution}.`,
      "",
      "| Score | AUROC (prod) | AUROC (cand) | FPR@95%TPR (prod) | FPR@95%TPR (cand) |",
      "| --- | ---: | ---: | ---: | ---: |",
      ...(["msp", "energy", "mahalanobis"] as const).map(
        (score) =>
          `| ${score} | ${num(prod.ood?.[score].auroc)} | ${num(cand.ood?.[score].auroc)} | ${num(prod.ood?.[score].fprAt95Tpr)} | ${num(cand.ood?.[score].fprAt95Tpr)} |`,
      ),
      `| ensemble (flag) | ${num(prod.ood.ensemble.auroc)} | ${num(cand.ood.ensemble.auroc)} | TPR ${num(prod.ood.ensemble.tpr)}, FPR ${num(prod.ood.ensemble.fpr)} | TPR ${num(cand.ood.ensemble.tpr)}, FPR ${num(cand.ood.ensemble.fpr)} |`,
      "",
    );
  }
  lines.push(
    "### Confusion matrices",
    "",
    "Rows are true classes, columns predicted classes.",
    "",
    "**Production**",
    "",
    ...confusionTable(comparison.classes, prod),
    "",
    "**Candidate**",
    "",
    ...confusionTable(comparison.classes, cand),
    "",
    "<details><summary>Calibration bins and detection details</summary>",
    "",
    "| Confidence bin | Items (prod) | Accuracy (prod) | Confidence (prod) | Items (cand) | Accuracy (cand) | Confidence (cand) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...prod.calibration.map((bin, i) => {
      const c = cand.calibration[i];
      return `| (${bin.lower.toFixed(3)}, ${bin.upper.toFixed(3)}] | ${bin.count} | ${num(bin.accuracy)} | ${num(bin.confidence)} | ${c?.count ?? ""} | ${num(c?.accuracy)} | ${num(c?.confidence)} |`;
    }),
    "",
  );
  if (prod.detection && cand.detection) {
    lines.push(
      `Detection: ${cand.detection.images} images, ${cand.detection.truths} truth boxes; detections: production ${prod.detection.detections}, candidate ${cand.detection.detections}. mAP@0.5 is single-class AP with all-point interpolation (VOC2010+), greedy matching at IoU >= 0.5.`,
      "",
    );
  }
  lines.push("</details>", "");
  return lines.join("\n");
}

function deltaRow(label: string, d: MetricDelta): string {
  return `| ${label} | ${num(d.production)} | ${num(d.candidate)} | ${signed(d.delta)} | ${signed(d.lower)} to ${signed(d.upper)} |`;
}

function plainRow(label: string, production: number, candidate: number): string {
  return `| ${label} | ${num(production)} | ${num(candidate)} | ${signed(candidate - production)} | |`;
}

function confusionTable(classes: readonly string[], metrics: ModelMetrics): string[] {
  return [
    `| true \\ predicted | ${classes.map(escapeCell).join(" | ")} |`,
    `| --- | ${classes.map(() => "---:").join(" | ")} |`,
    ...metrics.confusion.map((row, i) => `| ${escapeCell(classes[i] ?? "")} | ${row.join(" | ")} |`),
  ];
}

function num(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "n/a" : value.toFixed(4);
}

function signed(value: number): string {
  if (Number.isNaN(value)) return "n/a";
  return value >= 0 ? `+${value.toFixed(4)}` : value.toFixed(4);
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/**
 * The comparison as the JSON metrics file (later stored in the release ledger): keys
 * sorted at every level so the same comparison always gives the same bytes, numbers
 * rounded to 6 decimals, NaN and infinities as null.
 */
export function toJson(comparison: Comparison): string {
  return `${JSON.stringify(normalize(comparison), null, 2)}\n`;
}

function normalize(value: unknown): unknown {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return null;
    const rounded = Math.round(value * 1e6) / 1e6;
    return Object.is(rounded, -0) ? 0 : rounded;
  }
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const entry = (value as Record<string, unknown>)[key];
      if (entry !== undefined) out[key] = normalize(entry);
    }
    return out;
  }
  return value;
}
