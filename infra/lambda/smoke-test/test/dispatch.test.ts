/**
 * The two ways in, over fake targets: the ECS lifecycle hook (every response checked against
 * AWS's hook-response contract) and a direct invocation.
 */
import { describe, expect, it } from "vitest";
import { createSmokeHandler, SMOKE_STAGE, type SmokeDeps } from "../src/dispatch.js";
import { knownImages } from "../src/images.js";
import type { Reply, SmokeTarget } from "../src/targets.js";
import type { EcsLifecycleHookEvent, SmokeHookResponse, SmokeVerdict } from "../src/types.js";
import {
  awsHookResponseSchema,
  capturedPing,
  capturedResponse,
  contractV2,
  MANIFEST_V2_TEXT,
} from "./helpers.js";

/** The response must also survive JSON, as the Lambda service serialises it. */
function expectAwsHookResponse(response: unknown): SmokeHookResponse {
  expect(awsHookResponseSchema.safeParse(response).error).toBeUndefined();
  expect(JSON.parse(JSON.stringify(response))).toEqual(response);
  const typed = response as SmokeHookResponse;
  // This hook decides in one call: never IN_PROGRESS, so never a callBackDelay.
  expect(["SUCCEEDED", "FAILED"]).toContain(typed.hookStatus);
  expect(Object.keys(typed).sort()).toEqual(["hookDetails", "hookStatus"]);
  expect(Object.keys(typed.hookDetails).sort()).toEqual([
    "failedChecks",
    "modelVersion",
    "ok",
    "summary",
    "target",
  ]);
  return typed;
}

const GREEN = "arn:aws:ecs:eu-west-1:123456789012:service-revision/astrolens/inference/4093278429361209741";
const BLUE = "arn:aws:ecs:eu-west-1:123456789012:service-revision/astrolens/inference/1902871235209347012";

/** An event as ECS sends it (AWS-BEHAVIOUR.md A3). */
function hookEvent(stage: string, extra: Partial<EcsLifecycleHookEvent> = {}): EcsLifecycleHookEvent {
  return {
    executionId: "d8a9e7b4-0000-4f2b-9c1e-1d2b3c4d5e6f",
    lifecycleStage: stage,
    resourceArn:
      "arn:aws:ecs:eu-west-1:123456789012:service-deployment/astrolens/inference/QHMqHfBvSX2P9wqXHDh5Y",
    executionDetails: {
      serviceArn: "arn:aws:ecs:eu-west-1:123456789012:service/astrolens/inference",
      targetServiceRevisionArn: GREEN,
      testTrafficWeights: {},
      productionTrafficWeights: {},
    },
    ...extra,
  };
}

const json = (body: unknown): Reply => ({
  status: 200,
  contentType: "application/json",
  body: JSON.stringify(body),
});

function harness(env: Record<string, string> = {}, answer?: (name: string) => Reply) {
  const sent: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const targets: string[] = [];
  const nameOf = (bytes: Uint8Array) =>
    knownImages.find((i) => Buffer.compare(i.bytes, bytes) === 0)?.name ?? "?";
  const fake = (label: string, withPing: boolean): SmokeTarget => ({
    label,
    ...(withPing
      ? {
          ping: async () => {
            sent.push(`${label} ping`);
            return answer ? answer("ping") : json(capturedPing());
          },
        }
      : { pingSkipped: "SageMaker has no /ping for callers" }),
    invoke: async (body) => {
      const name = nameOf(body);
      sent.push(`${label} ${name}`);
      return answer ? answer(name) : json(capturedResponse(name));
    },
  });
  const deps: SmokeDeps = {
    env,
    httpTarget: (url) => {
      targets.push(url);
      return fake(url, true);
    },
    sageMakerTarget: (name, variant) => {
      targets.push(`sagemaker:${name}/${variant ?? ""}`);
      return fake(`sagemaker:${name}`, false);
    },
    log: (entry) => {
      logs.push(entry);
    },
  };
  return { handler: createSmokeHandler(deps), sent, logs, targets };
}

const ENV = { SMOKE_TARGET_URL: "http://alb-test:8443/", SMOKE_CONTRACT_JSON: JSON.stringify(contractV2) };

