import {
  GetFunctionCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
} from "@aws-sdk/client-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import type { SmokeVerdict } from "../../infra/lambda/smoke-test/src/types.js";
import {
  ecsHookRecord,
  invokeSmokeTest,
  logSmoke,
  resolveSmokeFunction,
  sageMakerSmokeRecord,
} from "../../src/deploy/smoke.js";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";

const lambdaMock = mockClient(LambdaClient);
const lambda = new LambdaClient({ region: "us-east-1" });
const ARN = "arn:aws:lambda:us-east-1:123456789012:function:astrolens-staging-smoke-test";
// The SDK types Payload as its blob adapter; the bytes are what the code reads.
const encode = (value: unknown) =>
  new TextEncoder().encode(JSON.stringify(value)) as unknown as InvokeCommandOutput["Payload"];

const passed: SmokeVerdict = {
  ok: true,
  target: "sagemaker:astrolens-staging-inference",
  modelVersion: "2.0.0",
  checks: [{ name: "ping", ok: true, detail: "200", ms: 3 }],
  summary: "smoke test passed: 1 check against sagemaker:astrolens-staging-inference (model 2.0.0) in 3 ms",
};

beforeEach(() => lambdaMock.reset());

describe("the smoke-test function", () => {
  it("resolves its ARN, or says the function is missing", async () => {
    lambdaMock.on(GetFunctionCommand).resolves({ Configuration: { FunctionArn: ARN } });
    expect(await resolveSmokeFunction(lambda, "astrolens-staging-smoke-test")).toBe(ARN);
    lambdaMock
      .on(GetFunctionCommand)
      .rejects(Object.assign(new Error("not found"), { name: "ResourceNotFoundException", $metadata: {} }));
    const err = await resolveSmokeFunction(lambda, "nope").catch((e) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(err.message).toContain('input "smoke-function": Lambda function nope does not exist');
  });

  it("invokes it directly against the endpoint and returns its verdict", async () => {
    lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(passed) });
    const invocation = { target: { endpointName: "astrolens-staging-inference" } };
    expect(await invokeSmokeTest(lambda, ARN, invocation)).toEqual(passed);
    const sent = lambdaMock.commandCalls(InvokeCommand)[0]?.args[0].input;
    expect(sent?.InvocationType).toBe("RequestResponse");
    expect(JSON.parse(new TextDecoder().decode(sent?.Payload as Uint8Array))).toEqual(invocation);
  });

  it("calls a function error a failed verdict, never a pass", async () => {
    lambdaMock.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: "Unhandled",
      Payload: encode({ errorMessage: "Task timed out" }),
    });
    const verdict = await invokeSmokeTest(lambda, ARN, { target: { url: "http://x" } });
    expect(verdict.ok).toBe(false);
    expect(verdict.summary).toContain("the smoke-test function failed (Unhandled)");
    expect(verdict.summary).toContain("Task timed out");
  });

  it("calls an answer that is not a verdict a failure", async () => {
    lambdaMock.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ hookStatus: "SUCCEEDED" }) });
    expect((await invokeSmokeTest(lambda, ARN, { target: { url: "http://x" } })).ok).toBe(false);
  });
});

describe("verdicts in the ledger and the log", () => {
  it("records the ECS hook as ECS reports it, and where the full verdict is", () => {
    const record = ecsHookRecord({
      passed: false,
      hookStatus: "FAILED",
      reason: "deployment failed: hook execution failure(s) detected",
      functionName: "astrolens-staging-smoke-test",
      deploymentArn: "arn:dep",
      at: "t",
    });
    expect(record).toEqual({
      target: "ecs",
      source: "ecs-hook",
      ok: false,
      summary:
        "smoke test failed against ECS green (lifecycle hook FAILED): deployment failed: hook execution failure(s) detected",
      at: "t",
      hookStatus: "FAILED",
      logHint:
        'the full verdict is in log group /aws/lambda/astrolens-staging-smoke-test: filter resourceArn = "arn:dep"',
    });
  });

  it("logs the sentence and each failed check", () => {
    const logger = createMemoryLogger();
    const failed: SmokeVerdict = {
      ...passed,
      ok: false,
      checks: [
        ...passed.checks,
        { name: "manifest sha256", ok: false, detail: "served 0000, expected bbbb", ms: 2 },
      ],
      summary: 'smoke test failed at "manifest sha256": served 0000, expected bbbb',
    };
    logSmoke(logger, sageMakerSmokeRecord(failed, "t"));
    expect(logger.lines).toEqual([
      'error: SageMaker smoke test failed at "manifest sha256": served 0000, expected bbbb',
      "debug:   ok   ping: 200",
      "error:   FAIL manifest sha256: served 0000, expected bbbb",
    ]);
  });
});
