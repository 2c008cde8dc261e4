/**
 * The inference HTTP server: the SageMaker container contract (GET /ping, POST
 * /invocations) plus GET /healthz for the ALB and GET /metrics for Prometheus, on plain
 * node:http. Every request's failure stays in that request: handlers are async and every
 * promise ends in a response or a log line, never in an uncaught exception.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { InvocationResponse, TileOutput } from "../contract.js";
import { BatcherOverloadedError, MicroBatcher } from "./batcher.js";
import { defaultServerConfig, type ServerConfig } from "./config.js";
import { EmfAccumulator, renderEmf } from "./emf.js";
import { ClientGoneError, HttpError, mediaType, readBody, requestIdOf, sendJson, sendText } from "./http.js";
import { createJsonLogger, errorFields, type Logger } from "./logger.js";
import { ServiceMetrics } from "./metrics.js";
import { type Analyser, clientErrorStatus, type ModelInfo } from "./ports.js";
import { prometheusContentType, renderPrometheus } from "./prometheus.js";

export interface StartServerOptions {
  /** The analyser, or a promise of it while the models load (/ping answers 503 meanwhile). */
  analyser: Analyser | Promise<Analyser>;
  /** Settings; anything missing takes {@link defaultServerConfig}. */
  config?: Partial<ServerConfig>;
  logger?: Logger;
  /** Wall clock in ms, for EMF timestamps and the anomaly window. */
  now?: () => number;
}

export type ServerState = "loading" | "ready" | "failed" | "draining" | "closed";

export interface DrainOutcome {
  /** True when every accepted request was answered before the deadline. */
  drained: boolean;
  /** Requests still unanswered when the drain ended. */
  unanswered: number;
}

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  /** http://<host>:<port>, with 127.0.0.1 for a wildcard host. */
  readonly url: string;
  readonly config: ServerConfig;
  readonly metrics: ServiceMetrics;
  readonly state: ServerState;
  /** Resolves with the model once the analyser is loaded; rejects when loading failed. */
  readonly ready: Promise<ModelInfo>;
  /**
   * Stop accepting connections, answer /ping with 503, finish accepted requests, emit the
   * last EMF line. Resolves when every connection is closed or the drain deadline passed
   * (then the remaining connections are cut). Idempotent.
   */
  drain(reason?: string): Promise<DrainOutcome>;
}

type Route = "/ping" | "/healthz" | "/invocations" | "/metrics";
type Handler = (exchange: Exchange) => Promise<void> | void;

/** One request in flight and what its log line will say. */
interface Exchange {
  request: IncomingMessage;
  response: ServerResponse;
  requestId: string;
  expectsContinue: boolean;
  signal: AbortSignal;
  tiles: number;
  bytes: number;
  errorMessage?: string;
}

class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
}

