/**
 * The deploy stage's front door: the one set of functions both the actions
 * (actions/deploy, actions/rollback) and the CLI call.
 *
 *   deploy(options: DeployOptions): Promise<DeployOutcome>
 *     options: { environment, image (unless resume), modelManifest?, sagemakerStrategy?, bakeMinutes?,
 *                alarms?, allowAlarmsInAlarm?, smokeFunction?, wait?: "complete" | "bake",
 *                resume?, dryRun?, scanVerdict?, gateMetricsFile?, testUrl?,
 *                pollIntervalMs?, aws?: AwsOptions, logger }
 *     -> { result: ReleaseResult, summary: Summary, outputs: DeployOutputs }
 *
 *   rollback(options: RollbackOptions): Promise<RollbackOutcome>
 *     options: { environment, reason?, pollIntervalMs?, aws?, logger }
 *     -> { result: ReleaseResult, summary: Summary, outputs: RollbackOutputs }
 *
 *   environmentStatus(environment: string, aws?: AwsOptions): Promise<EnvironmentStatus>
 *   renderEnvironmentStatus(status: EnvironmentStatus): string   (text for a terminal)
 *
 * Option names are the action inputs in camelCase (`bake-minutes` -> `bakeMinutes`);
 * numbers and booleans may also be given as the strings an action input holds. A bad
 * value is a ConfigurationError that names the input (kebab-case) and says how to fix
 * it; nothing in AWS has changed when one is thrown. The caller loads the AWS settings
 * (for the local AWS: `.local/env` into process.env, or `aws.env`).
 */
