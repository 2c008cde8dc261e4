/**
 * The runner over small typed fake targets and the two real target adapters: the HTTP one
 * against fetch stand-ins, the SageMaker one against a mocked SDK client (asserting the
 * exact InvokeEndpoint calls).
 */
import { InvokeEndpointCommand, ModelError, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import { knownImages } from "../src/images.js";
import { runSmokeTest } from "../src/run.js";
import { httpTarget, type Reply, type SmokeTarget, sageMakerTarget } from "../src/targets.js";
import { budget, capturedPing, capturedResponse, contractV2 } from "./helpers.js";

const json = (body: unknown, status = 200): Reply => ({
  status,
  contentType: "application/json",
  body: JSON.stringify(body),
});

/** Answers as the real v2 service did, through `answer` when given; records what it was sent. */
function fakeTarget(answer?: (name: string | "ping") => Promise<Reply>): SmokeTarget & { sent: string[] } {
  const sent: string[] = [];
  const nameOf = (bytes: Uint8Array) =>
    knownImages.find((i) => Buffer.compare(i.bytes, bytes) === 0)?.name ?? "?";
  return {
    label: "fake://green/",
    sent,
    ping: async () => {
      sent.push("ping");
      return answer ? answer("ping") : json(capturedPing());
    },
    invoke: async (body) => {
      const name = nameOf(body);
      sent.push(name);
      return answer ? answer(name) : json(capturedResponse(name));
    },
  };
}

describe("runSmokeTest", () => {
  it("passes the real service's answers, with a check per request and the total", async () => {
    const target = fakeTarget();
    const verdict = await runSmokeTest({ target, contract: contractV2, budget });
    expect(target.sent).toEqual(["ping", "point-source.fits", "extended-and-streak.png", "scale.fits"]);
    expect(verdict).toMatchObject({ ok: true, target: "fake://green/", modelVersion: "2.0.0" });
    expect(verdict.checks.map((c) => [c.name, c.ok])).toEqual([
      ["ping", true],
      ["invoke point-source.fits", true],
      ["invoke extended-and-streak.png", true],
      ["invoke scale.fits", true],
      ["total latency", true],
    ]);
    expect(verdict.summary).toMatch(
      /^smoke test passed: 5 checks against fake:\/\/green\/ \(model 2\.0\.0\) in \d+ ms$/,
    );
  });

  it("reports the version the target serves, even when it is the wrong one", async () => {
    const verdict = await runSmokeTest({
      target: fakeTarget(async (name) => {
        const body = name === "ping" ? capturedPing() : capturedResponse(name);
        body.model.version = "1.0.0";
        return json(body);
      }),
      contract: contractV2,
      budget,
    });
    expect(verdict).toMatchObject({ ok: false, modelVersion: "1.0.0" });
    expect(verdict.summary).toMatch(
      /^smoke test failed at "ping": model\.version: is "1\.0\.0", expected "2\.0\.0"/,
    );
  });

  it("stops sending once the total budget is spent, and fails the rest (fake clock)", async () => {
    let clock = 0;
    const slow = fakeTarget(async (name) => {
      clock += 4_000;
      return json(name === "ping" ? capturedPing() : capturedResponse(name));
    });
    const verdict = await runSmokeTest({
      target: slow,
      contract: contractV2,
      budget: { perRequest: 5_000, total: 10_000 },
      now: () => clock,
    });
    // ping 0-4 s, first image 4-8 s, second 8-12 s (started with 2 s left), third never sent.
    expect(slow.sent).toEqual(["ping", "point-source.fits", "extended-and-streak.png"]);
    expect(verdict.checks.map((c) => [c.name, c.ok, c.detail])).toEqual([
      ["ping", true, expect.stringMatching(/^200 in 4000 ms/)],
      ["invoke point-source.fits", true, expect.stringMatching(/^200 in 4000 ms/)],
      ["invoke extended-and-streak.png", true, expect.stringMatching(/^200 in 4000 ms/)],
      ["invoke scale.fits", false, "not sent: the total latency budget of 10000 ms was spent"],
      ["total latency", false, "12000 ms for 3 requests, over the total budget of 10000 ms"],
    ]);
    expect(verdict.summary).toBe(
      'smoke test failed at "invoke scale.fits": not sent: the total latency budget of 10000 ms was spent (2 of 5 checks failed)',
    );
  });

  it("cuts off a target that never answers when the total budget runs out", async () => {
    const hung: SmokeTarget = {
      label: "hung://",
      ping: (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason), { once: true }),
        ),
      invoke: () => Promise.reject(new Error("unreachable")),
    };
    const started = performance.now();
    const verdict = await runSmokeTest({
      target: hung,
      contract: contractV2,
      budget: { perRequest: 100, total: 150 },
    });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(verdict.checks[0]?.detail).toMatch(
      /^no answer: none within 1\d\d ms, when the total latency budget of 150 ms ran out$/,
    );
    expect(verdict.checks[1]?.detail).toBe("not sent: the total latency budget of 150 ms was spent");
  });

  it("skips /ping for a target without one, and says why", async () => {
    const { ping: _none, ...noPing } = fakeTarget();
    const verdict = await runSmokeTest({
      target: { ...noPing, pingSkipped: "no /ping here" },
      contract: contractV2,
      budget,
    });
    expect(verdict.checks[0]).toEqual({
      name: "ping",
      ok: true,
      skipped: true,
      detail: "skipped: no /ping here",
      ms: 0,
    });
    expect(verdict.ok).toBe(true);
  });
});

