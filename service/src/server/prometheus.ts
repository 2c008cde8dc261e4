/**
 * The Prometheus text exposition format (version 0.0.4), rendered from plain data by a
 * pure function so the exact output is easy to test.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface HistogramSeries {
  labels: Labels;
  /** Observations per bucket, NOT cumulative: counts[i] for upperBounds[i]; the +Inf overflow is count - sum(counts). */
  counts: readonly number[];
  sum: number;
  count: number;
}

export type MetricFamily =
  | { type: "counter" | "gauge"; name: string; help: string; samples: readonly Sample[] }
  | {
      type: "histogram";
      name: string;
      help: string;
      /** Ascending finite upper bounds; +Inf is implied. */
      upperBounds: readonly number[];
      series: readonly HistogramSeries[];
    };

export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

/** Render metric families in the text format, one family after another, ending in a newline. */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type === "histogram") {
      for (const series of family.series) {
        let cumulative = 0;
        family.upperBounds.forEach((bound, index) => {
          cumulative += series.counts[index] ?? 0;
          lines.push(
            sampleLine(`${family.name}_bucket`, { ...series.labels, le: formatValue(bound) }, cumulative),
          );
        });
        lines.push(sampleLine(`${family.name}_bucket`, { ...series.labels, le: "+Inf" }, series.count));
        lines.push(sampleLine(`${family.name}_sum`, series.labels, series.sum));
        lines.push(sampleLine(`${family.name}_count`, series.labels, series.count));
      }
    } else {
      for (const sample of family.samples) lines.push(sampleLine(family.name, sample.labels, sample.value));
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** A number as the text format spells it: +Inf, -Inf, NaN, or the shortest round-trip decimal. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function sampleLine(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([key, raw]) => `${key}="${escapeLabelValue(raw)}"`);
  return `${name}${pairs.length === 0 ? "" : `{${pairs.join(",")}}`} ${formatValue(value)}`;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}