import { readFileSync } from "node:fs";
import { CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeServiceDeploymentsCommand,
  DescribeServicesCommand,
  ECSClient,
  ListServiceDeploymentsCommand,
} from "@aws-sdk/client-ecs";
import { DescribeEndpointCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { contractFromManifestText } from "../../infra/lambda/smoke-test/src/contract.js";
import type { SmokeContract } from "../../infra/lambda/smoke-test/src/types.js";
import { type AwsOptions, createClient } from "../aws/clients.js";
import { type EnvironmentResources, environmentResources, releaseAlarms } from "../environment.js";
import { ConfigurationError, errorMessage } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { releaseSummary, Summary } from "../gh/summary.js";
import { localTestUrl } from "../local/alb.js";
import { createAwsDrivers, type ReleaseDrivers } from "./drivers.js";
import { createDynamoLedger, type LockItem, type ReleaseRecord } from "./ledger.js";
import { type Provenance, renderPlan, SAGEMAKER_STRATEGIES, type SageMakerStrategy } from "./plan.js";
import { type CoordinatorOptions, type ReleaseResult, resumeRelease, runRelease } from "./release.js";
import { rollbackEnvironment } from "./rollback.js";

// ---------------------------------------------------------------------------------
// Inputs

export interface DeployOptions {
  environment: string;
  /** `<registry>/<repository>@sha256:<64 hex>` (push-image's image-uri); not needed to resume. */
  image?: string;
  /** Path of the model's manifest.json; default service/models/v2/manifest.json. */
  modelManifest?: string;
  sagemakerStrategy?: SageMakerStrategy | string;
  /** Empty/undefined keeps the service's own bakeTimeInMinutes. */
  bakeMinutes?: number | string;
  /** Names, or one comma/newline-separated string; empty means the environment's release alarms. */
  alarms?: string[] | string;
  allowAlarmsInAlarm?: boolean | string;
  smokeFunction?: string;
  /** complete: until the release ends; bake: return once the bake starts. */
  wait?: "complete" | "bake" | string;
  resume?: boolean | string;
  dryRun?: boolean | string;
  scanVerdict?: string;
  gateMetricsFile?: string;
  /** Where the smoke hook reaches ECS green; default: the service's test listener. */
  testUrl?: string;
  /** How often the targets and alarms are read (default 15 s). */
  pollIntervalMs?: number;
  aws?: AwsOptions;
  logger: Logger;
  /** Tests only: drivers other than the AWS ones, and coordinator knobs. */
  coordinator?: Partial<Omit<CoordinatorOptions, "logger">>;
}

export interface RollbackOptions {
  environment: string;
  reason?: string;
  pollIntervalMs?: number;
  aws?: AwsOptions;
  logger: Logger;
  coordinator?: Partial<Omit<CoordinatorOptions, "logger">>;
}

/** What the deploy action outputs (action.yml), also for the CLI. */
export type DeployOutputs = {
  "release-id": string;
  /** succeeded, rolled-back, failed, baking (wait: bake) or planned (dry run). */
  outcome: "succeeded" | "rolled-back" | "failed" | "baking" | "planned" | "in-progress";
  reason: string;
  "task-definition-arn": string;
  "endpoint-config": string;
};

export type RollbackOutputs = {
  "release-id": string;
  outcome: "rolled-back" | "unchanged" | "failed" | "in-progress";
  reason: string;
};

export interface DeployOutcome {
  result: ReleaseResult;
  summary: Summary;
  outputs: DeployOutputs;
}

export interface RollbackOutcome {
  result: ReleaseResult;
  summary: Summary;
  outputs: RollbackOutputs;
}

/** Option name -> the action input it stands for, so messages name what the user typed. */
const INPUT_NAMES: Record<string, string> = {
  environment: "environment",
  image: "image",
  modelManifest: "model-manifest",
  sagemakerStrategy: "sagemaker-strategy",
  bakeMinutes: "bake-minutes",
  alarms: "alarms",
  allowAlarmsInAlarm: "allow-alarms-in-alarm",
  smokeFunction: "smoke-function",
  wait: "wait",
  resume: "resume",
  dryRun: "dry-run",
  scanVerdict: "scan-verdict",
  gateMetricsFile: "gate-metrics-file",
  testUrl: "test-url",
  pollIntervalMs: "poll-interval-ms",
  reason: "reason",
};

const emptyToUndefined = (value: unknown) =>
  typeof value === "string" && value.trim() === ""
    ? undefined
    : typeof value === "string"
      ? value.trim()
      : value;

const flag = (fallback: boolean) =>
  z.preprocess(
    (v) => (typeof v === "boolean" ? String(v) : emptyToUndefined(v)),
    z
      .enum(["true", "false"], { message: 'expected "true" or "false"' })
      .default(fallback ? "true" : "false")
      .transform((v) => v === "true"),
  );

const environmentName = z
  .string({ message: "is required: the environment to release to, e.g. staging" })
  .trim()
  .min(1, "is required: the environment to release to, e.g. staging");

const deploySchema = z
  .object({
    environment: environmentName,
    // Required unless `resume` (the record names the image): checked below.
    image: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .regex(
          /^[^/@\s]+\/[^@\s]+@sha256:[0-9a-f]{64}$/,
          "expected <registry>/<repository>@sha256:<64 hex> (push-image's image-uri output); tags are refused because a tag can move",
        )
        .optional(),
    ),
    modelManifest: z.preprocess(emptyToUndefined, z.string().default("service/models/v2/manifest.json")),
    sagemakerStrategy: z.preprocess(
      emptyToUndefined,
      z
        .enum(SAGEMAKER_STRATEGIES as [SageMakerStrategy, ...SageMakerStrategy[]], {
          message: `expected one of ${SAGEMAKER_STRATEGIES.join(", ")}`,
        })
        .default("canary"),
    ),
    bakeMinutes: z.preprocess(
      emptyToUndefined,
      z.coerce
        .number({ message: "expected a whole number of minutes" })
        .int("expected a whole number of minutes")
        .min(0, "expected 0 to 1440 minutes (ECS bakeTimeInMinutes)")
        .max(1440, "expected 0 to 1440 minutes (ECS bakeTimeInMinutes)")
        .optional(),
    ),
    alarms: z.preprocess(
      (v) => (typeof v === "string" ? splitNames(v) : v),
      z.array(z.string().trim().min(1, "an alarm name is empty")).default([]),
    ),
    allowAlarmsInAlarm: flag(false),
    smokeFunction: z.preprocess(emptyToUndefined, z.string().optional()),
    wait: z.preprocess(
      emptyToUndefined,
      z.enum(["complete", "bake"], { message: 'expected "complete" or "bake"' }).default("complete"),
    ),
    resume: flag(false),
    dryRun: flag(false),
    scanVerdict: z.preprocess(
      emptyToUndefined,
      z
        .enum(["pass", "fail"], { message: 'expected scan-image\'s verdict, "pass" or "fail"' })
        .refine((v) => v === "pass", {
          message:
            "the image scan failed, so this image may not be released; fix the findings (or waive them with a reason and an expiry) and scan again",
        })
        .optional(),
    ),
    gateMetricsFile: z.preprocess(emptyToUndefined, z.string().optional()),
    testUrl: z.preprocess(
      emptyToUndefined,
      z
        .string()
        .regex(
          /^https?:\/\/[^/\s]+/,
          "expected an http(s) URL of the test listener, e.g. http://alb-dns:8080",
        )
        .optional(),
    ),
    pollIntervalMs: z.preprocess(
      emptyToUndefined,
      z.coerce
        .number()
        .int()
        .min(50, "expected at least 50 ms")
        .max(600_000, "expected at most 10 min")
        .optional(),
    ),
  })
  .superRefine((input, ctx) => {
    if (!input.resume && !input.image) {
      ctx.addIssue({
        code: "custom",
        path: ["image"],
        message:
          "is required to start a release: the image by digest, <registry>/<repository>@sha256:<64 hex> (only resume: true goes without)",
      });
    }
  });

