import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DescribeImagesCommand, ECRClient } from "@aws-sdk/client-ecr";
import { type AwsOptions, awsErrorName, createClient } from "../aws/clients.js";
import { buildScanPush } from "../cli/release.js";
import { ENVIRONMENTS, type EnvironmentResources, environmentResources } from "../environment.js";
import { ConfigurationError } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { runCommand } from "../tools/command.js";
import { type AssetManifest, type BootstrapResult, bootstrapStack, type Template } from "./bootstrap.js";
import type { LocalPaths } from "./paths.js";
import { LOCAL_REGION } from "./stack.js";

/**
 * The local environment a local release deploys into: the CDK app's `local` stack,
 * created in the local AWS, already running a previous release — the production
 * model (v1) — so the first local release is a real blue/green from v1 to the
 * checkout's model, gated against it.
 */
export const LOCAL_ENVIRONMENT = "local";
/** The model folder (service/models/…) the local environment starts on. */
export const BASELINE_MODEL = "v1";
export const BASELINE_TAG = `baseline-${BASELINE_MODEL}`;
/** moto's default account (the one every local resource lives in). */
const LOCAL_ACCOUNT = "123456789012";
/** The stack parameter that names the first image (infra/lib/stack.ts). */
const IMAGE_PARAMETER = "ImageDigest";

/** What the synthesized app depends on: its hash decides whether to synthesize again. */
const SYNTH_INPUTS = [
  "infra/bin",
  "infra/lib",
  "infra/cdk.json",
  "infra/package-lock.json",
  "infra/lambda/smoke-test/dist",
  "src/environment.ts",
];

/**
 * Creates one environment of the CDK app in the local AWS, running the baseline release.
 * `local` is the one `local up` makes; any other (say `staging`, to rehearse a promotion)
 * is synthesized for the local AWS: moto's account and region, no `cdk bootstrap`.
 */
export async function bootstrapLocalEnvironment(
  paths: LocalPaths,
  aws: AwsOptions,
  logger: Logger,
  environment: string = LOCAL_ENVIRONMENT,
): Promise<BootstrapResult> {
  const resources = environmentResources(environment);
  if (!(ENVIRONMENTS as readonly string[]).includes(environment)) {
    throw new ConfigurationError(
      `environment "${environment}" is not in the CDK app: choose one of ${ENVIRONMENTS.join(", ")}`,
    );
  }
  const assembly = await synthesize(paths, resources, logger);
  const template = JSON.parse(
    readFileSync(join(assembly, `${resources.stackName}.template.json`), "utf8"),
  ) as Template;
  const manifest = JSON.parse(
    readFileSync(join(assembly, `${resources.stackName}.assets.json`), "utf8"),
  ) as AssetManifest;
  const bootstrap = (digest: string) =>
    bootstrapStack({
      stackName: resources.stackName,
      template,
      assembly: { dir: assembly, manifest },
      parameters: { [IMAGE_PARAMETER]: digest },
      aws,
      logger,
    });

  // The stack first (it owns the repository and its settings), then the baseline image
  // into that repository, then the stack again with the image, which adds the service
  // and the endpoint. A baseline pushed before (the registry outlives `local down`) is reused.
  const existing = await baselineDigest(resources, aws);
  if (existing) return bootstrap(existing);
  await bootstrap("");
  const digest = await logger.group(`Building the baseline release (model ${BASELINE_MODEL})`, async () => {
    const { pushed } = await buildScanPush({
      repository: resources.ecrRepository,
      outputDir: join(paths.state, "baseline"),
      modelVersion: BASELINE_MODEL,
      tags: [BASELINE_TAG],
      aws,
      paths,
      logger,
    });
    return pushed.digest;
  });
  return bootstrap(digest);
}

/** The digest tagged as the baseline in the environment's repository, if any. */
async function baselineDigest(resources: EnvironmentResources, aws: AwsOptions): Promise<string | undefined> {
  try {
    const out = await createClient(ECRClient, aws).send(
      new DescribeImagesCommand({
        repositoryName: resources.ecrRepository,
        imageIds: [{ imageTag: BASELINE_TAG }],
      }),
    );
    return out.imageDetails?.[0]?.imageDigest;
  } catch (err) {
    const name = awsErrorName(err);
    if (name === "RepositoryNotFoundException" || name === "ImageNotFoundException") return undefined;
    throw err;
  }
}

/**
 * Runs `cdk synth` for one stack into `.local/cdk.out/<environment>`, unless the app's inputs
 * are unchanged since the last synth (it takes ~15 s; `local up` runs often).
 */
async function synthesize(
  paths: LocalPaths,
  resources: EnvironmentResources,
  logger: Logger,
): Promise<string> {
  const out = join(paths.state, "cdk.out", resources.environment);
  const stamp = join(out, ".inputs.sha256");
  const cdk = join(paths.root, "infra", "node_modules", "aws-cdk", "bin", "cdk");
  if (!existsSync(cdk)) {
    throw new ConfigurationError(
      `the CDK CLI is not installed (${cdk} is missing): run \`npm ci\` at the repository root`,
    );
  }
  if (!existsSync(join(paths.root, "infra", "lambda", "smoke-test", "dist", "index.mjs"))) {
    throw new ConfigurationError("the smoke-test Lambda is not built: run `npm run build`");
  }
  // Another environment rehearsed here takes the local AWS's account and region.
  const env = resources.environment;
  const rehearsal =
    env === LOCAL_ENVIRONMENT
      ? []
      : [
          ...["synthesizer=bootstrapless", `account=${LOCAL_ACCOUNT}`, `region=${LOCAL_REGION}`].flatMap(
            (c) => ["-c", `astrolens:${env}:${c}`],
          ),
        ];
  const hash = hashInputs(paths.root);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === hash) {
    logger.info(`cdk synth: ${resources.stackName} unchanged since the last synth`);
    return out;
  }
  await logger.group(`Synthesizing ${resources.stackName} (cdk synth)`, () =>
    runCommand(
      process.execPath,
      [cdk, "synth", resources.stackName, "--quiet", "--output", out, ...rehearsal],
      {
        cwd: join(paths.root, "infra"),
        logger,
      },
    ),
  );
  writeFileSync(stamp, hash);
  return out;
}

function hashInputs(root: string): string {
  const hash = createHash("sha256");
  const add = (path: string) => {
    const full = join(root, path);
    if (!existsSync(full)) return;
    if (statSync(full).isDirectory()) {
      for (const name of readdirSync(full).sort()) add(join(path, name));
    } else {
      hash.update(path).update("\0").update(readFileSync(full)).update("\0");
    }
  };
  for (const input of SYNTH_INPUTS) add(input);
  return hash.digest("hex");
}
