import { S3Client } from "@aws-sdk/client-s3";
import { z } from "zod";
import { runGate } from "../../service/src/gate/run.js";
import { createClient } from "../../src/aws/clients.js";
import { s3Downloader } from "../../src/aws/s3.js";
import { ConfigurationError } from "../../src/errors.js";
import {
  actionsInputReader,
  actionsLogger,
  runAction,
  setOutputs,
  writeSummary,
} from "../../src/gh/actions.js";
import { parseInputs } from "../../src/gh/inputs.js";
import { booleanInput } from "../../src/gh/schema.js";
import { Summary } from "../../src/gh/summary.js";

const inputs = z.object({
  candidate: z.string(),
  production: z.string(),
  "eval-set": z.string().default("test/fixtures/eval/synthetic/manifest.json"),
  "ood-set": z.string().optional(),
  "detection-set": z.string().optional(),
  policy: z.string().default(".astrolens/gate-policy.yaml"),
  "metrics-file": z.string().default(".astrolens/gate/metrics.json"),
  "aws-region": z.string().optional(),
  "fail-on-block": booleanInput(true),
});

/** The action's logic; `index.ts` runs it (and `npx @github/local-action` calls it). */
export async function run(): Promise<void> {
  await runAction("accuracy-gate", async () => {
    const input = parseInputs(inputs, actionsInputReader);
    const usesS3 = [input.candidate, input.production].some((source) => source.startsWith("s3://"));
    const result = await runGate({
      candidate: input.candidate,
      production: input.production,
      sets: {
        classification: input["eval-set"],
        ...(input["ood-set"] && { ood: input["ood-set"] }),
        ...(input["detection-set"] && { detection: input["detection-set"] }),
      },
      policyFile: input.policy,
      metricsFile: input["metrics-file"],
      ...(usesS3 && { download: s3Downloader(createClient(S3Client, { region: input["aws-region"] })) }),
      logger: actionsLogger,
    });
    const { comparison } = result;
    setOutputs({
      verdict: comparison.verdict,
      "blocks-release": comparison.blocksRelease,
      "candidate-accuracy": comparison.candidate.accuracy,
      "production-accuracy": comparison.production.accuracy,
      "mcnemar-p": comparison.mcnemar.pValue,
      "metrics-file": input["metrics-file"],
    });
    for (const reason of comparison.reasons) {
      if (comparison.verdict === "pass") actionsLogger.info(reason);
      else actionsLogger.error(reason);
    }
    await writeSummary(new Summary().raw(result.markdown));
    if (comparison.blocksRelease && input["fail-on-block"]) {
      throw new ConfigurationError(
        `the gate's verdict is ${comparison.verdict}: ${comparison.reasons[0] ?? ""}`,
      );
    }
  });
}