type DeployInputs = z.infer<typeof deploySchema>;

const rollbackSchema = z.object({
  environment: environmentName,
  reason: z.preprocess(emptyToUndefined, z.string().default("manual rollback")),
  pollIntervalMs: deploySchema.shape.pollIntervalMs,
});

function splitNames(value: string): string[] {
  return value
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Parses typed options with a schema; every problem at once, each naming its input. */
function parseOptions<S extends z.ZodObject>(schema: S, options: object): z.infer<S> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) raw[key] = (options as Record<string, unknown>)[key];
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? "?");
    const given = raw[key];
    const seen = given === undefined || given === "" ? "it was not given" : `got ${JSON.stringify(given)}`;
    return `input "${INPUT_NAMES[key] ?? key}": ${issue.message} (${seen})`;
  });
  throw new ConfigurationError(`nothing was changed: ${problems.join("; ")}`);
}

/** The smoke contract of the manifest file (what the smoke test checks, and the model's identity). */
export function readModelContract(path: string): SmokeContract {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new ConfigurationError(
      `input "model-manifest": ${path} cannot be read (${errorMessage(err)}); pass the manifest.json of the model baked into the image, e.g. service/models/v2/manifest.json`,
    );
  }
  try {
    return contractFromManifestText(bytes, path);
  } catch (err) {
    throw new ConfigurationError(
      `input "model-manifest": ${path} is not a valid model manifest: ${errorMessage(err)}`,
    );
  }
}

/** Bigger metrics than this are kept as their headline only: a DynamoDB item holds 400 KB. */
const MAX_METRICS_BYTES = 64 * 1024;

