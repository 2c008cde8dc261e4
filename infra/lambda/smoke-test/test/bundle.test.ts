/**
 * The bundled handler (dist/index.mjs, what Lambda runs), each call in a fresh `node` as a
 * Lambda execution environment would be, against the real inference service
 * (`node service/serve.js`, model v2): as the ECS hook and invoked directly, by URL and by
 * SageMaker endpoint name. The SageMaker path goes through the real SDK to a small server
 * that speaks InvokeEndpoint's HTTP API and forwards to the real service; a second small
 * server answers the wrong shape.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SmokeHookResponse, SmokeVerdict } from "../src/types.js";
import { awsHookResponseSchema, contractV2, MANIFEST_V2_TEXT, REPO_DIR } from "./helpers.js";

const LAMBDA_DIR = join(REPO_DIR, "infra/lambda/smoke-test");
const BUNDLE = join(LAMBDA_DIR, "dist/index.mjs");
const SERVICE_BUNDLE = join(REPO_DIR, "service/dist/server.js");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** A stale bundle would test old code: refuse, and say how to fix it. */
function assertFresh(bundle: string, sources: string[]): void {
  let built = 0;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {}
  const newest = Math.max(...sources.map(newestMtime));
  if (built < newest) {
    throw new Error(
      `${bundle} is missing or older than its sources (${sources.join(", ")}); run \`npm run build\``,
    );
  }
}

let service: ChildProcess | undefined;
let serviceUrl = "";
const servers: Server[] = [];

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function readAll(request: IncomingMessage): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

beforeAll(async () => {
  assertFresh(BUNDLE, [join(LAMBDA_DIR, "src"), join(REPO_DIR, "service/src")]);
  assertFresh(SERVICE_BUNDLE, [join(REPO_DIR, "service/src")]);
  const child = spawn(process.execPath, [join(REPO_DIR, "service/serve.js")], {
    cwd: REPO_DIR,
    env: {
      ...process.env,
      ASTROLENS_MODEL_DIR: join(REPO_DIR, "service/models/v2"),
      PORT: "0",
      ASTROLENS_HOST: "127.0.0.1",
      ASTROLENS_EMF_INTERVAL_MS: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  service = child;
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = JSON.parse(buffered.slice(0, nl)) as { msg?: string; port?: number };
        buffered = buffered.slice(nl + 1);
        if (line.msg === "listening" && line.port !== undefined) resolve(line.port);
      }
    });
    child.once("exit", (code) => reject(new Error(`serve.js exited (${code}) before listening: ${stderr}`)));
  });
  serviceUrl = `http://127.0.0.1:${port}`;
  for (let ready = false; !ready; ) {
    ready = (await fetch(`${serviceUrl}/ping`).catch(() => undefined))?.status === 200;
    if (!ready) await new Promise((resume) => setTimeout(resume, 50));
  }
}, 60_000);

afterAll(async () => {
  for (const server of servers) server.close();
  if (service && service.exitCode === null) {
    const exited = new Promise((resolve) => service?.once("exit", resolve));
    service.kill("SIGTERM");
    await exited;
  }
});

