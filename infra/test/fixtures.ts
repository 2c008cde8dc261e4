import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { ENVIRONMENTS } from "../../src/environment.ts";
import { type BuildOptions, buildApp } from "../lib/app.ts";
import type { AstroLensStack } from "../lib/stack.ts";
import type { TemplateJson } from "./iam-evaluator.ts";

export const INFRA_DIR = fileURLToPath(new URL("..", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The context the CLI hands the app for cdk.json: its `context` (feature flags, telemetry
 * off) and the metadata switches, so the tests synthesize exactly what `cdk synth` does.
 */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(INFRA_DIR, "cdk.json"), "utf8")) as {
    context: Record<string, unknown>;
    pathMetadata: boolean;
    assetMetadata: boolean;
  };
  return {
    ...cdkJson.context,
    "aws:cdk:enable-path-metadata": cdkJson.pathMetadata,
    "aws:cdk:enable-asset-metadata": cdkJson.assetMetadata,
  };
}

/**
 * A stand-in for the smoke-test bundle, in a temporary folder: the real handler is built
 * in infra/lambda/smoke-test and tested there; these tests only need an asset to point at.
 */
export function placeholderSmokeBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), "astrolens-smoke-bundle-"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "index.mjs"),
    "// test fixture only: the smoke-test handler is built from infra/lambda/smoke-test\n" +
      'export const handler = async () => ({ hookStatus: "FAILED", reason: "placeholder bundle" });\n',
  );
  return dir;
}

export interface Synthesized {
  outdir: string;
  stacks: Record<(typeof ENVIRONMENTS)[number], AstroLensStack>;
  templates: Record<(typeof ENVIRONMENTS)[number], Template>;
  json: Record<(typeof ENVIRONMENTS)[number], TemplateJson>;
}

/** Synthesizes every environment in-process, as `cdk synth` does, into a temporary folder. */
export function synthesizeAll(
  options: BuildOptions & { context?: Record<string, unknown> } = {},
): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), "astrolens-cdk-out-"));
  const app = new App({
    outdir,
    context: { ...cdkJsonContext(), ...options.context },
    analyticsReporting: false,
  });
  const built = buildApp(app, {
    smokeTestCodeDir: options.smokeTestCodeDir ?? placeholderSmokeBundle(),
    env: options.env,
  });
  app.synth();
  const byEnvironment = <T>(make: (stack: AstroLensStack) => T) =>
    Object.fromEntries(
      ENVIRONMENTS.map((environment) => {
        const stack = built.find((candidate) => candidate.names.environment === environment);
        if (!stack) throw new Error(`no stack for ${environment}`);
        return [environment, make(stack)];
      }),
    ) as Record<(typeof ENVIRONMENTS)[number], T>;
  const templates = byEnvironment((stack) => Template.fromStack(stack));
  return {
    outdir,
    stacks: byEnvironment((stack) => stack),
    templates,
    json: byEnvironment(
      (stack) => templates[stack.names.environment as (typeof ENVIRONMENTS)[number]].toJSON() as TemplateJson,
    ),
  };
}