describe("as the ECS lifecycle hook", () => {
  it(`tests green at ${SMOKE_STAGE} and answers SUCCEEDED, logging the verdict once`, async () => {
    const h = harness(ENV);
    const response = expectAwsHookResponse(await h.handler(hookEvent(SMOKE_STAGE)));
    expect(response).toEqual({
      hookStatus: "SUCCEEDED",
      hookDetails: {
        ok: true,
        summary: expect.stringMatching(
          /^smoke test passed: 5 checks against http:\/\/alb-test:8443\/ \(model 2\.0\.0\)/,
        ),
        target: "http://alb-test:8443/",
        modelVersion: "2.0.0",
        failedChecks: [],
      },
    });
    expect(h.sent).toHaveLength(4);
    expect(h.logs).toEqual([
      expect.objectContaining({
        level: "info",
        message: "smoke test verdict",
        mode: "hook",
        lifecycleStage: SMOKE_STAGE,
        executionId: "d8a9e7b4-0000-4f2b-9c1e-1d2b3c4d5e6f",
        verdict: expect.objectContaining({ ok: true, checks: expect.any(Array) }),
      }),
    ]);
  });

  it("answers FAILED, naming the field, when green answers the wrong shape", async () => {
    const h = harness(ENV, (name) => {
      if (name === "ping") return json(capturedPing());
      const body = capturedResponse(name) as unknown as { tiles: Array<Record<string, unknown>> };
      for (const tile of body.tiles) tile.probabilities = Object.values(tile.probabilities as object);
      return json(body);
    });
    const response = expectAwsHookResponse(await h.handler(hookEvent(SMOKE_STAGE)));
    expect(response.hookStatus).toBe("FAILED");
    expect(response.hookDetails.summary).toMatch(
      /^smoke test failed at "invoke point-source\.fits": tiles\[0\]\.probabilities: .*\(3 of 5 checks failed\)$/,
    );
    expect(response.hookDetails.failedChecks).toEqual([
      "invoke point-source.fits",
      "invoke extended-and-streak.png",
      "invoke scale.fits",
    ]);
    expect(h.logs[0]).toMatchObject({ level: "error", verdict: { ok: false } });
  });

  it("lets hookDetails override the environment: target URL, contract, budget (object or JSON text)", async () => {
    for (const wrap of [(d: object) => d, (d: object) => JSON.stringify(d)]) {
      const h = harness({});
      const hookDetails = wrap({
        targetUrl: "http://green.internal:9000",
        manifest: MANIFEST_V2_TEXT,
        latencyBudgetMs: { perRequest: 1_000, total: 5_000 },
      });
      const response = expectAwsHookResponse(
        await h.handler(hookEvent(SMOKE_STAGE, { hookDetails: hookDetails as never })),
      );
      expect(response.hookStatus).toBe("SUCCEEDED");
      expect(h.targets).toEqual(["http://green.internal:9000/"]);
      expect(h.logs[0]?.verdict).toMatchObject({
        checks: expect.arrayContaining([
          expect.objectContaining({
            name: "total latency",
            detail: expect.stringContaining("budget of 5000 ms"),
          }),
        ]),
      });
    }
  });

  it("answers FAILED without a request when the target or contract is missing, saying how to fix each", async () => {
    const h = harness({});
    const response = expectAwsHookResponse(await h.handler(hookEvent(SMOKE_STAGE)));
    expect(response.hookStatus).toBe("FAILED");
    expect(response.hookDetails.failedChecks).toEqual(["configuration"]);
    expect(response.hookDetails.summary).toBe(
      'smoke test failed at "configuration": no target: set SMOKE_TARGET_URL on the function to the ALB test listener\'s URL, or pass hookDetails.targetUrl; ' +
        "no expected model contract: pass hookDetails.contract (contractFromManifest of the released model's manifest.json) " +
        "or hookDetails.manifest (the manifest.json text), or set SMOKE_CONTRACT_JSON on the function",
    );
    expect(h.sent).toEqual([]);
  });

  it("answers FAILED for unreadable hookDetails", async () => {
    const h = harness(ENV);
    const response = expectAwsHookResponse(await h.handler(hookEvent(SMOKE_STAGE, { hookDetails: "{oops" })));
    expect(response.hookDetails.summary).toMatch(
      /^smoke test failed at "configuration": hookDetails is not valid JSON/,
    );
    expect(h.sent).toEqual([]);
  });

  it("answers FAILED when the test listener does not send all test traffic to green", async () => {
    const h = harness(ENV);
    const event = hookEvent(SMOKE_STAGE);
    event.executionDetails.testTrafficWeights = { [GREEN]: 50, [BLUE]: 50 };
    const response = expectAwsHookResponse(await h.handler(event));
    expect(response.hookStatus).toBe("FAILED");
    expect(response.hookDetails.failedChecks).toEqual(["test traffic"]);
    expect(response.hookDetails.summary).toContain("the test listener sends 50% (not 100%)");
  });

  it("checks the test-traffic weights when ECS reports green at 100%", async () => {
    const h = harness(ENV);
    const event = hookEvent(SMOKE_STAGE);
    event.executionDetails.testTrafficWeights = { [GREEN]: 100, [BLUE]: 0 };
    expectAwsHookResponse(await h.handler(event));
    const verdict = h.logs[0]?.verdict as SmokeVerdict | undefined;
    expect(verdict?.checks[0]).toMatchObject({ name: "test traffic", ok: true });
  });

  it.each([
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
  ])("answers SUCCEEDED with a note at %s, sending nothing", async (stage) => {
    // As during a rollback: ECS re-invokes traffic-shift hooks with the weights reversed.
    const h = harness({});
    const event = hookEvent(stage);
    event.executionDetails.testTrafficWeights = { [GREEN]: 0, [BLUE]: 100 };
    const response = expectAwsHookResponse(await h.handler(event));
    expect(response).toEqual({
      hookStatus: "SUCCEEDED",
      hookDetails: {
        ok: true,
        summary: `smoke test not run at ${stage}: it runs only at ${SMOKE_STAGE}; nothing to judge at this stage (ECS also calls traffic-shift hooks during a rollback)`,
        target: null,
        modelVersion: null,
        failedChecks: [],
      },
    });
    expect(h.sent).toEqual([]);
    expect(h.logs).toEqual([expect.objectContaining({ level: "info", lifecycleStage: stage })]);
  });

  it("answers FAILED, not a function error, when the test itself crashes", async () => {
    const h = harness(ENV);
    const crashing = createSmokeHandler({
      env: ENV,
      httpTarget: () => {
        throw new TypeError("a bug");
      },
      sageMakerTarget: () => {
        throw new TypeError("a bug");
      },
      log: () => {},
    });
    const response = expectAwsHookResponse(await crashing(hookEvent(SMOKE_STAGE)));
    expect(response.hookStatus).toBe("FAILED");
    expect(response.hookDetails.summary).toMatch(
      /^smoke test failed at "smoke test": internal error in the smoke test: TypeError: a bug/,
    );
    expect(h.sent).toEqual([]);
  });

  it("answers FAILED for an event whose lifecycleStage is not a string", async () => {
    const h = harness(ENV);
    const response = expectAwsHookResponse(await h.handler({ lifecycleStage: 7 }));
    expect(response.hookDetails.summary).toMatch(/no usable lifecycleStage: 7$/);
  });
});