/** One Lambda invocation: a fresh node imports the bundle and calls `handler(event)`. */
async function invokeBundle(
  event: unknown,
  env: Record<string, string>,
): Promise<{ result: unknown; logs: Array<Record<string, unknown>> }> {
  // The result goes to fd 3, so stdout holds only what the handler logs (what CloudWatch gets).
  const runner = `
    import { writeSync } from "node:fs";
    const { handler } = await import(${JSON.stringify(new URL(`file://${BUNDLE}`).href)});
    const result = await handler(JSON.parse(process.argv[1]), {});
    writeSync(3, JSON.stringify(result));`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", runner, JSON.stringify(event)], {
    // A clean environment, as Lambda's: nothing from this machine's AWS settings leaks in.
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let result = "";
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  (child.stdio[3] as NodeJS.ReadableStream).on("data", (c: Buffer) => {
    result += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  if (code !== 0 || result === "") throw new Error(`the bundled handler exited ${code}: ${stderr}`);
  const logs = stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { result: JSON.parse(result), logs };
}

const hookEvent = (hookDetails?: unknown) => ({
  executionId: "2b8f0c9e-5c1a-4e8e-9f3d-6a7b8c9d0e1f",
  lifecycleStage: "POST_TEST_TRAFFIC_SHIFT",
  resourceArn: "arn:aws:ecs:eu-west-1:123456789012:service-deployment/astrolens/inference/7Qh2mZ",
  executionDetails: {
    serviceArn: "arn:aws:ecs:eu-west-1:123456789012:service/astrolens/inference",
    targetServiceRevisionArn: "arn:aws:ecs:eu-west-1:123456789012:service-revision/astrolens/inference/42",
    testTrafficWeights: {},
    productionTrafficWeights: {},
  },
  ...(hookDetails === undefined ? {} : { hookDetails }),
});

const CHECKS = [
  "ping",
  "invoke point-source.fits",
  "invoke extended-and-streak.png",
  "invoke scale.fits",
  "total latency",
];

describe("the bundled handler against the real service", () => {
  it("as the ECS hook: SUCCEEDED, AWS's response shape, the verdict logged as one JSON line", async () => {
    const { result, logs } = await invokeBundle(hookEvent({ contract: contractV2 }), {
      SMOKE_TARGET_URL: serviceUrl,
    });
    expect(awsHookResponseSchema.safeParse(result).error).toBeUndefined();
    const response = result as SmokeHookResponse;
    expect(response).toEqual({
      hookStatus: "SUCCEEDED",
      hookDetails: {
        ok: true,
        summary: expect.stringMatching(
          /^smoke test passed: 5 checks against http:\/\/127\.0\.0\.1:\d+\/ \(model 2\.0\.0\)/,
        ),
        target: `${serviceUrl}/`,
        modelVersion: "2.0.0",
        failedChecks: [],
      },
    });
    expect(logs).toHaveLength(1);
    const verdict = logs[0]?.verdict as SmokeVerdict;
    expect(logs[0]).toMatchObject({ level: "info", mode: "hook", lifecycleStage: "POST_TEST_TRAFFIC_SHIFT" });
    expect(verdict.checks.map((c) => [c.name, c.ok])).toEqual(CHECKS.map((name) => [name, true]));
    expect(verdict.checks[1]?.detail).toMatch(/^200 in \d+ ms: 1 tile \(point_source\), \d+ detections?$/);
  });

  it("invoked directly by URL with the manifest text: ok, the same checks", async () => {
    const { result } = await invokeBundle(
      {
        target: { url: serviceUrl },
        manifest: MANIFEST_V2_TEXT,
        latencyBudgetMs: { perRequest: 5_000, total: 20_000 },
      },
      {},
    );
    const verdict = result as SmokeVerdict;
    expect(verdict).toMatchObject({ ok: true, target: `${serviceUrl}/`, modelVersion: "2.0.0" });
    expect(verdict.checks.map((c) => c.name)).toEqual(CHECKS);
    expect(verdict.checks.at(-1)?.detail).toMatch(/ms for 4 requests, within the total budget of 20000 ms$/);
  });

  it("invoked directly by SageMaker endpoint name, through the SDK and AWS_ENDPOINT_URL", async () => {
    const seen: Array<{ path: string; variant: unknown; signed: boolean; contentType: unknown }> = [];
    // InvokeEndpoint's REST shape: POST /endpoints/{name}/invocations; a container error is a
    // 424 ModelError carrying the original status and body.
    const runtime = createServer(async (request, response) => {
      const body = await readAll(request);
      seen.push({
        path: request.url ?? "",
        variant: request.headers["x-amzn-sagemaker-target-variant"],
        signed: String(request.headers.authorization).startsWith("AWS4-HMAC-SHA256 "),
        contentType: request.headers["content-type"],
      });
      const upstream = await fetch(`${serviceUrl}/invocations`, {
        method: "POST",
        headers: { "content-type": String(request.headers["content-type"]) },
        body,
      });
      const text = await upstream.text();
      if (upstream.status === 200 && request.url?.startsWith("/endpoints/astrolens-staging/")) {
        response.writeHead(200, {
          "content-type": upstream.headers.get("content-type") ?? "",
          "x-amzn-invoked-production-variant": "green",
        });
        response.end(text);
        return;
      }
      response.writeHead(424, { "content-type": "application/json", "x-amzn-errortype": "ModelError:" });
      response.end(
        JSON.stringify({
          OriginalStatusCode: 500,
          OriginalMessage: '{"error":"internal error"}',
          Message: 'Received server error (500) from primary with message "internal error".',
        }),
      );
    });
    const env = {
      AWS_ENDPOINT_URL: await listen(runtime),
      AWS_REGION: "eu-west-1",
      AWS_ACCESS_KEY_ID: "AKIDLOCALTEST",
      AWS_SECRET_ACCESS_KEY: "local-test-secret",
      AWS_EC2_METADATA_DISABLED: "true",
    };

    const { result } = await invokeBundle(
      { target: { endpointName: "astrolens-staging", targetVariant: "green" }, contract: contractV2 },
      env,
    );
    const verdict = result as SmokeVerdict;
    expect(verdict).toMatchObject({
      ok: true,
      target: "sagemaker:astrolens-staging/green",
      modelVersion: "2.0.0",
    });
    expect(verdict.checks.map((c) => c.name)).toEqual(CHECKS);
    expect(verdict.checks[0]).toMatchObject({ skipped: true, ok: true });
    expect(seen).toEqual([
      {
        path: "/endpoints/astrolens-staging/invocations",
        variant: "green",
        signed: true,
        contentType: "application/fits",
      },
      {
        path: "/endpoints/astrolens-staging/invocations",
        variant: "green",
        signed: true,
        contentType: "image/png",
      },
      {
        path: "/endpoints/astrolens-staging/invocations",
        variant: "green",
        signed: true,
        contentType: "application/fits",
      },
    ]);

    const failing = (
      await invokeBundle({ target: { endpointName: "astrolens-broken" }, contract: contractV2 }, env)
    ).result as SmokeVerdict;
    expect(failing.ok).toBe(false);
    expect(failing.summary).toBe(
      'smoke test failed at "invoke point-source.fits": answered HTTP 500, expected 200: {"error":"internal error"} (3 of 5 checks failed)',
    );
  });

  it("answers FAILED, naming the wrong field, against a green side that answers the wrong shape", async () => {
    // The real service's answers, with each tile's `ood` renamed: plausible, and wrong.
    const wrongShape = createServer(async (request, response) => {
      const body = await readAll(request);
      const upstream = await fetch(`${serviceUrl}${request.url}`, {
        method: request.method,
        headers: { "content-type": String(request.headers["content-type"] ?? "") },
        ...(request.method === "POST" ? { body } : {}),
      });
      const json = (await upstream.json()) as { tiles?: Array<Record<string, unknown>> };
      for (const tile of json.tiles ?? []) {
        tile.oodScores = tile.ood;
        delete tile.ood;
      }
      response.writeHead(upstream.status, { "content-type": "application/json" });
      response.end(JSON.stringify(json));
    });
    const url = await listen(wrongShape);
    const { result, logs } = await invokeBundle(
      hookEvent({ targetUrl: url, manifest: MANIFEST_V2_TEXT }),
      {},
    );
    expect(awsHookResponseSchema.safeParse(result).error).toBeUndefined();
    const response = result as SmokeHookResponse;
    expect(response.hookStatus).toBe("FAILED");
    expect(response.hookDetails.summary).toMatch(
      /^smoke test failed at "invoke point-source\.fits": tiles\[0\]\.ood: .* \(3 of 5 checks failed\)$/,
    );
    expect(response.hookDetails.failedChecks).toEqual(CHECKS.slice(1, 4));
    expect(logs[0]).toMatchObject({ level: "error", verdict: { ok: false } });
  });

  it("answers FAILED with the reason when green is not there at all", async () => {
    const closed = createServer();
    const url = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const { result } = await invokeBundle(hookEvent({ contract: contractV2 }), { SMOKE_TARGET_URL: url });
    const response = result as SmokeHookResponse;
    expect(response.hookStatus).toBe("FAILED");
    expect(response.hookDetails.summary).toMatch(
      /^smoke test failed at "ping": no answer: fetch failed: connect ECONNREFUSED/,
    );
  });

  it("answers FAILED, saying how to fix it, when no contract was given", async () => {
    const { result } = await invokeBundle(hookEvent(), { SMOKE_TARGET_URL: serviceUrl });
    expect((result as SmokeHookResponse).hookDetails.summary).toMatch(
      /^smoke test failed at "configuration": no expected model contract: pass hookDetails\.contract/,
    );
  });
});
