/**
 * The service's counters, histograms and gauges, kept in memory and turned into
 * {@link MetricFamily} data for the pure Prometheus renderer.
 */
import type { BatchInfo } from "./batcher.js";
import type { ModelInfo } from "./ports.js";
import type { HistogramSeries, Labels, MetricFamily } from "./prometheus.js";

export const latencyBucketsSeconds = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const;
export const batchDurationBucketsSeconds = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
] as const;

/** Powers of two up to the largest batch, plus the largest batch itself. */
export function batchSizeBuckets(maxBatchSize: number): number[] {
  const buckets: number[] = [];
  for (let size = 1; size < maxBatchSize; size *= 2) buckets.push(size);
  buckets.push(maxBatchSize);
  return buckets;
}

/** One histogram, split by label set. */
export class Histogram {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();

  constructor(readonly upperBounds: readonly number[]) {}

  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let series = this.series.get(key);
    if (series === undefined) {
      series = { labels, counts: this.upperBounds.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    const index = this.upperBounds.findIndex((bound) => value <= bound);
    if (index >= 0) series.counts[index] = (series.counts[index] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }

  snapshot(): HistogramSeries[] {
    return [...this.series.values()]
      .sort((a, b) => labelKey(a.labels).localeCompare(labelKey(b.labels)))
      .map((series) => ({ ...series, counts: [...series.counts] }));
  }
}

/** A counter split by label set. */
export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  snapshot(): Array<{ labels: Labels; value: number }> {
    return [...this.values.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([, entry]) => ({ labels: entry.labels, value: entry.value }));
  }
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
}

/**
 * The fraction of anomalous tiles over a sliding window, kept in `slots` time slots so
 * memory stays constant however busy the service is. The window is exact to one slot.
 */
export class SlidingWindowRate {
  private readonly slotMs: number;
  private readonly ring: Array<{ index: number; tiles: number; anomalies: number }>;

  constructor(
    readonly windowMs: number,
    private readonly slots = 60,
  ) {
    this.slotMs = Math.max(1, Math.ceil(windowMs / slots));
    this.ring = Array.from({ length: slots }, () => ({ index: -1, tiles: 0, anomalies: 0 }));
  }

  record(nowMs: number, tiles: number, anomalies: number): void {
    const index = Math.floor(nowMs / this.slotMs);
    const slot = this.ring[index % this.slots];
    if (slot === undefined) return;
    if (slot.index !== index) {
      slot.index = index;
      slot.tiles = 0;
      slot.anomalies = 0;
    }
    slot.tiles += tiles;
    slot.anomalies += anomalies;
  }

  /** Tiles and anomalies in the window ending at `nowMs`. */
  totals(nowMs: number): { tiles: number; anomalies: number } {
    const current = Math.floor(nowMs / this.slotMs);
    let tiles = 0;
    let anomalies = 0;
    for (const slot of this.ring) {
      if (slot.index > current - this.slots && slot.index <= current) {
        tiles += slot.tiles;
        anomalies += slot.anomalies;
      }
    }
    return { tiles, anomalies };
  }

  /** anomalies / tiles in the window, 0 when the window saw no tiles. */
  rate(nowMs: number): number {
    const { tiles, anomalies } = this.totals(nowMs);
    return tiles === 0 ? 0 : anomalies / tiles;
  }
}

/** Gauges read at scrape time from the server's state. */
export interface ServiceGauges {
  ready: boolean;
  inFlightRequests: number;
  queuedTiles: number;
  model: ModelInfo | undefined;
}

export interface ServiceMetricsOptions {
  anomalyWindowMs: number;
  maxBatchSize: number;
  /** Wall clock in ms (the sliding window's time source). */
  now?: () => number;
}

/** Everything /metrics reports. */
export class ServiceMetrics {
  readonly requests = new Counter();
  readonly requestDuration = new Histogram(latencyBucketsSeconds);
  readonly batchSize: Histogram;
  readonly batchDuration = new Histogram(batchDurationBucketsSeconds);
  readonly batchFailures = new Counter();
  readonly tiles = new Counter();
  readonly anomalies = new Counter();
  readonly anomalyWindow: SlidingWindowRate;
  private readonly now: () => number;

