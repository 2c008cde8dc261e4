/**
 * The Lambda entry (bundled to dist/index.mjs, handler `index.handler`): the real edges —
 * process.env, fetch, the SageMaker runtime client, stdout — around createSmokeHandler.
 */
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { createSmokeHandler } from "./dispatch.js";
import { httpTarget, sageMakerTarget } from "./targets.js";

// One client per execution environment, reused by warm invocations. One attempt: a retry
// would hide a failed request and spend the latency budget on the second try.
// AWS_REGION and AWS_ENDPOINT_URL come from the environment, as the SDK reads them.
let client: SageMakerRuntimeClient | undefined;

export const handler = createSmokeHandler({
  env: process.env,
  httpTarget: (url) => httpTarget(url),
  sageMakerTarget: (endpointName, targetVariant) => {
    client ??= new SageMakerRuntimeClient({ maxAttempts: 1 });
    return sageMakerTarget(client, endpointName, targetVariant);
  },
  // stdout, not console.log: the Lambda runtime prefixes console lines with a timestamp
  // and request id, which keeps CloudWatch Logs Insights from reading the line as JSON.
  log: (entry) => {
    process.stdout.write(`${JSON.stringify(entry)}\n`);
  },
});
