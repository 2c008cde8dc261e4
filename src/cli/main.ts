import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CloudWatchClient, DescribeAlarmsCommand, SetAlarmStateCommand } from "@aws-sdk/client-cloudwatch";
import { ECRClient } from "@aws-sdk/client-ecr";
import { S3Client } from "@aws-sdk/client-s3";
import { createClient } from "../aws/clients.js";
import { s3Downloader } from "../aws/s3.js";
import { deploy, environmentStatus, renderEnvironmentStatus, rollback } from "../deploy/entry.js";
import { environmentResources } from "../environment.js";
import { ConfigurationError, errorMessage } from "../errors.js";
import { createConsoleLogger, type Logger } from "../gh/logger.js";
import { parseImageReference, promoteImage } from "../image/promote.js";
import { evaluateScan } from "../image/scan-policy.js";
import { type PolicySettings, readPolicyFile, resolveScanPolicy } from "../image/scan-policy-file.js";
import { formatVerdictForConsole } from "../image/scan-summary.js";
import { parseTrivyReport } from "../image/trivy-report.js";
import { formatInventory, inspectEnvironment } from "../infra/inventory.js";
import { localTestUrl } from "../local/alb.js";
import { readLocalEnv } from "../local/env-file.js";
import { bootstrapLocalEnvironment, LOCAL_ENVIRONMENT } from "../local/environment.js";
import { localPaths } from "../local/paths.js";
import { localDown, localStatus, localUp } from "../local/stack.js";
import { TOOLKIT_VERSION } from "../version.js";
import { LOCAL_POLL_MS, loadGate, runLocalRelease } from "./release.js";

const USAGE = `astrolens-release ${TOOLKIT_VERSION} — release the AstroLens inference service

Usage:
  astrolens-release local up | down | status     start, stop or show the local AWS (up also
                                                 bootstraps the local environment from infra/)
  astrolens-release local bootstrap --env ENV    create another environment of infra/ in the local AWS
                                                 (e.g. staging, to rehearse a promotion)
  astrolens-release local alarm NAME --state ALARM|OK [--reason TEXT]
                                                 set an alarm in the local AWS (rehearse a rollback)
  astrolens-release status --env ENV [--json]    the environment's resources, its current release
                                                 and both targets' live state (exit 1 when a
                                                 resource is missing)
  astrolens-release release --env local [--model v2] [--sagemaker-strategy canary|linear|all-at-once]
                          [--dry-run] [--wait-bake] [--summary FILE]
                                                 build -> scan -> push -> gate -> deploy (ECS and
                                                 SageMaker as one release) in the local AWS
  astrolens-release deploy --env ENV --image URI@sha256:… [--model-manifest FILE]
                          [--sagemaker-strategy S] [--bake-minutes N] [--alarms A,B]
                          [--allow-alarms-in-alarm] [--wait-bake] [--dry-run] [--summary FILE]
                                                 release an already pushed digest (what the
                                                 deploy action does); exit 1 when rolled back
  astrolens-release resume --env ENV             continue the environment's in-flight release
  astrolens-release rollback --env ENV [--reason TEXT]
                                                 return both targets to the previous good release
  astrolens-release scan --report FILE [--policy FILE] [--waivers FILE] [--json]
                                                 apply the scan policy to a Trivy JSON report
                                                 (exit 1 when the gate fails)
  astrolens-release promote --source URI@DIGEST --to REPOSITORY --tag TAG [--tag TAG]
                                                 copy an image by digest, unchanged
  astrolens-release gate --candidate DIR|S3 --production DIR|S3 [--eval-set FILE]
                         [--ood-set FILE] [--detection-set FILE] [--policy FILE]
                         [--metrics-file FILE] [--json]
                                                 candidate vs production on the same data
                                                 (exit 1 when the verdict blocks the release)

Options:
  --debug      log every command and AWS detail
  --help       this text
`;

