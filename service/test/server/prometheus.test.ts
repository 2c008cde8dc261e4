import { describe, expect, it } from "vitest";
import { ServiceMetrics } from "../../src/server/metrics.js";
import { formatValue, type MetricFamily, renderPrometheus } from "../../src/server/prometheus.js";

describe("renderPrometheus", () => {
  it("renders counters and gauges with HELP, TYPE and escaped labels", () => {
    const families: MetricFamily[] = [
      {
        type: "counter",
        name: "x_requests_total",
        help: "Requests.\nSecond line with a \\ backslash.",
        samples: [
          { labels: { route: "/ping", status: "200" }, value: 3 },
          { labels: { route: 'we"ird\\path\n', status: "404" }, value: 1 },
        ],
      },
      { type: "gauge", name: "x_rate", help: "A rate.", samples: [{ labels: {}, value: 0.25 }] },
    ];
    expect(renderPrometheus(families)).toBe(
      [
        "# HELP x_requests_total Requests.\\nSecond line with a \\\\ backslash.",
        "# TYPE x_requests_total counter",
        'x_requests_total{route="/ping",status="200"} 3',
        'x_requests_total{route="we\\"ird\\\\path\\n",status="404"} 1',
        "# HELP x_rate A rate.",
        "# TYPE x_rate gauge",
        "x_rate 0.25",
        "",
      ].join("\n"),
    );
  });

  it("renders histograms with cumulative buckets, +Inf, sum and count", () => {
    const text = renderPrometheus([
      {
        type: "histogram",
        name: "x_seconds",
        help: "Latency.",
        upperBounds: [0.1, 1],
        series: [{ labels: { route: "/invocations" }, counts: [2, 1], sum: 3.5, count: 4 }],
      },
    ]);
    expect(text.split("\n")).toEqual([
      "# HELP x_seconds Latency.",
      "# TYPE x_seconds histogram",
      'x_seconds_bucket{route="/invocations",le="0.1"} 2',
      'x_seconds_bucket{route="/invocations",le="1"} 3',
      'x_seconds_bucket{route="/invocations",le="+Inf"} 4',
      'x_seconds_sum{route="/invocations"} 3.5',
      'x_seconds_count{route="/invocations"} 4',
      "",
    ]);
  });

  it("spells special values the way the format wants", () => {
    expect(
      [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-7, 42].map(formatValue),
    ).toEqual(["NaN", "+Inf", "-Inf", "1e-7", "42"]);
    expect(renderPrometheus([])).toBe("");
  });

  it("renders the service's metrics as parsable exposition text", () => {
    let now = 1_000_000;
    const metrics = new ServiceMetrics({ anomalyWindowMs: 60_000, maxBatchSize: 64, now: () => now });
    metrics.recordRequest("/invocations", 200, 0.03);
    metrics.recordRequest("/invocations", 200, 2);
    metrics.recordRequest("/ping", 200, 0.001);
    metrics.recordBatch({ size: 5, waitedMs: 2, durationMs: 4, failed: false });
    metrics.recordBatch({ size: 64, waitedMs: 0, durationMs: 20, failed: true });
    metrics.recordTiles(8, 2);
    now += 1000;
    const text = renderPrometheus(
      metrics.families({
        ready: true,
        inFlightRequests: 2,
        queuedTiles: 7,
        model: { name: "astrolens", version: "1.0.0", manifestSha256: "ab12" },
      }),
    );
    const lines = text.trimEnd().split("\n");
    for (const line of [
      'astrolens_http_requests_total{route="/invocations",status="200"} 2',
      'astrolens_http_requests_total{route="/ping",status="200"} 1',
      'astrolens_http_request_duration_seconds_bucket{route="/invocations",le="0.025"} 0',
      'astrolens_http_request_duration_seconds_bucket{route="/invocations",le="0.05"} 1',
      'astrolens_http_request_duration_seconds_bucket{route="/invocations",le="2.5"} 2',
      'astrolens_http_request_duration_seconds_bucket{route="/invocations",le="+Inf"} 2',
      'astrolens_http_request_duration_seconds_sum{route="/invocations"} 2.03',
      'astrolens_batch_size_tiles_bucket{le="4"} 0',
      'astrolens_batch_size_tiles_bucket{le="8"} 1',
      'astrolens_batch_size_tiles_bucket{le="64"} 2',
      "astrolens_batch_size_tiles_sum 69",
      "astrolens_batch_failures_total 1",
      "astrolens_tiles_total 8",
      "astrolens_anomalies_total 2",
      "astrolens_anomaly_rate 0.25",
      "astrolens_in_flight_requests 2",
      "astrolens_queued_tiles 7",
      "astrolens_ready 1",
      'astrolens_model_info{name="astrolens",version="1.0.0",manifest_sha256="ab12"} 1',
      "# TYPE astrolens_anomaly_rate gauge",
      "# TYPE astrolens_http_request_duration_seconds histogram",
    ]) {
      expect(lines).toContain(line);
    }
    // Every non-comment line is `name{labels} value`.
    const sample =
      /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$/;
    for (const line of lines.filter((entry) => !entry.startsWith("#"))) expect(line).toMatch(sample);
  });

  it("reports zeros before any traffic and no model_info sample before the model loads", () => {
    const metrics = new ServiceMetrics({ anomalyWindowMs: 60_000, maxBatchSize: 48 });
    const text = renderPrometheus(
      metrics.families({ ready: false, inFlightRequests: 0, queuedTiles: 0, model: undefined }),
    );
    expect(text).toContain("\nastrolens_tiles_total 0\n");
    expect(text).toContain("\nastrolens_anomaly_rate 0\n");
    expect(text).toContain("\nastrolens_ready 0\n");
    expect(text).not.toContain("astrolens_model_info{");
    expect(text).toContain(
      "# TYPE astrolens_batch_size_tiles histogram\n# HELP astrolens_batch_duration_seconds",
    );
  });
});
