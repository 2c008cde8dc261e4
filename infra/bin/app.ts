import { App } from "aws-cdk-lib";
import { errorMessage } from "../../src/errors.ts";
import { buildApp } from "../lib/app.ts";

// The CDK CLI runs this (cdk.json "app"); context comes from cdk.json and `-c`.
const app = new App();
try {
  // `-c astrolens:smokeTestDist=DIR` points at another bundle folder than lambda/smoke-test/dist.
  const smokeTestCodeDir = app.node.tryGetContext("astrolens:smokeTestDist") as string | undefined;
  buildApp(app, { env: process.env, ...(smokeTestCodeDir ? { smokeTestCodeDir } : {}) });
  app.synth();
} catch (err) {
  console.error(`astrolens infra: ${errorMessage(err)}`);
  process.exit(1);
}