/** Runs the CLI; returns the exit status (0 ok, 1 gate failed or error, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const debug = rest.includes("--debug");
  const logger = createConsoleLogger({ debug });
  const args = rest.filter((arg) => arg !== "--debug");
  try {
    switch (command) {
      case "local":
        return await localCommand(args, logger);
      case "release":
        return await releaseCommand(args, logger);
      case "scan":
        return await scanCommand(args);
      case "promote":
        return await promoteCommand(args, logger);
      case "gate":
        return await gateCommand(args, logger);
      case "status":
        return await statusCommand(args);
      case "deploy":
        return await deployCommand(args, logger);
      case "resume":
        return await resumeCommand(args, logger);
      case "rollback":
        return await rollbackCommand(args, logger);
      case "--version":
        process.stdout.write(`${TOOLKIT_VERSION}\n`);
        return 0;
      case undefined:
      case "help":
      case "--help":
        process.stdout.write(USAGE);
        return command ? 0 : 2;
      default:
        logger.error(`unknown command "${command}": run astrolens-release --help`);
        return 2;
    }
  } catch (err) {
    logger.error(`astrolens-release ${command ?? ""}: ${errorMessage(err)}`);
    if (debug && err instanceof Error && err.stack) logger.debug(err.stack);
    return 1;
  }
}

async function localCommand(args: string[], logger: Logger): Promise<number> {
  const [verb] = args;
  if (verb === "alarm") return await localAlarmCommand(args.slice(1), logger);
  if (verb === "bootstrap") return await localBootstrapCommand(args.slice(1), logger);
  if (verb === "up") await localUp(logger);
  else if (verb === "down") await localDown(logger);
  else if (verb === "status") {
    for (const service of localStatus()) {
      process.stdout.write(
        `${service.name.padEnd(9)} ${service.state.padEnd(15)} ${service.url}${service.pid ? ` (pid ${service.pid})` : ""}\n`,
      );
    }
  } else {
    throw new ConfigurationError(
      `"local ${verb ?? ""}": expected local up, local down, local status, local bootstrap --env ENV or local alarm NAME --state ALARM|OK`,
    );
  }
  return 0;
}

/** Creates another environment of the CDK app in the local AWS (to rehearse a promotion). */
async function localBootstrapCommand(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args, options: { env: { type: "string" } } });
  if (!values.env) {
    throw new ConfigurationError("--env is required: astrolens-release local bootstrap --env staging");
  }
  const paths = localPaths();
  const result = await bootstrapLocalEnvironment(
    paths,
    { env: { ...process.env, ...readLocalEnv(paths.envFile) } },
    logger,
    values.env,
  );
  logger.info(`${result.stackName}: ${result.action}`);
  return 0;
}

/** Sets an alarm's state in the local AWS, as a metric breach would: rehearses a rollback. */
async function localAlarmCommand(args: string[], logger: Logger): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { state: { type: "string" }, reason: { type: "string" } },
  });
  const [name] = positionals;
  const state = values.state?.toUpperCase();
  if (!name || (state !== "ALARM" && state !== "OK")) {
    throw new ConfigurationError(
      "usage: astrolens-release local alarm NAME --state ALARM|OK [--reason TEXT] (alarm names: astrolens-release status --env local)",
    );
  }
  Object.assign(process.env, readLocalEnv(localPaths().envFile));
  const cloudwatch = createClient(CloudWatchClient);
  const found = await cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: [name] }));
  if ((found.MetricAlarms?.length ?? 0) + (found.CompositeAlarms?.length ?? 0) === 0) {
    throw new ConfigurationError(
      `alarm "${name}" does not exist in the local AWS: see the alarms with astrolens-release status --env local`,
    );
  }
  await cloudwatch.send(
    new SetAlarmStateCommand({
      AlarmName: name,
      StateValue: state,
      StateReason: values.reason ?? `set to ${state} by astrolens-release local alarm`,
    }),
  );
  logger.info(`alarm ${name}: ${state}`);
  return 0;
}

