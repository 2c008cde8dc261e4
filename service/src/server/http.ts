/** Small node:http helpers: bounded body reading, JSON responses, request ids. */
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";

/** An error that is the response: its status and message go to the client as-is. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The client went away before the request was complete; there is nobody to answer. */
export class ClientGoneError extends Error {
  override name = "ClientGoneError";
}

/**
 * Read the whole body, refusing (413) once more than `limit` bytes arrive, whatever the
 * Content-Length said. Rejects with `signal.reason` when the signal aborts first.
 */
export function readBody(
  request: IncomingMessage,
  limit: number,
  signal: AbortSignal,
  onBytes: (bytes: number) => void = () => {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onError);
      request.off("close", onClose);
      signal.removeEventListener("abort", onAbort);
    };
    const fail = (error: unknown): void => {
      cleanup();
      // Stop reading: the response (with Connection: close) ends the exchange.
      request.pause();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      onBytes(size);
      if (size > limit) {
        fail(new HttpError(413, `the request body is larger than the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void =>
      fail(new ClientGoneError(`reading the request body: ${error.message}`));
    const onClose = (): void => {
      if (!request.complete) fail(new ClientGoneError("the client closed the connection mid-body"));
    };
    const onAbort = (): void => fail(signal.reason);
    if (signal.aborted) {
      fail(signal.reason);
      return;
    }
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("error", onError);
    request.on("close", onClose);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The media type of a Content-Type header: lower case, parameters dropped; "" when absent. */
export function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

const requestIdPattern = /^[\w.:@/+=-]{1,128}$/;

/** The caller's request id (SageMaker's x-amzn-requestid, else x-request-id), or a new one. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  for (const name of ["x-amzn-requestid", "x-request-id"]) {
    const value = headers[name];
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined && requestIdPattern.test(first)) return first;
  }
  return randomUUID();
}

/**
 * Send a JSON response unless one has been sent. Closes the connection when asked or when
 * the request body was not read to the end (so node does not read a huge body only to
 * throw it away).
 */
export function sendJson(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  body: unknown,
  options: { close?: boolean; headers?: Record<string, string> } = {},
): void {
  sendText(request, response, status, JSON.stringify(body), "application/json", options);
}

export function sendText(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  text: string,
  contentType: string,
  options: { close?: boolean; headers?: Record<string, string> } = {},
): void {
  if (response.headersSent || response.writableEnded || response.destroyed) return;
  const payload = Buffer.from(text);
  response.statusCode = status;
  response.setHeader("content-type", contentType);
  response.setHeader("content-length", payload.length);
  response.setHeader("cache-control", "no-store");
  for (const [name, value] of Object.entries(options.headers ?? {})) response.setHeader(name, value);
  if (options.close || hasUnreadBody(request)) response.setHeader("connection", "close");
  response.end(payload);
}

/** Whether the request announced a body that has not been read to its end. */
export function hasUnreadBody(request: IncomingMessage): boolean {
  const length = request.headers["content-length"];
  const announced =
    (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined;
  return announced && !request.readableEnded;
}
