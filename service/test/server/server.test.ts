import { afterEach, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/server.js";
import { createFakeAnalyser } from "./fixtures/fake-analyser.js";
import { type CapturedLogger, call, invoke, rawRequest, startTestServer } from "./helpers.js";

const model = { name: "astrolens", version: "9.9.9-fake", manifestSha256: "f".repeat(64) };

let current: RunningServer | undefined;
afterEach(async () => {
  await current?.drain("test over");
  current = undefined;
});

async function start(...args: Parameters<typeof startTestServer>) {
  const started = await startTestServer(...args);
  current = started.running;
  return started;
}

function requestLines(logger: CapturedLogger) {
  return logger.lines.filter((line) => line.msg === "request");
}

describe("routes", () => {
  it("GET /ping and /healthz answer 200 with the model's identity", async () => {
    const { running } = await start(createFakeAnalyser());
    for (const path of ["/ping", "/healthz"]) {
      const response = await call(running, path);
      expect(response.status).toBe(200);
      expect(response.json).toEqual({ status: "ok", model });
      expect(response.headers.get("content-type")).toBe("application/json");
    }
    const head = await fetch(`${running.url}/ping`, { method: "HEAD" });
    expect(head.status).toBe(200);
  });

  it("/ping answers 503 while the models load, then 200", async () => {
    let load: (analyser: ReturnType<typeof createFakeAnalyser>) => void = () => {};
    const loading = new Promise<ReturnType<typeof createFakeAnalyser>>((resolve) => {
      load = resolve;
    });
    const { running } = await start(loading);
    expect(running.state).toBe("loading");
    expect(await call(running, "/ping")).toMatchObject({
      status: 503,
      json: { status: "loading", model: null },
    });
    const early = await invoke(running, { tiles: 1 });
    expect(early.status).toBe(503);
    expect(early.json).toEqual({ error: "the models are still loading; retry shortly" });
    load(createFakeAnalyser());
    await expect(running.ready).resolves.toEqual(model);
    expect(await call(running, "/ping")).toMatchObject({ status: 200, json: { status: "ok" } });
  });

  it("/ping answers 503 'failed' when the models cannot load", async () => {
    const { running, logger } = await start(Promise.reject(new Error("manifest.json is not valid JSON")));
    await expect(running.ready).rejects.toThrow("not valid JSON");
    expect(await call(running, "/ping")).toMatchObject({
      status: 503,
      json: { status: "failed", model: null },
    });
    expect(logger.lines).toContainEqual(
      expect.objectContaining({
        level: "error",
        msg: "model load failed",
        error: "manifest.json is not valid JSON",
      }),
    );
  });

  it("POST /invocations answers the InvocationResponse", async () => {
    const { running, logger } = await start(createFakeAnalyser());
    const response = await invoke(running, { tiles: 3, anomalies: 1 }, { "x-amzn-requestid": "req-123" });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe("req-123");
    expect(response.json.model).toEqual(model);
    expect(response.json.image).toEqual({ width: 6, height: 2, format: "json" });
    const tiles = response.json.tiles as Array<Record<string, unknown>>;
    expect(tiles.map((tile) => [tile.x, tile.anomaly])).toEqual([
      [0, true],
      [2, false],
      [4, false],
    ]);
    expect(requestLines(logger).at(-1)).toMatchObject({
      method: "POST",
      path: "/invocations",
      status: 200,
      tiles: 3,
      bytes: JSON.stringify({ tiles: 3, anomalies: 1 }).length,
      request_id: "req-123",
    });
    expect(typeof requestLines(logger).at(-1)?.duration_ms).toBe("number");
  });

  it("answers 404 for unknown paths and 405 with Allow for wrong methods", async () => {
    const { running } = await start(createFakeAnalyser());
    expect(await call(running, "/nope?x=1")).toMatchObject({
      status: 404,
      json: { error: "no route for GET /nope" },
    });
    const wrong = await call(running, "/invocations");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect(wrong.json).toEqual({ error: "method GET is not allowed on /invocations; use POST" });
    const post = await call(running, "/ping", { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("generates a request id when the caller sends none, and takes x-request-id", async () => {
    const { running } = await start(createFakeAnalyser());
    expect((await call(running, "/ping")).headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await call(running, "/ping", { headers: { "x-request-id": "abc" } });
    expect(echoed.headers.get("x-request-id")).toBe("abc");
  });
});

describe("limits and errors", () => {
  it("refuses a missing content type and one the analyser does not list with 415", async () => {
    const { running } = await start(createFakeAnalyser({ contentTypes: ["application/json", "image/png"] }));
    const missing = await rawRequest(running.port, {
      method: "POST",
      path: "/invocations",
      chunks: ["{}"],
      headers: { "content-length": "2" },
    });
    expect(missing.status).toBe(415);
    expect(JSON.parse(missing.body)).toEqual({
      error: "the request needs a Content-Type header naming the image format",
    });
    const unlisted = await invoke(running, "{}", { "content-type": "text/plain; charset=utf-8" });
    expect(unlisted).toMatchObject({
      status: 415,
      json: { error: 'unsupported content type "text/plain"; use one of: application/json, image/png' },
    });
  });

  it("passes the analyser's InputError status and message through", async () => {
    const { running } = await start(createFakeAnalyser());
    expect(await invoke(running, "{}", { "content-type": "image/tiff" })).toEqual(
      expect.objectContaining({ status: 415, json: { error: "unsupported content-type image/tiff" } }),
    );
    const badJson = await invoke(running, "{not json");
    expect(badJson.status).toBe(400);
    expect(String(badJson.json.error)).toMatch(/^the body is not JSON: /);
    expect(await invoke(running, { inputError: 413 })).toEqual(
      expect.objectContaining({ status: 413, json: { error: "the image says no" } }),
    );
    expect(await invoke(running, "")).toMatchObject({
      status: 400,
      json: { error: "the request body is empty; send an image" },
    });
  });

  it("passes the pixel limit to the analyser", async () => {
    const { running } = await start(createFakeAnalyser(), { maxPixels: 40 });
    expect((await invoke(running, { tiles: 10 })).status).toBe(200);
    expect(await invoke(running, { tiles: 11 })).toMatchObject({
      status: 413,
      json: { error: "too many pixels" },
    });
  });

  it("answers 413 by Content-Length before reading the body, without 100 Continue", async () => {
    const { running, logger } = await start(createFakeAnalyser(), { maxBodyBytes: 1024 });
    const body = Buffer.alloc(2048, 0x20);
    const plain = await rawRequest(running.port, {
      method: "POST",
      path: "/invocations",
      headers: { "content-type": "application/json", "content-length": String(body.length) },
      chunks: [body],
    });
    expect(plain.status).toBe(413);
    expect(JSON.parse(plain.body)).toEqual({
      error: "the request body (2048 bytes) is larger than the limit of 1024 bytes",
    });
    expect(plain.headers.connection).toBe("close");

    const expecting = await rawRequest(running.port, {
      method: "POST",
      path: "/invocations",
      headers: {
        "content-type": "application/json",
        "content-length": String(body.length),
        expect: "100-continue",
      },
      chunks: [body],
      waitForContinue: true,
    });
    expect(expecting.status).toBe(413);
    expect(expecting.continued).toBe(false);
    expect(requestLines(logger).map((line) => line.status)).toEqual([413, 413]);
  });

  it("sends 100 Continue for an acceptable upload that asks for it", async () => {
    const { running } = await start(createFakeAnalyser());
    const body = JSON.stringify({ tiles: 2 });
    const response = await rawRequest(running.port, {
      method: "POST",
      path: "/invocations",
      headers: {
        "content-type": "application/json",
        "content-length": String(body.length),
        expect: "100-continue",
      },
      chunks: [body],
      waitForContinue: true,
    });
    expect(response.continued).toBe(true);
    expect(response.status).toBe(200);
  });

  it("answers 413 while streaming a chunked body past the limit", async () => {
    const { running, logger } = await start(createFakeAnalyser(), { maxBodyBytes: 1024 });
    const chunk = Buffer.alloc(400, 0x20);
    const response = await rawRequest(running.port, {
      method: "POST",
      path: "/invocations",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      chunks: [chunk, chunk, chunk, chunk],
      chunkDelayMs: 10,
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body)).toEqual({
      error: "the request body is larger than the limit of 1024 bytes",
    });
    expect(requestLines(logger).at(-1)).toMatchObject({ status: 413, bytes: 1200 });
    // The server is still fine.
    expect((await invoke(running, { tiles: 1 })).status).toBe(200);
  });

  it("answers 500 for an unexpected error and stays up", async () => {
    const { running, logger } = await start(createFakeAnalyser());
    const broken = await invoke(running, { fail: "prepare" }, { "x-request-id": "r-500" });
    expect(broken).toMatchObject({ status: 500, json: { error: "internal error (request id r-500)" } });
    expect(logger.lines).toContainEqual(
      expect.objectContaining({
        level: "error",
        msg: "request failed",
        request_id: "r-500",
        error: "decoder bug: undefined is not a function",
      }),
    );
    const runtime = await invoke(running, { fail: "run", tiles: 2 });
    expect(runtime.status).toBe(500);
    expect((await call(running, "/ping")).status).toBe(200);
    expect((await invoke(running, { tiles: 2 })).status).toBe(200);
  });

  it("answers 503 when the work outlives the request timeout, and 408 for a body that stalls", async () => {
    const { running } = await start(createFakeAnalyser({ delayMs: 1000 }), { requestTimeoutMs: 100 });
    const started = Date.now();
    const slow = await invoke(running, { tiles: 1 });
    expect(slow).toMatchObject({ status: 503, json: { error: "the request did not finish within 100 ms" } });
    expect(Date.now() - started).toBeLessThan(900);
    const stalled = await rawRequest(running.port, {
      method: "POST",
      path: "/invocations",
      headers: { "content-type": "application/json", "content-length": "100" },
      chunks: ["{"],
    });
    expect(stalled.status).toBe(408);
    expect(JSON.parse(stalled.body)).toEqual({ error: "the request body did not arrive in time" });
  });

  it("sheds load with 503 when the tile queue is full", async () => {
    const { running } = await start(createFakeAnalyser({ delayMs: 200 }), {
      maxQueuedTiles: 4,
      batchMaxTiles: 2,
    });
    const first = invoke(running, { tiles: 2 }); // runs
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = invoke(running, { tiles: 4 }); // fills the queue
    await new Promise((resolve) => setTimeout(resolve, 50));
    const third = await invoke(running, { tiles: 1 });
    expect(third.status).toBe(503);
    expect(String(third.json.error)).toMatch(/^the inference queue is full .*; retry later$/);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });
});

describe("micro-batching", () => {
  it("puts the tiles of concurrent requests into one batch", async () => {
    const analyser = createFakeAnalyser();
    // A generous wait, so the three requests meet even on a slow machine.
    const { running } = await start(analyser, { batchMaxWaitMs: 300, batchMaxTiles: 64 });
    const responses = await Promise.all([1, 2, 3].map((tiles) => invoke(running, { tiles })));
    expect(responses.map((response) => (response.json.tiles as unknown[]).length)).toEqual([1, 2, 3]);
    expect(analyser.batches).toEqual([6]);
  });

  it("keeps batches within batchMaxTiles", async () => {
    const analyser = createFakeAnalyser();
    const { running } = await start(analyser, { batchMaxWaitMs: 5, batchMaxTiles: 4 });
    const response = await invoke(running, { tiles: 10 });
    expect((response.json.tiles as unknown[]).length).toBe(10);
    expect(analyser.batches).toEqual([4, 4, 2]);
  });
});

describe("observability", () => {
  it("serves Prometheus text counting requests, tiles and anomalies", async () => {
    const { running } = await start(createFakeAnalyser());
    await invoke(running, { tiles: 4, anomalies: 1 });
    await invoke(running, { tiles: 4, anomalies: 3 });
    await call(running, "/nope");
    await call(running, "/ping");
    const response = await fetch(`${running.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const lines = (await response.text()).split("\n");
    for (const line of [
      'astrolens_http_requests_total{route="/invocations",status="200"} 2',
      'astrolens_http_requests_total{route="unmatched",status="404"} 1',
      'astrolens_http_requests_total{route="/ping",status="200"} 1',
      'astrolens_http_request_duration_seconds_count{route="/invocations"} 2',
      "astrolens_batch_size_tiles_count 2",
      "astrolens_batch_size_tiles_sum 8",
      "astrolens_tiles_total 8",
      "astrolens_anomalies_total 4",
      "astrolens_anomaly_rate 0.5",
      "astrolens_ready 1",
      "astrolens_in_flight_requests 1",
      `astrolens_model_info{name="astrolens",version="9.9.9-fake",manifest_sha256="${"f".repeat(64)}"} 1`,
    ]) {
      expect(lines).toContain(line);
    }
  });

  it("writes EMF documents periodically and on drain", async () => {
    const { running, logger } = await start(createFakeAnalyser(), { emfIntervalMs: 40 });
    await invoke(running, { tiles: 4, anomalies: 4 });
    await new Promise((resolve) => setTimeout(resolve, 120));
    await invoke(running, { tiles: 2 });
    await running.drain("test");
    current = undefined;
    const documents = logger.lines.filter((line) => "_aws" in line);
    expect(documents.length).toBeGreaterThanOrEqual(3);
    const withTiles = documents.filter((document) => (document.Tiles as number) > 0);
    expect(withTiles.map((document) => [document.Tiles, document.AnomalyRate])).toEqual([
      [4, 100],
      [2, 0],
    ]);
    expect(withTiles[0]).toMatchObject({ Service: "astrolens-inference", ModelVersion: "9.9.9-fake" });
    expect(withTiles[0]?.Latency).toHaveLength(1);
    // One more document is written on drain.
    const draining = logger.lines.findIndex((line) => line.msg === "draining");
    expect(logger.lines.slice(draining).some((line) => "_aws" in line)).toBe(true);
  });

  it("logs lifecycle lines", async () => {
    const { running, logger } = await start(createFakeAnalyser());
    await running.ready;
    await running.drain("test");
    current = undefined;
    expect(logger.lines.map((line) => line.msg).filter((msg) => msg !== "request")).toEqual(
      expect.arrayContaining(["listening", "model loaded", "draining", "drained"]),
    );
  });
});

describe("drain (in process)", () => {
  it("finishes in-flight requests, closing their connections, and turns /ping to 503", async () => {
    const { running } = await start(createFakeAnalyser({ delayMs: 150 }));
    const inFlight = invoke(running, { tiles: 1 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const drained = running.drain("test");
    expect(running.state).toBe("draining");
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.headers.get("connection")).toBe("close");
    await expect(drained).resolves.toEqual({ drained: true, unanswered: 0 });
    expect(running.state).toBe("closed");
    await expect(fetch(`${running.url}/ping`)).rejects.toThrow();
    current = undefined;
  });

  it("gives up at the drain deadline", async () => {
    const { running, logger } = await start(createFakeAnalyser({ delayMs: 2000 }), { drainTimeoutMs: 100 });
    const inFlight = invoke(running, { tiles: 1 }).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await expect(running.drain("test")).resolves.toEqual({ drained: false, unanswered: 1 });
    expect(await inFlight).toBeInstanceOf(Error);
    expect(logger.lines).toContainEqual(
      expect.objectContaining({
        level: "error",
        msg: "drain deadline passed; cutting the remaining connections",
      }),
    );
    current = undefined;
  });
});
