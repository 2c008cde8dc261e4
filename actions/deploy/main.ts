import { deploy } from "../../src/deploy/entry.js";
import {
  actionsInputReader,
  actionsLogger,
  runAction,
  setOutputs,
  writeSummary,
} from "../../src/gh/actions.js";

/**
 * Both targets as one release (src/deploy/entry.ts validates the inputs, naming each).
 * The outputs and the job summary are written before a failed release fails the step,
 * so a later step (or a person) sees why. `index.ts` runs it (and `npx
 * @github/local-action` calls it).
 */
export async function run(): Promise<void> {
  await runAction("deploy", async () => {
    const read = actionsInputReader;
    const { result, summary, outputs } = await deploy({
      environment: read("environment"),
      image: read("image"),
      modelManifest: read("model-manifest"),
      sagemakerStrategy: read("sagemaker-strategy"),
      bakeMinutes: read("bake-minutes"),
      alarms: read("alarms"),
      allowAlarmsInAlarm: read("allow-alarms-in-alarm"),
      smokeFunction: read("smoke-function"),
      testUrl: read("test-url"),
      wait: read("wait"),
      resume: read("resume"),
      dryRun: read("dry-run"),
      scanVerdict: read("scan-verdict"),
      gateMetricsFile: read("gate-metrics-file"),
      aws: { region: read("aws-region") || undefined },
      logger: actionsLogger,
    });
    setOutputs(outputs);
    await writeSummary(summary);
    if (result.status === "rolled-back" || result.status === "failed") {
      throw new Error(`release ${outputs["release-id"]} ${outputs.outcome}: ${outputs.reason}`);
    }
  });
}