describe("httpTarget", () => {
  it("resolves /ping and /invocations under the base URL's path and reports any status", async () => {
    const calls: Array<[string, RequestInit | undefined]> = [];
    const fakeFetch = (async (url: URL, init?: RequestInit) => {
      calls.push([url.href, init]);
      return new Response('{"error":"nope"}', {
        status: 415,
        headers: { "content-type": "application/json" },
      });
    }) as unknown as typeof fetch;
    const target = httpTarget("http://alb:8443/astrolens", fakeFetch);
    const signal = new AbortController().signal;
    expect(await target.ping?.(signal)).toEqual({
      status: 415,
      contentType: "application/json",
      body: '{"error":"nope"}',
    });
    await target.invoke(new Uint8Array([1, 2]), "image/png", signal);
    expect(
      calls.map(([url, init]) => [
        url,
        init?.method,
        (init?.headers as Record<string, string>)?.["content-type"],
      ]),
    ).toEqual([
      ["http://alb:8443/astrolens/ping", "GET", undefined],
      ["http://alb:8443/astrolens/invocations", "POST", "image/png"],
    ]);
  });
});

describe("sageMakerTarget", () => {
  const body = new Uint8Array([83, 73, 77, 80]);

  it("sends exactly one InvokeEndpoint per image, to the variant asked for", async () => {
    const sdk = mockClient(SageMakerRuntimeClient);
    sdk.on(InvokeEndpointCommand).resolves({
      ContentType: "application/json",
      Body: new TextEncoder().encode('{"ok":1}') as never,
    });
    const target = sageMakerTarget(
      new SageMakerRuntimeClient({ region: "eu-west-1" }),
      "astrolens-staging",
      "green",
    );
    expect(target.label).toBe("sagemaker:astrolens-staging/green");
    expect(target.ping).toBeUndefined();
    expect(await target.invoke(body, "application/fits", new AbortController().signal)).toEqual({
      status: 200,
      contentType: "application/json",
      body: '{"ok":1}',
    });
    const calls = sdk.commandCalls(InvokeEndpointCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      EndpointName: "astrolens-staging",
      TargetVariant: "green",
      ContentType: "application/fits",
      Accept: "application/json",
      Body: body,
    });
    sdk.restore();
  });

  it("turns the container's error (ModelError) into its original status and body", async () => {
    const sdk = mockClient(SageMakerRuntimeClient);
    sdk.on(InvokeEndpointCommand).rejects(
      new ModelError({
        $metadata: {},
        message: "Received client error (415) from primary",
        OriginalStatusCode: 415,
        OriginalMessage: '{"error":"unsupported content type"}',
      }),
    );
    const target = sageMakerTarget(new SageMakerRuntimeClient({ region: "eu-west-1" }), "astrolens-staging");
    expect(target.label).toBe("sagemaker:astrolens-staging");
    expect(await target.invoke(body, "application/fits", new AbortController().signal)).toEqual({
      status: 415,
      contentType: "",
      body: '{"error":"unsupported content type"}',
    });
    expect(sdk.commandCalls(InvokeEndpointCommand)[0]?.args[0].input).not.toHaveProperty("TargetVariant");
    sdk.restore();
  });

  it("lets other SDK errors through, so the runner reports no answer with their name", async () => {
    const sdk = mockClient(SageMakerRuntimeClient);
    const missing = Object.assign(new Error("Endpoint astrolens-staging of account 1 not found."), {
      name: "ValidationError",
    });
    sdk.on(InvokeEndpointCommand).rejects(missing);
    const target = sageMakerTarget(new SageMakerRuntimeClient({ region: "eu-west-1" }), "astrolens-staging");
    const verdict = await runSmokeTest({ target, contract: contractV2, budget });
    expect(verdict.checks[1]?.detail).toBe(
      "no answer: ValidationError: Endpoint astrolens-staging of account 1 not found.",
    );
    expect(verdict.summary).toMatch(
      /^smoke test failed at "invoke point-source\.fits": no answer: ValidationError/,
    );
    sdk.restore();
  });
});
