import { describe, expect, it } from "vitest";
import { EmfAccumulator, emfNamespace, renderEmf } from "../../src/server/emf.js";

const base = { timestamp: 1_700_000_000_000, service: "astrolens-inference", modelVersion: "2.0.0" };

describe("renderEmf", () => {
  it("declares AnomalyRate, Latency and Tiles with both dimension sets", () => {
    const [document, ...rest] = renderEmf({ ...base, tiles: 8, anomalies: 2, latenciesMs: [12.3456, 40] });
    expect(rest).toEqual([]);
    expect(document).toEqual({
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: "AstroLens/Inference",
            Dimensions: [["Service"], ["Service", "ModelVersion"]],
            Metrics: [
              { Name: "AnomalyRate", Unit: "Percent" },
              { Name: "Latency", Unit: "Milliseconds" },
              { Name: "Tiles", Unit: "Count" },
            ],
          },
        ],
      },
      Service: "astrolens-inference",
      ModelVersion: "2.0.0",
      AnomalyRate: 25,
      Latency: [12.346, 40],
      Tiles: 8,
    });
    expect(emfNamespace).toBe("AstroLens/Inference");
    // Every declared metric and dimension is a root member, as the spec requires.
    const json = JSON.parse(JSON.stringify(document)) as Record<string, unknown>;
    const directive = (document?._aws.CloudWatchMetrics ?? [])[0];
    for (const metric of directive?.Metrics ?? []) expect(json).toHaveProperty(metric.Name);
    for (const dimension of directive?.Dimensions.flat() ?? []) expect(typeof json[dimension]).toBe("string");
  });

  it("reports Tiles 0 and no AnomalyRate or Latency for an idle period", () => {
    expect(renderEmf({ ...base, tiles: 0, anomalies: 0, latenciesMs: [] })).toEqual([
      {
        _aws: {
          Timestamp: base.timestamp,
          CloudWatchMetrics: [
            {
              Namespace: "AstroLens/Inference",
              Dimensions: [["Service"], ["Service", "ModelVersion"]],
              Metrics: [{ Name: "Tiles", Unit: "Count" }],
            },
          ],
        },
        Service: "astrolens-inference",
        ModelVersion: "2.0.0",
        Tiles: 0,
      },
    ]);
  });

  it("splits latencies into documents of at most 100 values, counting tiles once", () => {
    const latenciesMs = Array.from({ length: 250 }, (_, index) => index);
    const documents = renderEmf({ ...base, tiles: 3, anomalies: 3, latenciesMs });
    expect(documents.map((document) => document.Latency?.length)).toEqual([100, 100, 50]);
    expect(documents.map((document) => document.Tiles)).toEqual([3, undefined, undefined]);
    expect(documents[0]?.AnomalyRate).toBe(100);
    expect(documents[1]?._aws.CloudWatchMetrics[0]?.Metrics).toEqual([
      { Name: "Latency", Unit: "Milliseconds" },
    ]);
    expect(documents.flatMap((document) => document.Latency)).toEqual(latenciesMs);
  });
});

describe("EmfAccumulator", () => {
  it("sums a period and starts afresh after take", () => {
    const accumulator = new EmfAccumulator();
    accumulator.recordTiles(4, 1);
    accumulator.recordTiles(6, 0);
    accumulator.recordLatency(10);
    expect(accumulator.take(5, "svc", "1.0.0")).toEqual({
      timestamp: 5,
      service: "svc",
      modelVersion: "1.0.0",
      tiles: 10,
      anomalies: 1,
      latenciesMs: [10],
    });
    expect(accumulator.take(6, "svc", "1.0.0")).toMatchObject({ tiles: 0, anomalies: 0, latenciesMs: [] });
  });

  it("keeps a bounded reservoir of latencies", () => {
    const accumulator = new EmfAccumulator(3, () => 0); // always replaces slot 0
    for (const ms of [1, 2, 3, 4, 5]) accumulator.recordLatency(ms);
    expect(accumulator.take(0, "svc", "v").latenciesMs).toEqual([5, 2, 3]);
  });
});