/** The accuracy gate's verdict and metrics, from its metrics JSON (src/gate/report.ts toJson). */
export function readGateMetrics(path: string): NonNullable<Provenance["gate"]> {
  let metrics: Record<string, unknown>;
  try {
    metrics = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigurationError(
      `input "gate-metrics-file": ${path} is not readable JSON (${errorMessage(err)}); pass accuracy-gate's metrics-file output`,
    );
  }
  if (typeof metrics?.verdict !== "string" || typeof metrics.blocksRelease !== "boolean") {
    throw new ConfigurationError(
      `input "gate-metrics-file": ${path} has no "verdict" and "blocksRelease": it is not accuracy-gate's metrics file`,
    );
  }
  const kept =
    JSON.stringify(metrics).length <= MAX_METRICS_BYTES
      ? metrics
      : Object.fromEntries(Object.entries(metrics).filter(([, v]) => v === null || typeof v !== "object"));
  return { verdict: metrics.verdict, blocksRelease: metrics.blocksRelease, metrics: kept };
}

// ---------------------------------------------------------------------------------
// deploy

/**
 * Releases one image + model to an environment's ECS service and SageMaker endpoint as
 * one release (src/deploy/release.ts), or resumes the one in flight (`resume`), or
 * only plans it (`dryRun`). Returns the coordinator's result, the job summary (the
 * ledger record) and the action's outputs.
 */
export async function deploy(options: DeployOptions): Promise<DeployOutcome> {
  const input = parseOptions(deploySchema, options);
  const resources = environmentResources(input.environment);
  const { logger } = options;
  const drivers = options.coordinator?.drivers ?? createAwsDrivers(resources, options.aws);
  const coordinator: CoordinatorOptions = {
    ...options.coordinator,
    drivers,
    logger,
    ...(input.pollIntervalMs !== undefined ? { pollIntervalMs: input.pollIntervalMs } : {}),
    returnAtBake: input.wait === "bake",
  };

  if (input.resume) {
    const result = await resumeRelease(resources.environment, coordinator);
    return deployOutcome(result, resources, options.aws);
  }

  const contract = readModelContract(input.modelManifest);
  const provenance: Provenance = {
    ...(input.scanVerdict ? { scanVerdict: input.scanVerdict } : {}),
    ...(input.gateMetricsFile ? { gate: readGateMetrics(input.gateMetricsFile) } : {}),
  };
  // With injected drivers (tests) nothing else may reach AWS: the coordinator's default applies.
  const bakeMinutes =
    input.bakeMinutes ??
    (options.coordinator?.drivers ? undefined : await serviceBakeMinutes(resources, options.aws));
  const alarmNames = input.alarms;
  const testUrl =
    input.testUrl ??
    (options.coordinator?.drivers ? undefined : await localAlbTestUrl(resources, options.aws));
  const result = await runRelease(
    {
      environment: resources.environment,
      imageUri: input.image ?? "",
      model: contract,
      strategy: input.sagemakerStrategy,
      ...(bakeMinutes !== undefined ? { bakeMinutes } : {}),
      ...(alarmNames.length > 0 ? { alarmNames } : {}),
      // "allow" is for alarms the release watches; which of them are in ALARM is the plan's to see.
      ...(input.allowAlarmsInAlarm
        ? { allowAlarms: alarmNames.length > 0 ? alarmNames : releaseAlarms(resources) }
        : {}),
      ...(input.smokeFunction ? { smokeFunction: input.smokeFunction } : {}),
      ...(testUrl ? { testUrl } : {}),
      provenance,
    },
    { ...coordinator, dryRun: input.dryRun },
  );
  return deployOutcome(result, resources, options.aws, input);
}

/**
 * Against the local AWS (`AWS_ENDPOINT_URL` set and answering the local ALB's route), the
 * local port that serves the test listener: moto's ALB DNS names do not resolve, so the
 * smoke hook could not reach green through them. Against AWS: undefined, and the plan
 * takes the ALB's DNS name and test port.
 */
async function localAlbTestUrl(
  resources: EnvironmentResources,
  aws?: AwsOptions,
): Promise<string | undefined> {
  if (!(aws?.env ?? process.env).AWS_ENDPOINT_URL) return undefined;
  // Another endpoint (say, another emulator) has no local ALB: the plan's default stands.
  return localTestUrl(resources, aws).catch(() => undefined);
}

