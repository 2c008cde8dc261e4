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
import { pushImage } from "../../src/image/push.js";

const inputs = z.object({
  "image-dir": z.string().default(".astrolens/build/image"),
  repository: z.string(),
  tags: z.string().default(process.env.GITHUB_SHA ?? ""),
  "scan-verdict": z.string(),
  "scanned-digest": z.string(),
  "aws-region": z.string().optional(),
});

/** The action's logic; `index.ts` runs it (and `npx @github/local-action` calls it). */
export async function run(): Promise<void> {
  await runAction("push-image", async () => {
    const input = parseInputs(inputs, actionsInputReader);
    const pushed = await pushImage({
      ecr: createClient(ECRClient, { region: input["aws-region"] }),
      imageDir: input["image-dir"],
      repository: input.repository,
      tags: splitList(input.tags),
      scanVerdict: input["scan-verdict"],
      scannedDigest: input["scanned-digest"],
      logger: actionsLogger,
    });
    setOutputs({
      "image-uri": pushed.imageUri,
      digest: pushed.digest,
      "repository-uri": pushed.repositoryUri,
      tags: pushed.tags.join(","),
    });
    await writeSummary(
      new Summary()
        .heading("Image pushed")
        .table(
          ["image", "tags", "media type"],
          [[pushed.imageUri, pushed.tags.join(", "), pushed.mediaType]],
        ),
    );
  });
}
