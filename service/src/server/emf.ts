/**
 * CloudWatch embedded metric format (EMF): JSON log lines that CloudWatch Logs turns into
 * metrics, so an alarm on AnomalyRate can catch a model that suddenly flags everything.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */

export const emfNamespace = "AstroLens/Inference";
/** EMF accepts at most 100 values in one metric's array. */
export const emfMaxValuesPerMetric = 100;

/** What happened in one reporting period. */
export interface EmfPeriod {
  /** End of the period, ms since the epoch. */
  timestamp: number;
  service: string;
  modelVersion: string;
  tiles: number;
  anomalies: number;
  /** Invocation latencies in ms (possibly a sample of them). */
  latenciesMs: readonly number[];
}

type EmfUnit = "Percent" | "Milliseconds" | "Count";

export interface EmfDocument {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: EmfUnit }>;
    }>;
  };
  Service: string;
  ModelVersion: string;
  AnomalyRate?: number;
  Latency?: number[];
  Tiles?: number;
}

/**
 * The EMF documents for one period. The first carries Tiles (always, so a silent service
 * shows as 0 rather than missing data), AnomalyRate in percent (only when there were
 * tiles: 0/0 is not a rate) and up to 100 latencies; further documents carry only the
 * remaining latencies in chunks of 100, so no count is reported twice.
 */
export function renderEmf(period: EmfPeriod): EmfDocument[] {
  const chunks: number[][] = [];
  for (let start = 0; start < period.latenciesMs.length; start += emfMaxValuesPerMetric) {
    chunks.push(period.latenciesMs.slice(start, start + emfMaxValuesPerMetric).map(roundMs));
  }
  const documents: EmfDocument[] = [];
  const first = document(period, [
    ...(period.tiles > 0 ? [{ Name: "AnomalyRate", Unit: "Percent" as const }] : []),
    ...(chunks[0] ? [{ Name: "Latency", Unit: "Milliseconds" as const }] : []),
    { Name: "Tiles", Unit: "Count" },
  ]);
  if (period.tiles > 0) first.AnomalyRate = round((100 * period.anomalies) / period.tiles, 4);
  if (chunks[0]) first.Latency = chunks[0];
  first.Tiles = period.tiles;
  documents.push(first);
  for (const chunk of chunks.slice(1)) {
    const more = document(period, [{ Name: "Latency", Unit: "Milliseconds" }]);
    more.Latency = chunk;
    documents.push(more);
  }
  return documents;
}

function document(period: EmfPeriod, metrics: Array<{ Name: string; Unit: EmfUnit }>): EmfDocument {
  return {
    _aws: {
      Timestamp: period.timestamp,
      CloudWatchMetrics: [
        { Namespace: emfNamespace, Dimensions: [["Service"], ["Service", "ModelVersion"]], Metrics: metrics },
      ],
    },
    Service: period.service,
    ModelVersion: period.modelVersion,
  };
}

function roundMs(ms: number): number {
  return round(ms, 3);
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * Collects one period's numbers. Latencies beyond `maxLatencySamples` are reservoir-sampled,
 * so a busy minute costs at most `maxLatencySamples / 100` log lines and the percentiles
 * stay representative.
 */
export class EmfAccumulator {
  private tiles = 0;
  private anomalies = 0;
  private latencies: number[] = [];
  private seen = 0;

  constructor(
    private readonly maxLatencySamples = 1000,
    private readonly random: () => number = Math.random,
  ) {}

  recordTiles(tiles: number, anomalies: number): void {
    this.tiles += tiles;
    this.anomalies += anomalies;
  }

  recordLatency(ms: number): void {
    this.seen += 1;
    if (this.latencies.length < this.maxLatencySamples) {
      this.latencies.push(ms);
      return;
    }
    const slot = Math.floor(this.random() * this.seen);
    if (slot < this.maxLatencySamples) this.latencies[slot] = ms;
  }

  /** The period so far, and a fresh start for the next one. */
  take(timestamp: number, service: string, modelVersion: string): EmfPeriod {
    const period: EmfPeriod = {
      timestamp,
      service,
      modelVersion,
      tiles: this.tiles,
      anomalies: this.anomalies,
      latenciesMs: this.latencies,
    };
    this.tiles = 0;
    this.anomalies = 0;
    this.latencies = [];
    this.seen = 0;
    return period;
  }
}
