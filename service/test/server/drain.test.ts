/**
 * The graceful drain, end to end: the real server in a child process, SIGTERM while
 * requests are in flight.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { rawRequest } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
let workDir: string;
let bundle: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "astrolens-drain-"));
  bundle = join(workDir, "drain-entry.mjs");
  await build({
    entryPoints: [join(here, "fixtures", "drain-entry.ts")],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "silent",
  });
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

interface Service {
  child: ChildProcess;
  port: number;
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.pid) child.kill("SIGKILL");
});

async function startService(env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, [bundle], {
    env: { ...process.env, PORT: "0", ASTROLENS_HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>;
        lines.push(line);
        if (line.msg === "listening") resolve(line.port as number);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf("\n");
      }
    });
    void exited.then((code) => reject(new Error(`the service exited (${code}) before listening: ${stderr}`)));
  });
  return { child, port, lines, exited };
}

async function inFlight(port: number): Promise<number> {
  const response = await rawRequest(port, { path: "/metrics" });
  const match = /^astrolens_in_flight_requests (\d+)$/m.exec(response.body);
  // The scrape itself is in flight too.
  return Number(match?.[1] ?? 0) - 1;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const invocation = (port: number, tiles: number) => {
  const body = JSON.stringify({ tiles });
  return rawRequest(port, {
    method: "POST",
    path: "/invocations",
    headers: { "content-type": "application/json", "content-length": String(body.length) },
    chunks: [body],
  });
};

describe("graceful drain in a child process", () => {
  it("answers every accepted request, refuses new connections, and exits 0 on SIGTERM", async () => {
    const service = await startService({
      ASTROLENS_FAKE_ANALYSER_DELAY_MS: "150",
      // One tile per batch: the requests finish one after another over ~1.2 s.
      ASTROLENS_BATCH_MAX_TILES: "1",
      ASTROLENS_DRAIN_TIMEOUT_MS: "10000",
      ASTROLENS_EMF_INTERVAL_MS: "600000",
    });
    // An idle keep-alive connection must not hold the process open.
    const keepAlive = await fetch(`http://127.0.0.1:${service.port}/ping`);
    expect(keepAlive.status).toBe(200);
    await keepAlive.text();

    const requests = 8;
    const responses = Array.from({ length: requests }, () => invocation(service.port, 1));
    await waitFor(async () => (await inFlight(service.port)) === requests);

    service.child.kill("SIGTERM");
    await waitFor(async () => service.lines.some((line) => line.msg === "draining"));
    const after = await rawRequest(service.port, { path: "/ping" }).then(
      (response) => response.status,
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect(["ECONNREFUSED", 503]).toContain(after);

    const settled = await Promise.all(responses);
    expect(settled.map((response) => response.status)).toEqual(Array(requests).fill(200));
    expect(await service.exited).toBe(0);

    const messages = service.lines.map((line) => line.msg);
    expect(messages).toContain("drained");
    const emf = service.lines.filter((line) => "_aws" in line);
    expect(emf.at(-1)).toMatchObject({ Tiles: requests, AnomalyRate: 0, ModelVersion: "9.9.9-fake" });
    expect(
      service.lines.filter((line) => line.msg === "request" && line.path === "/invocations"),
    ).toHaveLength(requests);
  }, 20_000);

  it("exits 1 when the drain deadline passes", async () => {
    const service = await startService({
      ASTROLENS_FAKE_ANALYSER_DELAY_MS: "5000",
      ASTROLENS_DRAIN_TIMEOUT_MS: "300",
    });
    const response = invocation(service.port, 1).then(
      (answer) => answer.status,
      (error: NodeJS.ErrnoException) => error.code,
    );
    await waitFor(async () => (await inFlight(service.port)) === 1);
    const signalled = Date.now();
    service.child.kill("SIGTERM");
    expect(await service.exited).toBe(1);
    expect(Date.now() - signalled).toBeLessThan(3000);
    expect(await response).not.toBe(200);
    expect(service.lines).toContainEqual(
      expect.objectContaining({
        msg: "drain deadline passed; cutting the remaining connections",
        unanswered: 1,
      }),
    );
  }, 20_000);
});
