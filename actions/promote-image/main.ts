import { ECRClient } from "@aws-sdk/client-ecr";
import { z } from "zod";
import { createClient } from "../../src/aws/clients.js";
import {
  actionsInputReader,
  actionsLogger,
  runAction,
  setOutputs,
  writeSummary,
} from "../../src/gh/actions.js";
import { parseInputs, splitList } from "../../src/gh/inputs.js";
import { Summary } from "../../src/gh/summary.js";
import { parseImageReference, promoteImage } from "../../src/image/promote.js";

const inputs = z.object({
  "source-image": z.string(),
  "destination-repository": z.string(),
  tags: z.string(),
  "source-region": z.string().optional(),
  "aws-region": z.string().optional(),
});

/** The action's logic; `index.ts` runs it (and `npx @github/local-action` calls it). */
export async function run(): Promise<void> {
  await runAction("promote-image", async () => {
    const input = parseInputs(inputs, actionsInputReader);
    const source = parseImageReference(input["source-image"], "source-image");
    const destinationEcr = createClient(ECRClient, { region: input["aws-region"] });
    const sameRegion = !input["source-region"] || input["source-region"] === input["aws-region"];
    const promoted = await promoteImage({
      source,
      sourceEcr: sameRegion ? destinationEcr : createClient(ECRClient, { region: input["source-region"] }),
      destinationEcr,
      destinationRepository: input["destination-repository"],
      tags: splitList(input.tags),
      logger: actionsLogger,
    });
    setOutputs({ "image-uri": promoted.imageUri, digest: promoted.digest, "digest-unchanged": true });
    await writeSummary(
      new Summary()
        .heading("Image promoted")
        .table(["from", "to", "digest unchanged"], [[input["source-image"], promoted.imageUri, "yes"]]),
    );
  });
}