/** Start listening; resolves once the port is bound (the models may still be loading). */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const config: ServerConfig = { ...defaultServerConfig, ...options.config };
  const logger = options.logger ?? createJsonLogger();
  const now = options.now ?? Date.now;
  const metrics = new ServiceMetrics({
    anomalyWindowMs: config.anomalyWindowMs,
    maxBatchSize: config.batchMaxTiles,
    now,
  });
  const emf = new EmfAccumulator();

  let analyser: Analyser | undefined;
  let loadError: unknown;
  let draining = false;
  /** Set when the drain's grace period ends and the listener closes. */
  let closing = false;
  let closed = false;
  let inFlight = 0;

  const batcher = new MicroBatcher<Float32Array, TileOutput>({
    maxBatchSize: config.batchMaxTiles,
    maxWaitMs: config.batchMaxWaitMs,
    maxQueued: config.maxQueuedTiles,
    runBatch: (tiles) => {
      if (analyser === undefined) throw new Error("the models are not loaded");
      return analyser.run(tiles);
    },
    onBatch: (info) => metrics.recordBatch(info),
  });

  const ready = Promise.resolve(options.analyser).then(
    (loaded) => {
      analyser = loaded;
      logger.info("model loaded", { model: loaded.model });
      return loaded.model;
    },
    (error: unknown) => {
      loadError = error;
      logger.error("model load failed", errorFields(error));
      throw error;
    },
  );
  // The caller decides what a failed load means (main exits 1); /ping reports it meanwhile.
  ready.catch(() => {});

  const state = (): ServerState => {
    if (closed) return "closed";
    if (draining) return "draining";
    if (loadError !== undefined) return "failed";
    return analyser === undefined ? "loading" : "ready";
  };

  const ping: Handler = ({ request, response }) => {
    const current = state();
    sendJson(request, response, current === "ready" ? 200 : 503, {
      status: current === "ready" ? "ok" : current,
      model: analyser ? modelIdentity(analyser.model) : null,
    });
  };

  const scrape: Handler = ({ request, response }) => {
    const text = renderPrometheus(
      metrics.families({
        ready: state() === "ready",
        inFlightRequests: inFlight,
        queuedTiles: batcher.queued,
        model: analyser?.model,
      }),
    );
    sendText(request, response, 200, text, prometheusContentType);
  };

  const invoke: Handler = async (exchange) => {
    const { request, response, signal } = exchange;
    const current = analyser;
    if (current === undefined) {
      throw new HttpError(
        503,
        loadError === undefined ? "the models are still loading; retry shortly" : "the models failed to load",
      );
    }
    const contentType = mediaType(request.headers["content-type"]);
    if (contentType === "") {
      throw new HttpError(415, "the request needs a Content-Type header naming the image format");
    }
    if (current.contentTypes !== undefined && !current.contentTypes.includes(contentType)) {
      throw new HttpError(
        415,
        `unsupported content type "${contentType}"; use one of: ${current.contentTypes.join(", ")}`,
      );
    }
    const declared = request.headers["content-length"];
    if (declared !== undefined && Number(declared) > config.maxBodyBytes) {
      throw new HttpError(
        413,
        `the request body (${declared} bytes) is larger than the limit of ${config.maxBodyBytes} bytes`,
      );
    }
    if (exchange.expectsContinue) response.writeContinue();

    const body = await readBody(request, config.maxBodyBytes, signal, (bytes) => {
      exchange.bytes = bytes;
    }).catch((error: unknown) => {
      throw error instanceof RequestTimeoutError
        ? new HttpError(408, "the request body did not arrive in time", { connection: "close" })
        : error;
    });
    if (body.length === 0) throw new HttpError(400, "the request body is empty; send an image");

    const prepared = await untilAborted(
      Promise.resolve().then(() => current.prepare(body, contentType, { maxPixels: config.maxPixels })),
      signal,
    );
    exchange.tiles = prepared.tiles.length;
    // More tiles than the queue ever holds can never succeed: that is the request's size
    // (413), not a busy service (503, worth retrying).
    if (prepared.tiles.length > config.maxQueuedTiles) {
      throw new HttpError(
        413,
        `the image cuts into ${prepared.tiles.length} tiles, more than the ${config.maxQueuedTiles} this service queues; split it into smaller images`,
      );
    }
    // untilAborted: a batch already in the runtime cannot be recalled, but the answer need not wait for it.
    const outputs = await untilAborted(
      batcher.submitAll(
        prepared.tiles.map((tile) => tile.pixels),
        { signal },
      ),
      signal,
    );
    const tiles = prepared.tiles.map((tile, index) => current.assemble(tile, outputs[index] as TileOutput));
    const anomalies = tiles.reduce((count, tile) => count + (tile.anomaly ? 1 : 0), 0);
    metrics.recordTiles(tiles.length, anomalies);
    emf.recordTiles(tiles.length, anomalies);
    const result: InvocationResponse = { model: modelIdentity(current.model), image: prepared.image, tiles };
    sendJson(request, response, 200, result, { close: draining });
  };

  const routes: Record<Route, { method: "GET" | "POST"; handler: Handler }> = {
    "/ping": { method: "GET", handler: ping },
    "/healthz": { method: "GET", handler: ping },
    "/invocations": { method: "POST", handler: invoke },
    "/metrics": { method: "GET", handler: scrape },
  };

  /** The response for an error that escaped a handler. */
  const answerError = (exchange: Exchange, error: unknown): void => {
    const { request, response, requestId } = exchange;
    let status: number;
    let message: string;
    let headers: Record<string, string> = {};
    if (error instanceof HttpError) {
      status = error.status;
      message = error.message;
      headers = error.headers;
    } else if (clientErrorStatus(error) !== undefined) {
      status = clientErrorStatus(error) as number;
      message = (error as Error).message;
    } else if (error instanceof BatcherOverloadedError) {
      status = 503;
      message = `${error.message}; retry later`;
    } else if (error instanceof RequestTimeoutError) {
      status = 503;
      message = error.message;
    } else if (error instanceof ClientGoneError) {
      exchange.errorMessage = error.message;
      response.destroy();
      return;
    } else {
      status = 500;
      message = `internal error (request id ${requestId})`;
      logger.error("request failed", { request_id: requestId, ...errorFields(error) });
    }
    exchange.errorMessage = message;
    sendJson(request, response, status, { error: message }, { close: draining, headers });
  };

  const handle = (request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void => {
    const started = performance.now();
    const requestId = requestIdOf(request.headers);
    const controller = new AbortController();
    const exchange: Exchange = {
      request,
      response,
      requestId,
      expectsContinue,
      signal: controller.signal,
      tiles: 0,
      bytes: 0,
    };
    inFlight += 1;
    response.setHeader("x-request-id", requestId);
    const timer = setTimeout(() => {
      controller.abort(
        new RequestTimeoutError(`the request did not finish within ${config.requestTimeoutMs} ms`),
      );
    }, config.requestTimeoutMs);

    let path = "";
    let route: Route | "unmatched" = "unmatched";
    response.once("close", () => {
      clearTimeout(timer);
      inFlight -= 1;
      // Withdraw this request's tiles that have not reached the runtime yet.
      if (!controller.signal.aborted) controller.abort(new ClientGoneError("the response is closed"));
      const status = response.writableFinished ? response.statusCode : 499;
      const durationMs = performance.now() - started;
      metrics.recordRequest(route, status, durationMs / 1000);
      if (route === "/invocations" && (status < 400 || status >= 500)) emf.recordLatency(durationMs);
      logger.info("request", {
        method: request.method,
        path,
        status,
        duration_ms: Math.round(durationMs * 1000) / 1000,
        tiles: exchange.tiles,
        bytes: exchange.bytes,
        request_id: requestId,
        ...(exchange.errorMessage === undefined ? {} : { error: exchange.errorMessage }),
      });
      // Once the listener is closed, a connection that finished its last response is done.
      if (closing) server.closeIdleConnections();
    });

    try {
      path = new URL(request.url ?? "/", "http://localhost").pathname;
    } catch {
      answerError(exchange, new HttpError(400, "the request target is not a valid URL"));
      return;
    }
    const entry = Object.hasOwn(routes, path) ? routes[path as Route] : undefined;
    if (entry === undefined) {
      answerError(exchange, new HttpError(404, `no route for ${request.method} ${path}`));
      return;
    }
    route = path as Route;
    const method = request.method === "HEAD" && entry.method === "GET" ? "GET" : request.method;
    if (method !== entry.method) {
      const allow = entry.method === "GET" ? "GET, HEAD" : entry.method;
      answerError(
        exchange,
        new HttpError(405, `method ${request.method} is not allowed on ${path}; use ${allow}`, { allow }),
      );
      return;
    }
    Promise.resolve()
      .then(() => entry.handler(exchange))
      .catch((error: unknown) => answerError(exchange, error))
      .catch((error: unknown) => {
        logger.error("answering a failed request failed", { request_id: requestId, ...errorFields(error) });
        response.destroy();
      });
  };

  const server = createServer({
    requestTimeout: config.requestTimeoutMs + 5_000,
    headersTimeout: Math.min(60_000, config.requestTimeoutMs + 5_000),
  });
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.on("request", (request: IncomingMessage, response: ServerResponse) =>
    handle(request, response, false),
  );
  // With this listener node no longer sends "100 Continue" by itself: invoke sends it only
  // once the headers pass, so an oversized upload is refused before its body is sent.
  server.on("checkContinue", (request: IncomingMessage, response: ServerResponse) =>
    handle(request, response, true),
  );

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (error) => logger.error("server error", errorFields(error)));
  const port = (server.address() as AddressInfo).port;
  const urlHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  logger.info("listening", { host: config.host, port, config: { ...config, port } });

  const emitEmf = (): void => {
    const period = emf.take(now(), config.serviceName, analyser?.model.version ?? "unknown");
    for (const document of renderEmf(period)) logger.document(document);
  };
  const emfTimer = config.emfIntervalMs > 0 ? setInterval(emitEmf, config.emfIntervalMs) : undefined;
  emfTimer?.unref();

  let drainPromise: Promise<DrainOutcome> | undefined;
  const drain = (reason = "drain requested"): Promise<DrainOutcome> => {
    drainPromise ??= new Promise<DrainOutcome>((resolve) => {
      draining = true;
      logger.info("draining", { reason, in_flight: inFlight, deadline_ms: config.drainTimeoutMs });
      const finish = (drained: boolean): void => {
        clearTimeout(deadline);
        if (emfTimer !== undefined) clearInterval(emfTimer);
        emitEmf();
        const outcome: DrainOutcome = { drained, unanswered: inFlight };
        closed = true;
        if (drained) logger.info("drained", { ...outcome });
        else logger.error("drain deadline passed; cutting the remaining connections", { ...outcome });
        resolve(outcome);
      };
      const deadline = setTimeout(() => {
        server.closeAllConnections();
        finish(false);
      }, config.drainTimeoutMs);
      // /ping answers 503 from now on, so the balancer stops routing here. Closing the
      // listener at once would reset connections already queued in the kernel, and closing
      // idle connections would cut ones whose request is still arriving: for a grace period
      // keep serving, each response with Connection: close, then stop accepting.
      setTimeout(() => {
        closing = true;
        server.close(() => finish(true));
        server.closeIdleConnections();
      }, config.drainGraceMs);
    });
    return drainPromise;
  };

  return {
    server,
    port,
    url: `http://${urlHost.includes(":") ? `[${urlHost}]` : urlHost}:${port}`,
    config,
    metrics,
    get state() {
      return state();
    },
    ready,
    drain,
  };
}

function modelIdentity(model: ModelInfo): ModelInfo {
  return { name: model.name, version: model.version, manifestSha256: model.manifestSha256 };
}

/** `promise`, or the signal's reason if the signal aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