describe("invoked directly", () => {
  it("tests a URL and returns the verdict", async () => {
    const h = harness({});
    const verdict = (await h.handler({
      target: { url: "http://127.0.0.1:8080" },
      contract: contractV2,
    })) as SmokeVerdict;
    expect(verdict).toMatchObject({ ok: true, target: "http://127.0.0.1:8080/", modelVersion: "2.0.0" });
    expect(Object.keys(verdict).sort()).toEqual(["checks", "modelVersion", "ok", "summary", "target"]);
    expect(h.logs).toEqual([expect.objectContaining({ mode: "direct", verdict })]);
  });

  it("tests a SageMaker endpoint with the same checks, /ping skipped and said so", async () => {
    const h = harness({});
    const verdict = (await h.handler({
      target: { endpointName: "astrolens-staging", targetVariant: "green" },
      manifest: MANIFEST_V2_TEXT,
    })) as SmokeVerdict;
    expect(h.targets).toEqual(["sagemaker:astrolens-staging/green"]);
    expect(verdict.ok).toBe(true);
    expect(verdict.checks.map((c) => c.name)).toEqual([
      "ping",
      "invoke point-source.fits",
      "invoke extended-and-streak.png",
      "invoke scale.fits",
      "total latency",
    ]);
    expect(verdict.checks[0]).toMatchObject({
      skipped: true,
      detail: "skipped: SageMaker has no /ping for callers",
    });
  });

  it("returns a failed verdict for an event it cannot read, without throwing", async () => {
    const h = harness({});
    const verdict = (await h.handler({ hello: "world" })) as SmokeVerdict;
    expect(verdict).toMatchObject({ ok: false, target: "(no target)", modelVersion: null });
    expect(verdict.summary).toMatch(
      /^smoke test failed at "configuration": the event is neither an ECS lifecycle hook event/,
    );
  });

  it("names the missing contract for a direct call", async () => {
    const h = harness({});
    const verdict = (await h.handler({ target: { url: "http://127.0.0.1:8080" } })) as SmokeVerdict;
    expect(verdict.summary).toMatch(/"configuration": no expected model contract: pass contract \(/);
    expect(h.sent).toEqual([]);
  });
});