/** The environment's resources as AWS reports them now. */
async function statusCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { env: { type: "string" }, json: { type: "boolean", default: false } },
  });
  if (!values.env) throw new ConfigurationError("--env is required: astrolens-release status --env local");
  const resources = environmentResources(values.env);
  awsFor(values.env);
  const [inventory, release] = await Promise.all([
    inspectEnvironment(resources),
    environmentStatus(values.env),
  ]);
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ environment: values.env, resources: inventory, release }, null, 2)}\n`
      : `environment ${values.env}\n${formatInventory(inventory)}\n\n${renderEnvironmentStatus(release)}\n`,
  );
  return inventory.every((item) => item.present) ? 0 : 1;
}

async function releaseCommand(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: "string" },
      model: { type: "string" },
      "sagemaker-strategy": { type: "string" },
      "dry-run": { type: "boolean", default: false },
      "wait-bake": { type: "boolean", default: false },
      summary: { type: "string" },
    },
  });
  if (!values.env) throw new ConfigurationError("--env is required: astrolens-release release --env local");
  const outcome = await runLocalRelease({
    env: values.env,
    ...(values.model && { model: values.model }),
    ...(values["sagemaker-strategy"] && { sagemakerStrategy: values["sagemaker-strategy"] }),
    dryRun: values["dry-run"],
    returnAtBake: values["wait-bake"],
    logger,
  });
  if (values.summary) writeFileSync(values.summary, outcome.summary.toMarkdown());
  const { outputs } = outcome.deployed;
  process.stdout.write(`\n${formatVerdictForConsole(outcome.scan.verdict)}\n`);
  process.stdout.write(`\nimage ${outcome.pushed.imageUri}\n`);
  process.stdout.write(`gate: ${outcome.gate.comparison.verdict}\n`);
  process.stdout.write(
    `release ${outputs["release-id"] || "(none)"}: ${outputs.outcome} — ${outputs.reason}\n`,
  );
  process.stdout.write(
    `stages: ${outcome.timings.map((t) => `${t.stage} ${t.seconds.toFixed(1)} s`).join(", ")}\n`,
  );
  return deployExitCode(outputs.outcome);
}

/** 0 when the environment is where the command meant it to be; 1 when it had to go back. */
function deployExitCode(outcome: string): number {
  return ["succeeded", "planned", "baking", "in-progress", "unchanged"].includes(outcome) ? 0 : 1;
}

/** Loads the local AWS's settings for `--env local`; other environments use the ambient AWS credentials. */
function awsFor(environment: string): void {
  if (environment === LOCAL_ENVIRONMENT) Object.assign(process.env, readLocalEnv(localPaths().envFile));
}

/** The deploy action's work from a terminal: one digest to one environment, both targets. */
async function deployCommand(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      env: { type: "string" },
      image: { type: "string" },
      "model-manifest": { type: "string" },
      "sagemaker-strategy": { type: "string" },
      "bake-minutes": { type: "string" },
      alarms: { type: "string" },
      "allow-alarms-in-alarm": { type: "boolean", default: false },
      "wait-bake": { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      summary: { type: "string" },
    },
  });
  if (!values.env || !values.image) {
    throw new ConfigurationError(
      "--env and --image are required: astrolens-release deploy --env local --image URI@sha256:…",
    );
  }
  awsFor(values.env);
  const local = values.env === LOCAL_ENVIRONMENT;
  const outcome = await deploy({
    environment: values.env,
    image: values.image,
    ...(values["model-manifest"] && { modelManifest: values["model-manifest"] }),
    ...(values["sagemaker-strategy"] && { sagemakerStrategy: values["sagemaker-strategy"] }),
    ...(values["bake-minutes"] && { bakeMinutes: values["bake-minutes"] }),
    ...(values.alarms && { alarms: values.alarms }),
    allowAlarmsInAlarm: values["allow-alarms-in-alarm"],
    wait: values["wait-bake"] ? "bake" : "complete",
    dryRun: values["dry-run"],
    ...(local && {
      testUrl: await localTestUrl(environmentResources(values.env)),
      pollIntervalMs: LOCAL_POLL_MS,
    }),
    logger,
  });
  if (values.summary) writeFileSync(values.summary, outcome.summary.toMarkdown());
  process.stdout.write(
    `release ${outcome.outputs["release-id"] || "(none)"}: ${outcome.outputs.outcome} — ${outcome.outputs.reason}\n`,
  );
  return deployExitCode(outcome.outputs.outcome);
}

/** Continues an environment's in-flight release (after --wait-bake, or a run that died). */
async function resumeCommand(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args, options: { env: { type: "string" } } });
  if (!values.env) throw new ConfigurationError("--env is required: astrolens-release resume --env local");
  awsFor(values.env);
  const outcome = await deploy({
    environment: values.env,
    image: "",
    resume: true,
    ...(values.env === LOCAL_ENVIRONMENT && { pollIntervalMs: LOCAL_POLL_MS }),
    logger,
  });
  process.stdout.write(
    `release ${outcome.outputs["release-id"] || "(none)"}: ${outcome.outputs.outcome} — ${outcome.outputs.reason}\n`,
  );
  return deployExitCode(outcome.outputs.outcome);
}

async function rollbackCommand(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args, options: { env: { type: "string" }, reason: { type: "string" } } });
  if (!values.env) throw new ConfigurationError("--env is required: astrolens-release rollback --env local");
  awsFor(values.env);
  const outcome = await rollback({
    environment: values.env,
    ...(values.reason && { reason: values.reason }),
    ...(values.env === LOCAL_ENVIRONMENT && { pollIntervalMs: LOCAL_POLL_MS }),
    logger,
  });
  process.stdout.write(
    `${outcome.outputs["release-id"] || "(none)"}: ${outcome.outputs.outcome} — ${outcome.outputs.reason}\n`,
  );
  return outcome.outputs.outcome === "failed" ? 1 : 0;
}

async function scanCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      report: { type: "string" },
      policy: { type: "string" },
      waivers: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.report) throw new ConfigurationError("--report is required: the path of a Trivy JSON report");
  const settings: PolicySettings = values.policy ? readPolicyFile(values.policy) : {};
  if (values.waivers) settings.waiversFile = values.waivers;
  let text: string;
  try {
    text = readFileSync(values.report, "utf8");
  } catch {
    throw new ConfigurationError(
      `--report: ${values.report} cannot be read; give the path of a Trivy JSON report`,
    );
  }
  const verdict = evaluateScan(parseTrivyReport(text, values.report), await resolveScanPolicy(settings));
  process.stdout.write(
    values.json ? `${JSON.stringify(verdict, null, 2)}\n` : `${formatVerdictForConsole(verdict)}\n`,
  );
  return verdict.passed ? 0 : 1;
}

async function promoteCommand(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      source: { type: "string" },
      to: { type: "string" },
      tag: { type: "string", multiple: true },
    },
  });
  if (!values.source || !values.to) throw new ConfigurationError("--source and --to are required");
  // The CLI promotes within the local AWS; between accounts, use the promote-image action.
  Object.assign(process.env, readLocalEnv(localPaths().envFile));
  const ecr = createClient(ECRClient);
  const promoted = await promoteImage({
    source: parseImageReference(values.source, "source"),
    sourceEcr: ecr,
    destinationEcr: ecr,
    destinationRepository: values.to,
    tags: values.tag ?? [],
    logger,
  });
  process.stdout.write(`${promoted.imageUri}\n`);
  return 0;
}

async function gateCommand(args: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      candidate: { type: "string" },
      production: { type: "string" },
      "eval-set": { type: "string", default: "test/fixtures/eval/synthetic/manifest.json" },
      "ood-set": { type: "string" },
      "detection-set": { type: "string" },
      policy: { type: "string", default: ".astrolens/gate-policy.yaml" },
      "metrics-file": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.candidate || !values.production) {
    throw new ConfigurationError("--candidate and --production are required: model folders or s3:// URIs");
  }
  const gate = await loadGate();
  const usesS3 = [values.candidate, values.production].some((source) => source.startsWith("s3://"));
  const result = await gate.runGate({
    candidate: values.candidate,
    production: values.production,
    sets: {
      classification: values["eval-set"],
      ...(values["ood-set"] && { ood: values["ood-set"] }),
      ...(values["detection-set"] && { detection: values["detection-set"] }),
    },
    policyFile: values.policy,
    ...(values["metrics-file"] && { metricsFile: values["metrics-file"] }),
    ...(usesS3 && { download: s3Downloader(createClient(S3Client)) }),
    logger,
  });
  process.stdout.write(values.json ? result.json : result.markdown);
  return result.comparison.blocksRelease ? 1 : 0;
}
