import { fileURLToPath } from "node:url";
import { type App, DefaultStackSynthesizer } from "aws-cdk-lib";
import { ENVIRONMENTS, environmentResources } from "../../src/environment.ts";
import { type EnvironmentSettings, resolveSettings } from "./settings.ts";
import { AstroLensStack } from "./stack.ts";

/** Where the smoke-test Lambda's esbuild bundle lands (infra/lambda/smoke-test builds it). */
export const SMOKE_TEST_DIST = fileURLToPath(new URL("../lambda/smoke-test/dist", import.meta.url));

export interface BuildOptions {
  /** Environment variables that may give accounts and regions (`ASTROLENS_<ENV>_ACCOUNT`…). */
  env?: Record<string, string | undefined>;
  /** Another bundle folder (the tests use a fixture). */
  smokeTestCodeDir?: string;
}

/**
 * The asset bucket of the bootstrap-free synthesizer: the local bootstrap creates it and
 * uploads the Lambda asset there, as `cdk bootstrap` + `cdk deploy` would in an account.
 */
export function localAssetBucket(settings: EnvironmentSettings): string {
  return `astrolens-${settings.environment}-cdk-assets`;
}

/** Adds one stack per environment of the naming contract to `app`. */
export function buildApp(app: App, options: BuildOptions = {}): AstroLensStack[] {
  return ENVIRONMENTS.map((environment) => {
    const settings = resolveSettings(environment, (key) => app.node.tryGetContext(key), options.env ?? {});
    const synthesizer =
      settings.synthesizer === "bootstrapless"
        ? new DefaultStackSynthesizer({
            generateBootstrapVersionRule: false,
            fileAssetsBucketName: localAssetBucket(settings),
            bucketPrefix: "assets/",
          })
        : new DefaultStackSynthesizer();
    const names = environmentResources(environment);
    return new AstroLensStack(app, names.stackName, {
      stackName: names.stackName,
      description: `AstroLens Release: everything a release to ${environment} needs (ECS blue/green, SageMaker, alarms, ledger)`,
      env: { account: settings.account, region: settings.region },
      synthesizer,
      settings,
      terminationProtection: settings.retainData,
      smokeTestCodeDir: options.smokeTestCodeDir ?? SMOKE_TEST_DIST,
    });
  });
}
