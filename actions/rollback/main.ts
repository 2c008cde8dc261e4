import { rollback } from "../../src/deploy/entry.js";
import {
  actionsInputReader,
  actionsLogger,
  runAction,
  setOutputs,
  writeSummary,
} from "../../src/gh/actions.js";

/**
 * Returns the environment to its previous good release on both targets
 * (src/deploy/entry.ts). `index.ts` runs it (and `npx @github/local-action` calls it).
 */
export async function run(): Promise<void> {
  await runAction("rollback", async () => {
    const { summary, outputs } = await rollback({
      environment: actionsInputReader("environment"),
      reason: actionsInputReader("reason"),
      aws: { region: actionsInputReader("aws-region") || undefined },
      logger: actionsLogger,
    });
    setOutputs(outputs);
    await writeSummary(summary);
    if (outputs.outcome === "failed") {
      throw new Error(`rollback ${outputs["release-id"]} failed: ${outputs.reason}`);
    }
  });
}