/**
 * The bake for an empty `bake-minutes`: the service's own bakeTimeInMinutes (the
 * stack's, or the last release's that stood: a rollback restores the configuration it
 * found), else 10 minutes.
 */
async function serviceBakeMinutes(resources: EnvironmentResources, aws?: AwsOptions): Promise<number> {
  try {
    const described = await createClient(ECSClient, aws).send(
      new DescribeServicesCommand({ cluster: resources.cluster, services: [resources.service] }),
    );
    return described.services?.[0]?.deploymentConfiguration?.bakeTimeInMinutes ?? 10;
  } catch {
    // The preflight reports a missing cluster or service, with its fix.
    return 10;
  }
}

async function deployOutcome(
  result: ReleaseResult,
  resources: EnvironmentResources,
  aws: AwsOptions | undefined,
  input?: DeployInputs,
): Promise<DeployOutcome> {
  const record = result.record;
  let outcome: DeployOutputs["outcome"];
  switch (result.status) {
    case "planned":
      outcome = "planned";
      break;
    case "no-op":
      // The environment already serves exactly what was asked for.
      outcome = "succeeded";
      break;
    case "in-progress":
      outcome = record?.bake?.detachedAt ? "baking" : "in-progress";
      break;
    default:
      outcome = result.status;
  }
  // What each target serves after this run: the plan's live state for a dry run or a
  // no-op, the record's version for a release that ended (or is baking), AWS's word
  // when it failed or is still moving.
  let taskDefinitionArn = "";
  let endpointConfig = "";
  if (result.plan && (outcome === "planned" || result.status === "no-op")) {
    taskDefinitionArn = result.plan.ecs.current.taskDefinitionArn;
    endpointConfig = result.plan.sagemaker.current.endpointConfigName;
  } else if (record && (record.outcome === "succeeded" || outcome === "baking")) {
    taskDefinitionArn = record.ecs.taskDefinitionArn ?? "";
    endpointConfig = record.sagemaker.endpointConfigName;
  } else if (record && record.outcome === "rolled-back") {
    taskDefinitionArn = record.ecs.previousTaskDefinitionArn;
    endpointConfig = record.sagemaker.previousEndpointConfigName;
  } else if (record) {
    const live = await liveTargets(resources, aws);
    taskDefinitionArn = live.taskDefinitionArn;
    endpointConfig = live.endpointConfig;
  }
  const summary = record
    ? releaseSummary(record)
    : new Summary()
        .heading(`Release plan for ${resources.environment}${input?.dryRun ? " (dry run)" : ""}`)
        .paragraph(result.reason)
        .code(result.plan ? renderPlan(result.plan) : result.reason, "diff");
  if (record && result.status === "no-op") summary.paragraph(result.reason);
  return {
    result,
    summary,
    outputs: {
      "release-id": result.releaseId ?? record?.releaseId ?? "",
      outcome,
      reason: result.reason,
      "task-definition-arn": taskDefinitionArn,
      "endpoint-config": endpointConfig,
    },
  };
}

async function liveTargets(
  resources: EnvironmentResources,
  aws?: AwsOptions,
): Promise<{ taskDefinitionArn: string; endpointConfig: string }> {
  const [service, endpoint] = await Promise.allSettled([
    createClient(ECSClient, aws).send(
      new DescribeServicesCommand({ cluster: resources.cluster, services: [resources.service] }),
    ),
    createClient(SageMakerClient, aws).send(
      new DescribeEndpointCommand({ EndpointName: resources.endpoint }),
    ),
  ]);
  return {
    taskDefinitionArn:
      service.status === "fulfilled" ? (service.value.services?.[0]?.taskDefinition ?? "") : "",
    endpointConfig: endpoint.status === "fulfilled" ? (endpoint.value.EndpointConfigName ?? "") : "",
  };
}

// ---------------------------------------------------------------------------------
// rollback

/**
 * Returns an environment to its previous good release on both targets (or rolls back
 * the release in flight whose run is gone), through the coordinator's rollback.
 */
