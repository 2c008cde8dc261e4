import { z } from "zod";
import { ConfigurationError } from "../../src/errors.js";
import {
  actionsInputReader,
  actionsLogger,
  runAction,
  setOutputs,
  writeSummary,
} from "../../src/gh/actions.js";
import { parseInputs, splitList } from "../../src/gh/inputs.js";
import { Summary } from "../../src/gh/summary.js";
import { buildImage, formatBytes } from "../../src/image/build.js";
import { containerStorage } from "../../src/image/containers.js";

const inputs = z.object({
  context: z.string().default("."),
  dockerfile: z.string().default("Dockerfile"),
  "build-args": z.string().optional(),
  target: z.string().optional(),
  platform: z
    .string()
    .regex(/^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/, "expected one platform such as linux/amd64")
    .default("linux/amd64"),
  "cache-from": z.string().optional(),
  "cache-to": z.string().optional(),
  "secret-files": z.string().optional(),
  builder: z.enum(["auto", "buildah", "docker"]).default("auto"),
  "output-dir": z.string().default(".astrolens/build"),
  name: z.string().default("localhost/astrolens-inference:candidate"),
});

/** `KEY=value` lines (or commas) into a map, rejecting anything else by the input's name. */
function parsePairs(text: string | undefined, input: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const line of splitList(text)) {
    const match = /^([A-Za-z_][A-Za-z0-9_-]*)=(.*)$/.exec(line);
    if (!match?.[1]) throw new ConfigurationError(`input "${input}": "${line}" is not KEY=value`);
    pairs[match[1]] = match[2] ?? "";
  }
  return pairs;
}

/** The action's logic; `index.ts` runs it (and `npx @github/local-action` calls it). */
export async function run(): Promise<void> {
  await runAction("build-image", async () => {
    const input = parseInputs(inputs, actionsInputReader);
    const image = await buildImage({
      context: input.context,
      dockerfile: input.dockerfile,
      name: input.name,
      buildArgs: parsePairs(input["build-args"], "build-args"),
      target: input.target,
      platform: input.platform,
      cacheFrom: splitList(input["cache-from"]),
      cacheTo: input["cache-to"],
      secrets: parsePairs(input["secret-files"], "secret-files"),
      builder: input.builder,
      outputDir: input["output-dir"],
      storage: containerStorage(),
      logger: actionsLogger,
    });
    setOutputs({
      digest: image.digest,
      "media-type": image.mediaType,
      "image-dir": image.imageDir,
      archive: image.archive,
      builder: image.builder,
      "size-bytes": image.sizeBytes,
    });
    await writeSummary(
      new Summary()
        .heading("Image built")
        .table(
          ["digest", "media type", "builder", "layers", "size"],
          [
            [
              image.digest,
              image.mediaType,
              image.builder,
              String(image.layers),
              formatBytes(image.sizeBytes),
            ],
          ],
        ),
    );
  });
}