  constructor(options: ServiceMetricsOptions) {
    this.batchSize = new Histogram(batchSizeBuckets(options.maxBatchSize));
    this.anomalyWindow = new SlidingWindowRate(options.anomalyWindowMs);
    this.now = options.now ?? Date.now;
  }

  recordRequest(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.requestDuration.observe(seconds, { route });
  }

  recordBatch(info: BatchInfo): void {
    this.batchSize.observe(info.size);
    this.batchDuration.observe(info.durationMs / 1000);
    if (info.failed) this.batchFailures.inc();
  }

  recordTiles(tiles: number, anomalies: number): void {
    this.tiles.inc({}, tiles);
    this.anomalies.inc({}, anomalies);
    this.anomalyWindow.record(this.now(), tiles, anomalies);
  }

  families(gauges: ServiceGauges): MetricFamily[] {
    const windowSeconds = this.anomalyWindow.windowMs / 1000;
    return [
      {
        type: "counter",
        name: "astrolens_http_requests_total",
        help: "HTTP requests answered, by route and status code.",
        samples: this.requests.snapshot(),
      },
      {
        type: "histogram",
        name: "astrolens_http_request_duration_seconds",
        help: "Time from a request's arrival to its response, by route.",
        upperBounds: this.requestDuration.upperBounds,
        series: this.requestDuration.snapshot(),
      },
      {
        type: "histogram",
        name: "astrolens_batch_size_tiles",
        help: "Tiles per batch handed to the model runtime.",
        upperBounds: this.batchSize.upperBounds,
        series: this.batchSize.snapshot(),
      },
      {
        type: "histogram",
        name: "astrolens_batch_duration_seconds",
        help: "Time the model runtime took for one batch.",
        upperBounds: this.batchDuration.upperBounds,
        series: this.batchDuration.snapshot(),
      },
      {
        type: "counter",
        name: "astrolens_batch_failures_total",
        help: "Batches the model runtime failed.",
        samples: orZero(this.batchFailures.snapshot()),
      },
      {
        type: "counter",
        name: "astrolens_tiles_total",
        help: "Tiles classified.",
        samples: orZero(this.tiles.snapshot()),
      },
      {
        type: "counter",
        name: "astrolens_anomalies_total",
        help: "Tiles the out-of-distribution ensemble flagged as anomalous.",
        samples: orZero(this.anomalies.snapshot()),
      },
      {
        type: "gauge",
        name: "astrolens_anomaly_rate",
        help: `Fraction (0-1) of tiles flagged anomalous over the last ${windowSeconds} s; 0 when no tiles.`,
        samples: [{ labels: {}, value: this.anomalyWindow.rate(this.now()) }],
      },
      {
        type: "gauge",
        name: "astrolens_in_flight_requests",
        help: "Requests accepted and not yet answered.",
        samples: [{ labels: {}, value: gauges.inFlightRequests }],
      },
      {
        type: "gauge",
        name: "astrolens_queued_tiles",
        help: "Tiles waiting for the model runtime.",
        samples: [{ labels: {}, value: gauges.queuedTiles }],
      },
      {
        type: "gauge",
        name: "astrolens_ready",
        help: "1 when the models are loaded and the service is not draining.",
        samples: [{ labels: {}, value: gauges.ready ? 1 : 0 }],
      },
      {
        type: "gauge",
        name: "astrolens_model_info",
        help: "The served model's identity (always 1).",
        samples: gauges.model
          ? [
              {
                labels: {
                  name: gauges.model.name,
                  version: gauges.model.version,
                  manifest_sha256: gauges.model.manifestSha256,
                },
                value: 1,
              },
            ]
          : [],
      },
    ];
  }
}

function orZero(samples: Array<{ labels: Labels; value: number }>): Array<{ labels: Labels; value: number }> {
  return samples.length === 0 ? [{ labels: {}, value: 0 }] : samples;
}