export async function rollback(options: RollbackOptions): Promise<RollbackOutcome> {
  const input = parseOptions(rollbackSchema, options);
  const resources = environmentResources(input.environment);
  const drivers: ReleaseDrivers = options.coordinator?.drivers ?? createAwsDrivers(resources, options.aws);
  const result = await rollbackEnvironment(resources.environment, {
    ...options.coordinator,
    drivers,
    logger: options.logger,
    ...(input.pollIntervalMs !== undefined ? { pollIntervalMs: input.pollIntervalMs } : {}),
    reason: input.reason,
  });
  const record = result.record;
  const unchanged =
    result.status === "rolled-back" &&
    record?.ecs.rollback?.action === "unchanged" &&
    record.sagemaker.rollback?.result === "unchanged";
  const outcome: RollbackOutputs["outcome"] = unchanged
    ? "unchanged"
    : result.status === "rolled-back" || result.status === "failed" || result.status === "in-progress"
      ? result.status
      : "failed";
  return {
    result,
    summary: record ? releaseSummary(record) : new Summary().paragraph(result.reason),
    outputs: { "release-id": result.releaseId ?? "", outcome, reason: result.reason },
  };
}

// ---------------------------------------------------------------------------------
// status

export interface EnvironmentStatus {
  environment: string;
  /** The lock, when a release holds the environment. */
  lock?: LockItem;
  /** The in-flight release (the lock's holder), else the newest record. */
  release?: ReleaseRecord;
  /** The newest release that succeeded (what a rollback returns from). */
  lastSucceeded?: ReleaseRecord;
  ecs: {
    service: string;
    taskDefinitionArn?: string;
    deploymentController?: string;
    strategy?: string;
    bakeTimeInMinutes?: number;
    /** A service deployment that has not finished. */
    inFlight?: { arn: string; status: string; lifecycleStage?: string; targetRevisionArn?: string };
    /** The newest service deployment, finished or not. */
    latest?: { arn: string; status: string; statusReason?: string };
    error?: string;
  };
  sagemaker: {
    endpoint: string;
    status?: string;
    endpointConfigName?: string;
    pendingEndpointConfigName?: string;
    pendingStatus?: string[];
    failureReason?: string;
    error?: string;
  };
  alarms: { name: string; state: string; reason: string; updatedAt?: string }[];
  alarmsError?: string;
  ledgerError?: string;
}

const UNFINISHED = ["PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"];

/**
 * The environment as it is now: the release record (in flight, or the last one) and
 * both targets' live state from AWS. Each part is read on its own, so a missing
 * resource shows as an error on its line instead of hiding the rest.
 */
