import {
  GetFunctionCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  type LambdaClient,
} from "@aws-sdk/client-lambda";
import type { SmokeCheck, SmokeInvocation, SmokeVerdict } from "../../infra/lambda/smoke-test/src/types.js";
import { awsErrorName } from "../aws/clients.js";
import { ConfigurationError, withContext } from "../errors.js";
import type { Logger } from "../gh/logger.js";

/**
 * The smoke test's verdicts, and how each reaches the ledger and the summary.
 *
 * Decision — one function (infra/lambda/smoke-test), two ways to run it:
 *
 * - **ECS: natively, as the POST_TEST_TRAFFIC_SHIFT lifecycle hook.** ECS invokes it
 *   against green on the test listener before any production traffic moves, and rolls
 *   back on FAILED by itself. This is authoritative and survives a dead runner. ECS does
 *   not hand back the hook's response, so the ledger records what ECS does report —
 *   the hook's status (SUCCEEDED / FAILED / TIMED_OUT) and the deployment's status
 *   reason — and points to the full verdict: the function logs it as one JSON line with
 *   the deployment ARN (`resourceArn`), which a Logs Insights query finds. (Reading it
 *   back into the ledger needs @aws-sdk/client-cloud-watch-logs, not installed yet.)
 * - **SageMaker: the toolkit invokes the same function directly** against the endpoint
 *   (`{ target: { endpointName }, contract }`) as soon as green takes all the endpoint's
 *   traffic: in the final bake, while blue is still kept, or at InService. SageMaker has
 *   no hook, and InvokeEndpoint cannot pick green while traffic is split; the image
 *   under test is byte for byte the one ECS's hook already passed before either target
 *   took production traffic, and SageMaker's own health checks gate the shift, so this
 *   run proves the SageMaker path (container contract, runtime, model identity). Its
 *   whole verdict, every check, goes into the ledger.
 */

export interface SmokeRecord {
  target: "ecs" | "sagemaker";
  source: "ecs-hook" | "invoke";
  ok: boolean;
  /** One sentence. */
  summary: string;
  at: string;
  modelVersion?: string | null;
  checks?: SmokeCheck[];
  /** ECS's status of the hook. */
  hookStatus?: string;
  /** Where the hook's full verdict is. */
  logHint?: string;
}

/** The function's ARN (what ECS's hook configuration takes); a missing function is the user's to fix. */
export async function resolveSmokeFunction(lambda: LambdaClient, name: string): Promise<string> {
  try {
    const found = await lambda.send(new GetFunctionCommand({ FunctionName: name }));
    const arn = found.Configuration?.FunctionArn;
    if (!arn) throw new Error(`Lambda returned no ARN for ${name}`);
    return arn;
  } catch (err) {
    if (awsErrorName(err) === "ResourceNotFoundException") {
      throw new ConfigurationError(
        `input "smoke-function": Lambda function ${name} does not exist; deploy the environment's stack (it creates the smoke-test function) or pass the function's name`,
      );
    }
    throw withContext(`looking up the smoke-test function ${name}`, err);
  }
}

/**
 * Invokes the smoke test and returns its verdict. The function answers a verdict even
 * when the test fails; a function error (a crash, a timeout) is a failed verdict too,
 * never a pass.
 */
export async function invokeSmokeTest(
  lambda: LambdaClient,
  functionName: string,
  invocation: SmokeInvocation,
): Promise<SmokeVerdict> {
  const label =
    "endpointName" in invocation.target
      ? `sagemaker:${invocation.target.endpointName}`
      : invocation.target.url;
  let response: InvokeCommandOutput;
  try {
    response = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: "RequestResponse",
        Payload: new TextEncoder().encode(JSON.stringify(invocation)),
      }),
    );
  } catch (err) {
    throw withContext(`invoking the smoke-test function ${functionName}`, err);
  }
  const text = response.Payload ? new TextDecoder().decode(response.Payload) : "";
  if (response.FunctionError) {
    return failedVerdict(
      label,
      `the smoke-test function failed (${response.FunctionError}): ${text.slice(0, 500)}`,
    );
  }
  try {
    const verdict = JSON.parse(text) as SmokeVerdict;
    if (typeof verdict?.ok !== "boolean" || !Array.isArray(verdict.checks)) {
      return failedVerdict(
        label,
        `the smoke-test function answered something that is not a verdict: ${text.slice(0, 500)}`,
      );
    }
    return verdict;
  } catch {
    return failedVerdict(
      label,
      `the smoke-test function answered something that is not JSON: ${text.slice(0, 500)}`,
    );
  }
}

function failedVerdict(target: string, detail: string): SmokeVerdict {
  return {
    ok: false,
    target,
    modelVersion: null,
    checks: [{ name: "invocation", ok: false, detail, ms: 0 }],
    summary: `smoke test failed at "invocation": ${detail}`,
  };
}

/** The ECS hook's verdict, as far as ECS reports it. */
export function ecsHookRecord(options: {
  passed: boolean;
  hookStatus?: string;
  reason?: string;
  functionName: string;
  deploymentArn: string;
  at: string;
}): SmokeRecord {
  const status = options.hookStatus ?? (options.passed ? "SUCCEEDED" : "unknown");
  return {
    target: "ecs",
    source: "ecs-hook",
    ok: options.passed,
    summary: options.passed
      ? `smoke test passed against ECS green on the test listener (lifecycle hook ${status})`
      : `smoke test failed against ECS green (lifecycle hook ${status})${options.reason ? `: ${options.reason}` : ""}`,
    at: options.at,
    hookStatus: status,
    logHint: `the full verdict is in log group /aws/lambda/${options.functionName}: filter resourceArn = "${options.deploymentArn}"`,
  };
}

/** The verdict of a direct invocation against the endpoint. */
export function sageMakerSmokeRecord(verdict: SmokeVerdict, at: string): SmokeRecord {
  return {
    target: "sagemaker",
    source: "invoke",
    ok: verdict.ok,
    summary: verdict.summary,
    at,
    modelVersion: verdict.modelVersion,
    checks: verdict.checks,
  };
}

/** Logs a verdict: the sentence, then each failed check (all checks at debug level). */
export function logSmoke(logger: Logger, record: SmokeRecord): void {
  const line = `${record.target === "ecs" ? "ECS" : "SageMaker"} ${record.summary}`;
  if (record.ok) logger.info(line);
  else logger.error(line);
  for (const check of record.checks ?? []) {
    const text = `  ${check.ok ? "ok  " : "FAIL"} ${check.name}: ${check.detail}`;
    if (check.ok) logger.debug(text);
    else logger.error(text);
  }
  if (!record.ok && record.logHint) logger.info(`  ${record.logHint}`);
}
