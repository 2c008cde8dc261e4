/** Test helpers: a server on a free port with captured logs, and a raw HTTP client. */
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type { ServerConfig } from "../../src/server/config.js";
import type { Logger } from "../../src/server/logger.js";
import type { Analyser } from "../../src/server/ports.js";
import { type RunningServer, startServer } from "../../src/server/server.js";

export interface CapturedLogger extends Logger {
  /** Every line written, parsed. */
  readonly lines: Array<Record<string, unknown>>;
}

export function captureLogger(): CapturedLogger {
  const lines: Array<Record<string, unknown>> = [];
  const push =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      lines.push({ level, msg, ...fields });
    };
  return {
    lines,
    info: push("info"),
    warn: push("warn"),
    error: push("error"),
    document: (document) => lines.push({ ...(document as Record<string, unknown>) }),
  };
}

export async function startTestServer(
  analyser: Analyser | Promise<Analyser>,
  config: Partial<ServerConfig> = {},
): Promise<{ running: RunningServer; logger: CapturedLogger }> {
  const logger = captureLogger();
  const running = await startServer({
    analyser,
    logger,
    config: { port: 0, host: "127.0.0.1", emfIntervalMs: 0, batchMaxWaitMs: 0, ...config },
  });
  return { running, logger };
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Whether the server sent "100 Continue". */
  continued: boolean;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  /** Written one after another; `chunkDelayMs` apart. Omitted: no body. */
  chunks?: Array<string | Buffer>;
  chunkDelayMs?: number;
  /** Wait for "100 Continue" before sending the body. */
  waitForContinue?: boolean;
}

/** One request over a fresh connection with node:http, tolerant of the server closing early. */
export function rawRequest(port: number, options: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const request = httpRequest({
      host: "127.0.0.1",
      port,
      method: options.method ?? "GET",
      path: options.path,
      headers: { connection: "close", ...options.headers },
      agent: false,
    });
    request.on("continue", () => {
      continued = true;
      void writeBody();
    });
    request.on("response", (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        body += chunk;
      });
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body, continued }),
      );
      response.on("error", reject);
    });
    // Writing a body the server refused may fail with EPIPE/ECONNRESET; the response decides.
    request.on("error", (error) => {
      setTimeout(() => reject(error), 50);
    });
    let written = false;
    const writeBody = async (): Promise<void> => {
      if (written) return;
      written = true;
      for (const chunk of options.chunks ?? []) {
        if (request.destroyed) return;
        request.write(chunk);
        if (options.chunkDelayMs) await new Promise((resume) => setTimeout(resume, options.chunkDelayMs));
      }
      request.end();
    };
    if (options.waitForContinue) {
      request.flushHeaders();
      // A server that refuses sends its answer instead of 100 Continue; then never send the body.
      request.once("response", () => {
        written = true;
      });
    } else {
      void writeBody();
    }
  });
}

/** fetch + parsed JSON. */
export async function call(
  running: RunningServer,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const response = await fetch(`${running.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : {} };
}

export function invoke(running: RunningServer, body: unknown, headers: Record<string, string> = {}) {
  return call(running, "/invocations", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