export async function environmentStatus(environment: string, aws?: AwsOptions): Promise<EnvironmentStatus> {
  const resources = environmentResources(environment);
  const ecs = createClient(ECSClient, aws);
  const sm = createClient(SageMakerClient, aws);
  const cloudwatch = createClient(CloudWatchClient, aws);
  const ledger = createDynamoLedger(
    DynamoDBDocumentClient.from(createClient(DynamoDBClient, aws), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    resources.ledgerTable,
  );
  const target = { cluster: resources.cluster, service: resources.service };

  const [ledgerPart, ecsPart, smPart, alarmsPart] = await Promise.allSettled([
    (async () => {
      const [lock, records] = await Promise.all([
        ledger.readLock(environment),
        ledger.listRecords(environment, 20),
      ]);
      const held = lock ? await ledger.getRecord(environment, lock.holder) : undefined;
      return {
        lock,
        release: held ?? records[0],
        lastSucceeded: records.find((r) => r.kind === "release" && r.outcome === "succeeded"),
      };
    })(),
    (async () => {
      const described = await ecs.send(
        new DescribeServicesCommand({ cluster: target.cluster, services: [target.service] }),
      );
      const service = described.services?.[0];
      if (!service || service.status === "INACTIVE") {
        throw new Error(`service ${target.service} does not exist in cluster ${target.cluster}`);
      }
      const listed = await ecs.send(
        new ListServiceDeploymentsCommand({
          cluster: target.cluster,
          service: target.service,
          maxResults: 20,
        }),
      );
      const newest = [...(listed.serviceDeployments ?? [])].sort(
        (a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0),
      );
      const open = newest.find((d) => UNFINISHED.includes(d.status ?? ""));
      let stage: string | undefined;
      if (open?.serviceDeploymentArn) {
        const detail = await ecs.send(
          new DescribeServiceDeploymentsCommand({ serviceDeploymentArns: [open.serviceDeploymentArn] }),
        );
        stage = detail.serviceDeployments?.[0]?.lifecycleStage;
      }
      const latest = newest[0];
      return {
        service: target.service,
        ...(service.taskDefinition ? { taskDefinitionArn: service.taskDefinition } : {}),
        deploymentController: service.deploymentController?.type ?? "ECS",
        ...(service.deploymentConfiguration?.strategy
          ? { strategy: service.deploymentConfiguration.strategy }
          : {}),
        ...(service.deploymentConfiguration?.bakeTimeInMinutes !== undefined
          ? { bakeTimeInMinutes: service.deploymentConfiguration.bakeTimeInMinutes }
          : {}),
        ...(open?.serviceDeploymentArn
          ? {
              inFlight: {
                arn: open.serviceDeploymentArn,
                status: open.status ?? "?",
                ...(stage ? { lifecycleStage: stage } : {}),
                ...(open.targetServiceRevisionArn
                  ? { targetRevisionArn: open.targetServiceRevisionArn }
                  : {}),
              },
            }
          : {}),
        ...(latest?.serviceDeploymentArn
          ? {
              latest: {
                arn: latest.serviceDeploymentArn,
                status: latest.status ?? "?",
                ...(latest.statusReason ? { statusReason: latest.statusReason } : {}),
              },
            }
          : {}),
      };
    })(),
    sm.send(new DescribeEndpointCommand({ EndpointName: resources.endpoint })),
    cloudwatch.send(new DescribeAlarmsCommand({ AlarmNames: Object.values(resources.alarms) })),
  ]);

  const status: EnvironmentStatus = {
    environment,
    ecs:
      ecsPart.status === "fulfilled"
        ? ecsPart.value
        : { service: target.service, error: errorMessage(ecsPart.reason) },
    sagemaker:
      smPart.status === "fulfilled"
        ? {
            endpoint: resources.endpoint,
            ...(smPart.value.EndpointStatus ? { status: smPart.value.EndpointStatus } : {}),
            ...(smPart.value.EndpointConfigName
              ? { endpointConfigName: smPart.value.EndpointConfigName }
              : {}),
            ...(smPart.value.PendingDeploymentSummary?.EndpointConfigName
              ? { pendingEndpointConfigName: smPart.value.PendingDeploymentSummary.EndpointConfigName }
              : {}),
            ...(smPart.value.PendingDeploymentSummary
              ? {
                  pendingStatus: (smPart.value.PendingDeploymentSummary.ProductionVariants ?? []).flatMap(
                    (v) =>
                      (v.VariantStatus ?? []).map(
                        (s) => `${s.Status}${s.StatusMessage ? ` ${s.StatusMessage}` : ""}`,
                      ),
                  ),
                }
              : {}),
            ...(smPart.value.FailureReason ? { failureReason: smPart.value.FailureReason } : {}),
          }
        : { endpoint: resources.endpoint, error: errorMessage(smPart.reason) },
    alarms:
      alarmsPart.status === "fulfilled"
        ? [...(alarmsPart.value.MetricAlarms ?? []), ...(alarmsPart.value.CompositeAlarms ?? [])].map(
            (a) => ({
              name: a.AlarmName ?? "",
              state: a.StateValue ?? "INSUFFICIENT_DATA",
              reason: a.StateReason ?? "",
              ...(a.StateUpdatedTimestamp ? { updatedAt: a.StateUpdatedTimestamp.toISOString() } : {}),
            }),
          )
        : [],
  };
  if (alarmsPart.status === "rejected") status.alarmsError = errorMessage(alarmsPart.reason);
  if (ledgerPart.status === "fulfilled") {
    if (ledgerPart.value.lock) status.lock = ledgerPart.value.lock;
    if (ledgerPart.value.release) status.release = ledgerPart.value.release;
    if (ledgerPart.value.lastSucceeded) status.lastSucceeded = ledgerPart.value.lastSucceeded;
  } else {
    status.ledgerError = errorMessage(ledgerPart.reason);
  }
  return status;
}

/** The status as a terminal shows it. */
export function renderEnvironmentStatus(status: EnvironmentStatus): string {
  const lines: string[] = [`environment ${status.environment}`];
  const r = status.release;
  if (status.ledgerError) lines.push(`release    (ledger unreadable: ${status.ledgerError})`);
  else if (!r) lines.push("release    none recorded");
  else {
    const inFlight = r.outcome === "in-progress";
    lines.push(
      `release    ${r.releaseId} (${r.kind}) ${inFlight ? `IN FLIGHT at stage ${r.stage}` : r.outcome}`,
      `           ${r.reason}`,
      r.kind === "rollback"
        ? `           from image ${r.imageUri || "—"} (model ${r.model.version}) back to ${r.ecs.previousTaskDefinitionArn} and ${r.sagemaker.previousEndpointConfigName}`
        : `           image ${r.imageUri || "—"}, model ${r.model.version}`,
    );
    if (status.lock) {
      lines.push(
        `           lock held by ${status.lock.holder}, heartbeat ${status.lock.heartbeatAt}${status.lock.detached ? " (detached at the bake: resume to finish)" : ""}`,
      );
    }
  }
  if (status.lastSucceeded && status.lastSucceeded.releaseId !== r?.releaseId) {
    lines.push(`last good  ${status.lastSucceeded.releaseId} (${status.lastSucceeded.digest.slice(0, 19)}…)`);
  }
  const e = status.ecs;
  if (e.error) lines.push(`ecs        ${e.service}: ${e.error}`);
  else {
    lines.push(
      `ecs        ${e.service} on ${e.taskDefinitionArn ?? "?"} (${e.deploymentController}${e.strategy ? `, ${e.strategy}` : ""}${e.bakeTimeInMinutes !== undefined ? `, bake ${e.bakeTimeInMinutes} min` : ""})`,
    );
    if (e.inFlight) {
      lines.push(
        `           deployment ${e.inFlight.arn} ${e.inFlight.status}${e.inFlight.lifecycleStage ? ` at ${e.inFlight.lifecycleStage}` : ""}`,
      );
    } else if (e.latest) {
      lines.push(
        `           last deployment ${e.latest.status}${e.latest.statusReason ? `: ${e.latest.statusReason}` : ""}`,
      );
    }
  }
  const s = status.sagemaker;
  if (s.error) lines.push(`sagemaker  ${s.endpoint}: ${s.error}`);
  else {
    lines.push(`sagemaker  ${s.endpoint} ${s.status ?? "?"} on ${s.endpointConfigName ?? "?"}`);
    if (s.pendingEndpointConfigName) {
      lines.push(
        `           deploying ${s.pendingEndpointConfigName}${s.pendingStatus?.length ? `: ${s.pendingStatus.join("; ")}` : ""}`,
      );
    }
    if (s.failureReason) lines.push(`           FailureReason: ${s.failureReason}`);
  }
  if (status.alarmsError) lines.push(`alarms     unreadable: ${status.alarmsError}`);
  for (const alarm of status.alarms) {
    lines.push(
      `alarm      ${alarm.state.padEnd(17)} ${alarm.name}${alarm.state === "ALARM" ? ` (${alarm.reason})` : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
