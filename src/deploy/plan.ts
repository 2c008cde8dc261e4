import type {
  ContainerDefinition,
  DeploymentConfiguration,
  DeploymentLifecycleHook,
  RegisterTaskDefinitionCommandInput,
  Tag,
  TaskDefinition,
} from "@aws-sdk/client-ecs";
import type {
  CreateEndpointConfigCommandInput,
  CreateModelCommandInput,
  DeploymentConfig,
  DescribeEndpointConfigCommandOutput,
  DescribeModelCommandOutput,
  TrafficRoutingConfig,
} from "@aws-sdk/client-sagemaker";
import type { SmokeContract, SmokeHookInput } from "../../infra/lambda/smoke-test/src/types.js";
import { type EnvironmentResources, environmentResources, releaseAlarms } from "../environment.js";
import { ConfigurationError } from "../errors.js";
import { parseImageReference } from "../image/promote.js";

/**
 * The release plan: observed state of both targets + the inputs -> the steps, and a
 * diff a reviewer can read. Pure: no clients, no clock, no I/O, so `--dry-run` is
 * exactly what a release would do and every branch is unit-tested.
 */

export type SageMakerStrategy = "canary" | "linear" | "all-at-once";
export const SAGEMAKER_STRATEGIES: readonly SageMakerStrategy[] = ["canary", "linear", "all-at-once"];

/** The served model's identity, as the service reports it on /ping (README of service/models). */
export interface ModelIdentity {
  version: string;
  /** sha256 of the manifest file's bytes, 64 hex digits. */
  manifestSha256: string;
}

/** What the release was judged on before it got here; kept in the ledger, not acted on (bar a blocking gate). */
export interface Provenance {
  scanVerdict?: string;
  waivers?: string[];
  sbomRef?: string;
  gate?: { verdict: string; blocksRelease?: boolean; metrics?: Record<string, unknown> };
}

/** The release's inputs as the action or CLI gives them (names match the action's inputs in messages). */
export interface ReleaseRequest {
  environment: string;
  /** `<registry>/<repository>@sha256:<64 hex>`, as push-image and promote-image output it. */
  imageUri: string;
  /**
   * The released model's smoke contract (the smoke-test Lambda's `contractFromManifest`
   * of its manifest.json, with `manifestSha256`): its version and hash name the model,
   * and the smoke test checks responses against it.
   */
  model: SmokeContract;
  strategy?: SageMakerStrategy;
  bakeMinutes?: number;
  /** Defaults to every alarm of the environment (environment.ts). */
  alarmNames?: string[];
  /** Alarms allowed to be in ALARM when the release starts (they are then left out of the native rollback lists). */
  allowAlarms?: string[];
  /** Defaults to the environment's smoke-test function. */
  smokeFunction?: string;
  /** The role ECS assumes to invoke the hook; defaults to the one the service's hook already uses. */
  hookRoleArn?: string;
  /** Where the smoke test reaches green on ECS (the test listener); defaults to the ALB's test listener. */
  testUrl?: string;
  /** SageMaker's wait after each canary/linear step; defaults to min(600 s, the bake). */
  stepWaitSeconds?: number;
  /** Container environment variables to set on the new task-definition revision. */
  containerEnvironment?: Record<string, string>;
  provenance?: Provenance;
}

/** The request checked and completed with defaults: every later stage reads this. */
export interface ReleaseInputs {
  resources: EnvironmentResources;
  imageUri: string;
  /** The repository part of `imageUri` (DescribeImages is asked there). */
  repository: string;
  digest: string;
  model: ModelIdentity;
  contract: SmokeContract;
  strategy: SageMakerStrategy;
  bakeMinutes: number;
  alarmNames: string[];
  allowAlarms: string[];
  smokeFunction: string;
  hookRoleArn?: string;
  testUrl?: string;
  stepWaitSeconds: number;
  containerEnvironment: Record<string, string>;
  provenance: Provenance;
}

const SHA256_HEX = /^[a-f0-9]{64}$/;
/** SageMaker AutoRollbackConfiguration takes 1-10 alarms. */
const MAX_ROLLBACK_ALARMS = 10;
/** ECS bakeTimeInMinutes is 0-1440; SageMaker's final bake (TerminationWaitInSeconds) stops at 3600 s. */
const MAX_BAKE_MINUTES = 1440;

/**
 * Checks the request's shape and fills in defaults from the environment's naming
 * contract. Everything here is checked before any AWS call; what needs AWS to check
 * (the digest exists, the alarms exist) is the preflight's job.
 */
export function resolveReleaseInputs(request: ReleaseRequest): ReleaseInputs {
  const resources = environmentResources(request.environment);
  const image = parseImageReference(request.imageUri, "image");
  const problems: string[] = [];
  if (!request.model?.version?.trim()) {
    problems.push(
      "input \"model-manifest\": the model manifest's version is empty; pass the released model's manifest.json",
    );
  }
  if (!SHA256_HEX.test(request.model?.manifestSha256 ?? "")) {
    problems.push(
      `input "model-manifest": the smoke contract's manifestSha256 is "${request.model?.manifestSha256 ?? ""}", not a sha256: build the contract from the manifest file's bytes (contractFromManifestText), so the release is keyed by the exact model`,
    );
  }
  const strategy = request.strategy ?? "canary";
  if (!SAGEMAKER_STRATEGIES.includes(strategy)) {
    problems.push(
      `input "sagemaker-strategy": "${strategy}" is not one of ${SAGEMAKER_STRATEGIES.join(", ")}`,
    );
  }
  const bakeMinutes = request.bakeMinutes ?? 10;
  if (!Number.isInteger(bakeMinutes) || bakeMinutes < 0 || bakeMinutes > MAX_BAKE_MINUTES) {
    problems.push(
      `input "bake-minutes": ${bakeMinutes} is not a whole number of minutes from 0 to ${MAX_BAKE_MINUTES} (ECS bakeTimeInMinutes)`,
    );
  }
  const alarmNames = unique(request.alarmNames?.length ? request.alarmNames : releaseAlarms(resources));
  const allowAlarms = unique(request.allowAlarms ?? []);
  const strangers = allowAlarms.filter((name) => !alarmNames.includes(name));
  if (strangers.length > 0) {
    problems.push(
      `input "allow-alarms-in-alarm": ${strangers.join(", ")} ${strangers.length === 1 ? "is" : "are"} not among the release's alarms (${alarmNames.join(", ")}); allow only alarms the release watches`,
    );
  }
  if (alarmNames.length - allowAlarms.length > MAX_ROLLBACK_ALARMS) {
    problems.push(
      `input "alarms": ${alarmNames.length} alarms, but SageMaker's auto-rollback takes at most ${MAX_ROLLBACK_ALARMS}; combine some into a composite alarm`,
    );
  }
  const stepWaitSeconds = request.stepWaitSeconds ?? Math.min(600, bakeMinutes * 60);
  if (!Number.isInteger(stepWaitSeconds) || stepWaitSeconds < 0 || stepWaitSeconds > 3600) {
    problems.push(
      `input "step-wait-seconds": ${stepWaitSeconds} is not a whole number of seconds from 0 to 3600 (SageMaker WaitIntervalInSeconds)`,
    );
  }
  if (request.provenance?.gate?.blocksRelease) {
    problems.push(
      `input "gate-metrics-file": the accuracy gate's verdict "${request.provenance.gate.verdict}" blocks the release; fix the model or change the gate policy, then gate again`,
    );
  }
  if (request.testUrl !== undefined && !/^https?:\/\/[^/\s]+/.test(request.testUrl)) {
    problems.push(`input "test-url": "${request.testUrl}" is not an http(s) URL, e.g. http://alb-dns:8080`);
  }
  if (problems.length > 0) throw new ConfigurationError(problems.join("; "));
  return {
    resources,
    imageUri: `${image.host}/${image.repository}@${image.digest}`,
    repository: image.repository,
    digest: image.digest,
    model: { version: request.model.version.trim(), manifestSha256: request.model.manifestSha256 ?? "" },
    contract: request.model,
    strategy,
    bakeMinutes,
    alarmNames,
    allowAlarms,
    smokeFunction: request.smokeFunction || resources.smokeFunction,
    ...(request.hookRoleArn ? { hookRoleArn: request.hookRoleArn } : {}),
    ...(request.testUrl ? { testUrl: request.testUrl.replace(/\/+$/, "") } : {}),
    stepWaitSeconds,
    containerEnvironment: request.containerEnvironment ?? {},
    provenance: request.provenance ?? {},
  };
}

// ---------------------------------------------------------------------------------
// Names and keys

/** Tag that marks what a task-definition revision, model or endpoint config was made for. */
export const RELEASE_KEY_TAG = "astrolens:release-key";

/** Code and model together: the image digest names both (the model travels in the image). */
export function releaseKey(digest: string, model: ModelIdentity): string {
  return `${digest}/${model.manifestSha256}`;
}

/**
 * The SageMaker model and endpoint-config name for one image + model: the endpoint's
 * contract name, 12 hex of the digest and 12 of the model hash. At most 35 + 26 = 61
 * characters (SageMaker allows 63), and the same inputs always give the same name, so
 * a re-run finds what the first run created.
 */
export function sageMakerReleaseName(
  resources: EnvironmentResources,
  digest: string,
  model: ModelIdentity,
): string {
  const name = `${resources.endpoint}-${digest.replace(/^sha256:/, "").slice(0, 12)}-${model.manifestSha256.slice(0, 12)}`;
  if (name.length > 63) throw new Error(`SageMaker name ${name} is longer than 63 characters`);
  return name;
}

// ---------------------------------------------------------------------------------
// Observed state (what the drivers report; the plan only reads it)

export interface ObservedEcs {
  serviceArn: string;
  deploymentController: string;
  taskDefinition: TaskDefinition;
  taskDefinitionTags: Tag[];
  deploymentConfiguration?: DeploymentConfiguration;
  /** A deployment already running on the service (not ours). */
  inFlightDeployment?: { arn: string; status: string };
  /** An ACTIVE revision identical to the one this release would register. */
  reusableTaskDefinitionArn?: string;
  /** The test listener's URL, when the service's load balancer names one. */
  testUrl?: string;
  /** The role the service's existing lifecycle hooks use to invoke Lambda. */
  hookRoleArn?: string;
}

export interface ObservedSageMaker {
  endpointName: string;
  endpointStatus: string;
  endpointConfigName: string;
  pendingEndpointConfigName?: string;
  failureReason?: string;
  endpointConfig: Pick<
    DescribeEndpointConfigCommandOutput,
    "EndpointConfigName" | "ProductionVariants" | "DataCaptureConfig" | "KmsKeyId"
  >;
  model: Pick<
    DescribeModelCommandOutput,
    | "ModelName"
    | "PrimaryContainer"
    | "Containers"
    | "ExecutionRoleArn"
    | "VpcConfig"
    | "EnableNetworkIsolation"
  >;
  /** The model and endpoint config named for this release, if a run already created them. */
  existingModel?: { image: string };
  existingEndpointConfig?: { modelNames: string[] };
}

export type AlarmStateValue = "OK" | "ALARM" | "INSUFFICIENT_DATA";

export interface ObservedAlarm {
  name: string;
  state: AlarmStateValue;
  reason: string;
  /** ISO time of the last state change. */
  updatedAt: string;
}

export interface ObservedState {
  ecs: ObservedEcs;
  sagemaker: ObservedSageMaker;
  alarms: ObservedAlarm[];
  smokeFunctionArn: string;
}

// ---------------------------------------------------------------------------------
// The plan

export interface PlanStep {
  target: "ecs" | "sagemaker" | "smoke" | "alarms";
  action: string;
  detail: string;
}

export interface EcsPlan {
  cluster: string;
  service: string;
  containerName: string;
  change: boolean;
  current: { taskDefinitionArn: string; image: string; environment: Record<string, string> };
  desired: { image: string; environment: Record<string, string> };
  taskDefinition: {
    /** register: a new revision; reuse: an identical ACTIVE revision exists. */
    action: "register" | "reuse";
    arn?: string;
    registration: RegisterTaskDefinitionCommandInput;
  };
  currentDeploymentConfiguration?: DeploymentConfiguration;
  deploymentConfiguration: DeploymentConfiguration;
}

export interface SageMakerPlan {
  endpointName: string;
  change: boolean;
  current: { endpointConfigName: string; modelName: string; image: string };
  desired: { endpointConfigName: string; modelName: string; image: string };
  model: { action: "create" | "reuse"; input: CreateModelCommandInput };
  endpointConfig: { action: "create" | "reuse"; input: CreateEndpointConfigCommandInput };
  deploymentConfig: DeploymentConfig;
}

/**
 * What the smoke test needs in hook mode (the Lambda's SmokeHookInput); ECS hands it to
 * the function as `hookDetails`. The release id is for people reading the service's
 * configuration: the function ignores it.
 */
export type SmokeHookDetails = SmokeHookInput & { targetUrl: string; releaseId: string };

export interface ReleasePlan {
  environment: string;
  releaseKey: string;
  /** Both targets already run the desired version: nothing to do. */
  noop: boolean;
  /** Reasons the release cannot start now (busy target, split environment, alarm in ALARM). */
  blockers: string[];
  warnings: string[];
  ecs: EcsPlan;
  sagemaker: SageMakerPlan;
  alarms: {
    watched: string[];
    /** Given to ECS and SageMaker as their rollback alarms: any of them rolls back both, natively. */
    native: string[];
    allowedInAlarm: string[];
    states: ObservedAlarm[];
  };
  smoke: { functionArn: string; hookRoleArn: string; hookDetails: SmokeHookDetails };
  steps: PlanStep[];
}

/**
 * Plans one release. `releaseId` goes into the hook details so the smoke test's log
 * lines can be found from the ledger record.
 */
export function planRelease(observed: ObservedState, inputs: ReleaseInputs, releaseId: string): ReleasePlan {
  const { resources } = inputs;
  const blockers: string[] = [];
  const warnings: string[] = [];

  const inAlarm = observed.alarms.filter((alarm) => alarm.state === "ALARM");
  for (const alarm of inAlarm) {
    if (!inputs.allowAlarms.includes(alarm.name)) {
      blockers.push(
        `alarm ${alarm.name} is already in ALARM (${alarm.reason || "no reason given"}, since ${alarm.updatedAt}): it would roll the release back at once; fix what it reports, or allow it with the "allow-alarms-in-alarm" input`,
      );
    } else {
      warnings.push(
        `alarm ${alarm.name} is in ALARM and allowed: it is left out of ECS's and SageMaker's rollback alarms; the release still rolls back if it leaves ALARM and fires again`,
      );
    }
  }
  const allowedInAlarm = inAlarm.filter((a) => inputs.allowAlarms.includes(a.name)).map((a) => a.name);
  const native = inputs.alarmNames.filter((name) => !allowedInAlarm.includes(name));

  const hookRoleArn = inputs.hookRoleArn ?? observed.ecs.hookRoleArn ?? "";
  const testUrl = inputs.testUrl ?? observed.ecs.testUrl ?? "";
  const hookDetails: SmokeHookDetails = { targetUrl: testUrl, contract: inputs.contract, releaseId };

  const ecs = planEcs(observed, inputs, native, {
    functionArn: observed.smokeFunctionArn,
    roleArn: hookRoleArn,
    hookDetails,
  });
  const sagemaker = planSageMaker(observed.sagemaker, inputs, native, blockers);

  if (observed.ecs.inFlightDeployment) {
    const d = observed.ecs.inFlightDeployment;
    blockers.push(
      `ECS service ${resources.service} has deployment ${d.arn} ${d.status}: wait for it to finish (or stop it with StopServiceDeployment), then release again`,
    );
  }
  if (observed.sagemaker.endpointStatus !== "InService") {
    blockers.push(
      `SageMaker endpoint ${resources.endpoint} is ${observed.sagemaker.endpointStatus}, not InService: wait for its update to finish, then release again`,
    );
  }
  if (ecs.change !== sagemaker.change) {
    const on = ecs.change ? "SageMaker" : "ECS";
    const off = ecs.change ? "ECS" : "SageMaker";
    blockers.push(
      `${on} already runs ${inputs.imageUri} but ${off} does not: the environment is split between two versions; return both to the previous release with \`astrolens-release rollback --env ${resources.environment}\`, then release again`,
    );
  }
  const mustRelease = ecs.change || sagemaker.change;
  if (mustRelease && !hookRoleArn) {
    blockers.push(
      `no role lets ECS invoke the smoke-test Lambda: the service has no smoke-test lifecycle hook to take it from and no earlier release of ${resources.environment} recorded one; deploy the environment's stack (it configures the hook with its role, ${resources.stackName}-smoke-hook), or pass hookRoleArn (option "hook-role-arn")`,
    );
  }
  if (mustRelease && !testUrl) {
    blockers.push(
      `the service's load balancer names no test listener (advancedConfiguration.testListenerRule), so the smoke test would not know where green answers: deploy the environment's stack, which sets it, or pass the test listener's URL (option "test-url", e.g. http://<alb-dns>:<test port>)`,
    );
  }
  if (sagemaker.model.action === "reuse" && observed.sagemaker.existingModel?.image !== inputs.imageUri) {
    blockers.push(
      `SageMaker model ${sagemaker.desired.modelName} exists but runs ${observed.sagemaker.existingModel?.image}, not ${inputs.imageUri}; it was not made by this toolkit for this image: delete or rename it`,
    );
  }

  const steps = mustRelease ? releaseSteps(ecs, sagemaker, inputs, observed.smokeFunctionArn, native) : [];
  return {
    environment: resources.environment,
    releaseKey: releaseKey(inputs.digest, inputs.model),
    noop: !mustRelease,
    blockers,
    warnings,
    ecs,
    sagemaker,
    alarms: { watched: inputs.alarmNames, native, allowedInAlarm, states: observed.alarms },
    smoke: { functionArn: observed.smokeFunctionArn, hookRoleArn, hookDetails },
    steps,
  };
}

function planEcs(
  observed: ObservedState,
  inputs: ReleaseInputs,
  nativeAlarms: string[],
  hook: { functionArn: string; roleArn: string; hookDetails: SmokeHookDetails },
): EcsPlan {
  const { resources } = inputs;
  const current = observed.ecs.taskDefinition;
  const container = findContainer(current, resources.containerName);
  const currentEnvironment = environmentOf(container);
  const desiredEnvironment = sortRecord({ ...currentEnvironment, ...inputs.containerEnvironment });
  const registration = deriveTaskDefinition(current, observed.ecs.taskDefinitionTags, inputs);
  const change = container.image !== inputs.imageUri || !sameJson(currentEnvironment, desiredEnvironment);
  const reusable = observed.ecs.reusableTaskDefinitionArn;
  return {
    cluster: resources.cluster,
    service: resources.service,
    containerName: resources.containerName,
    change,
    current: {
      taskDefinitionArn: current.taskDefinitionArn ?? "",
      image: container.image ?? "",
      environment: currentEnvironment,
    },
    desired: { image: inputs.imageUri, environment: desiredEnvironment },
    taskDefinition: reusable
      ? { action: "reuse", arn: reusable, registration }
      : { action: "register", registration },
    ...(observed.ecs.deploymentConfiguration
      ? { currentDeploymentConfiguration: observed.ecs.deploymentConfiguration }
      : {}),
    deploymentConfiguration: blueGreenConfiguration(observed.ecs.deploymentConfiguration, {
      bakeMinutes: inputs.bakeMinutes,
      alarmNames: nativeAlarms,
      hook,
    }),
  };
}

/**
 * The service's deployment configuration for this release: built-in BLUE_GREEN with the
 * bake, every release alarm with rollback (so an alarm rolls ECS back even when no runner
 * is watching), and the smoke test at POST_TEST_TRAFFIC_SHIFT — after test traffic
 * reaches green, before production does. Other hooks the service has are kept.
 */
export function blueGreenConfiguration(
  current: DeploymentConfiguration | undefined,
  options: {
    bakeMinutes: number;
    alarmNames: string[];
    hook: { functionArn: string; roleArn: string; hookDetails: SmokeHookDetails };
  },
): DeploymentConfiguration {
  const { hook } = options;
  const others = (current?.lifecycleHooks ?? []).filter((h) => h.hookTargetArn !== hook.functionArn);
  // The stack's hook sets how long ECS waits for it (and what it does then); without
  // that, ECS waits up to a day for a hook that hangs.
  const timeout = current?.lifecycleHooks?.find(
    (h) => h.hookTargetArn === hook.functionArn,
  )?.timeoutConfiguration;
  const smokeHook: DeploymentLifecycleHook = {
    targetType: "AWS_LAMBDA",
    hookTargetArn: hook.functionArn,
    roleArn: hook.roleArn,
    lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT"],
    hookDetails: structuredClone(hook.hookDetails) as unknown as DeploymentLifecycleHook["hookDetails"],
    ...(timeout ? { timeoutConfiguration: structuredClone(timeout) } : {}),
  };
  return {
    ...(current?.maximumPercent !== undefined ? { maximumPercent: current.maximumPercent } : {}),
    ...(current?.minimumHealthyPercent !== undefined
      ? { minimumHealthyPercent: current.minimumHealthyPercent }
      : {}),
    ...(current?.deploymentCircuitBreaker
      ? { deploymentCircuitBreaker: current.deploymentCircuitBreaker }
      : {}),
    strategy: "BLUE_GREEN",
    bakeTimeInMinutes: options.bakeMinutes,
    alarms: { alarmNames: options.alarmNames, enable: options.alarmNames.length > 0, rollback: true },
    lifecycleHooks: [...others, smokeHook],
  };
}

const REGISTERABLE_FIELDS = [
  "family",
  "taskRoleArn",
  "executionRoleArn",
  "networkMode",
  "containerDefinitions",
  "volumes",
  "placementConstraints",
  "requiresCompatibilities",
  "cpu",
  "memory",
  "pidMode",
  "ipcMode",
  "proxyConfiguration",
  "inferenceAccelerators",
  "ephemeralStorage",
  "runtimePlatform",
  "enableFaultInjection",
] as const;

/**
 * The revision this release registers: the service's current revision, field for field,
 * with the new image (by digest) and any environment overrides in the contract's
 * container, tagged with the release key. Deriving it (rather than templating one)
 * keeps whatever the stack set: roles, sizes, ports, logging.
 */
export function deriveTaskDefinition(
  current: TaskDefinition,
  currentTags: Tag[],
  inputs: ReleaseInputs,
): RegisterTaskDefinitionCommandInput {
  const registration = registrationOf(current);
  const containerName = inputs.resources.containerName;
  findContainer(current, containerName);
  registration.containerDefinitions = (registration.containerDefinitions ?? []).map((c) =>
    c.name === containerName
      ? {
          ...c,
          image: inputs.imageUri,
          environment: Object.entries(
            sortRecord({ ...environmentOf(c), ...inputs.containerEnvironment }),
          ).map(([name, value]) => ({ name, value })),
        }
      : c,
  );
  const tags = currentTags.filter((t) => t.key !== RELEASE_KEY_TAG && !t.key?.startsWith("aws:"));
  registration.tags = [...tags, { key: RELEASE_KEY_TAG, value: releaseKey(inputs.digest, inputs.model) }];
  return registration;
}

/** The fields of a described revision that RegisterTaskDefinition takes. */
export function registrationOf(taskDefinition: TaskDefinition): RegisterTaskDefinitionCommandInput {
  const out: Record<string, unknown> = {};
  for (const field of REGISTERABLE_FIELDS) {
    const value = taskDefinition[field];
    if (value !== undefined) out[field] = structuredClone(value);
  }
  return out as unknown as RegisterTaskDefinitionCommandInput;
}

/**
 * Whether two registrations describe the same revision (tags aside). Both sides come
 * from DescribeTaskDefinition output, so defaults ECS fills in appear on both.
 */
export function sameTaskDefinition(
  a: RegisterTaskDefinitionCommandInput,
  b: RegisterTaskDefinitionCommandInput,
): boolean {
  const { tags: _a, ...left } = a;
  const { tags: _b, ...right } = b;
  return sameJson(left, right);
}

function findContainer(taskDefinition: TaskDefinition, name: string): ContainerDefinition {
  const container = taskDefinition.containerDefinitions?.find((c) => c.name === name);
  if (!container) {
    const names = (taskDefinition.containerDefinitions ?? []).map((c) => c.name).join(", ") || "none";
    throw new ConfigurationError(
      `the service's task definition ${taskDefinition.taskDefinitionArn} has no container "${name}" (it has: ${names}); the environment contract names the inference container "${name}": fix the stack's task definition`,
    );
  }
  return container;
}

function environmentOf(container: ContainerDefinition): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of container.environment ?? []) if (pair.name) out[pair.name] = pair.value ?? "";
  return sortRecord(out);
}

function planSageMaker(
  observed: ObservedSageMaker,
  inputs: ReleaseInputs,
  nativeAlarms: string[],
  blockers: string[],
): SageMakerPlan {
  const name = sageMakerReleaseName(inputs.resources, inputs.digest, inputs.model);
  const containers = observed.model.PrimaryContainer
    ? [observed.model.PrimaryContainer]
    : (observed.model.Containers ?? []);
  const container = containers[0] ?? {};
  if (containers.length !== 1) {
    blockers.push(
      `SageMaker model ${observed.model.ModelName} has ${containers.length} containers; the release replaces the image of exactly one (the inference container)`,
    );
  }
  const variants = observed.endpointConfig.ProductionVariants ?? [];
  const tags = [{ Key: RELEASE_KEY_TAG, Value: releaseKey(inputs.digest, inputs.model) }];
  const model: CreateModelCommandInput = {
    ModelName: name,
    ...(observed.model.ExecutionRoleArn ? { ExecutionRoleArn: observed.model.ExecutionRoleArn } : {}),
    PrimaryContainer: {
      ...(container.ContainerHostname ? { ContainerHostname: container.ContainerHostname } : {}),
      ...(container.ImageConfig ? { ImageConfig: container.ImageConfig } : {}),
      ...(container.Mode ? { Mode: container.Mode } : {}),
      ...(container.ModelDataUrl ? { ModelDataUrl: container.ModelDataUrl } : {}),
      ...(container.ModelDataSource ? { ModelDataSource: container.ModelDataSource } : {}),
      ...(container.Environment ? { Environment: container.Environment } : {}),
      Image: inputs.imageUri,
    },
    ...(observed.model.VpcConfig ? { VpcConfig: observed.model.VpcConfig } : {}),
    ...(observed.model.EnableNetworkIsolation !== undefined
      ? { EnableNetworkIsolation: observed.model.EnableNetworkIsolation }
      : {}),
    Tags: tags,
  };
  const endpointConfig: CreateEndpointConfigCommandInput = {
    EndpointConfigName: name,
    ProductionVariants: variants.map((variant) => ({ ...variant, ModelName: name })),
    ...(observed.endpointConfig.DataCaptureConfig
      ? { DataCaptureConfig: observed.endpointConfig.DataCaptureConfig }
      : {}),
    ...(observed.endpointConfig.KmsKeyId ? { KmsKeyId: observed.endpointConfig.KmsKeyId } : {}),
    Tags: tags,
  };
  return {
    endpointName: observed.endpointName,
    change: observed.endpointConfigName !== name,
    current: {
      endpointConfigName: observed.endpointConfigName,
      modelName: observed.model.ModelName ?? "",
      image: container.Image ?? "",
    },
    desired: { endpointConfigName: name, modelName: name, image: inputs.imageUri },
    model: { action: observed.existingModel ? "reuse" : "create", input: model },
    endpointConfig: { action: observed.existingEndpointConfig ? "reuse" : "create", input: endpointConfig },
    deploymentConfig: guardrailConfig(inputs.strategy, {
      stepWaitSeconds: inputs.stepWaitSeconds,
      bakeMinutes: inputs.bakeMinutes,
      alarmNames: nativeAlarms,
    }),
  };
}

/** Canary and linear step sizes, as shares of the fleet (AWS rounds to whole instances). */
export const CANARY_PERCENT = 10;
export const LINEAR_STEP_PERCENT = 20;

/**
 * SageMaker's deployment guardrails for this release. The final bake
 * (TerminationWaitInSeconds) keeps blue running for the bake, capped at SageMaker's
 * 3600 s, so an alarm in the bake sends traffic straight back to blue — natively, even
 * with no runner watching. Every release alarm is an auto-rollback alarm.
 */
export function guardrailConfig(
  strategy: SageMakerStrategy,
  options: { stepWaitSeconds: number; bakeMinutes: number; alarmNames: string[] },
): DeploymentConfig {
  const wait = options.stepWaitSeconds;
  const termination = Math.min(3600, options.bakeMinutes * 60);
  let routing: TrafficRoutingConfig;
  let steps: number;
  if (strategy === "canary") {
    routing = {
      Type: "CANARY",
      WaitIntervalInSeconds: wait,
      CanarySize: { Type: "CAPACITY_PERCENT", Value: CANARY_PERCENT },
    };
    steps = 1;
  } else if (strategy === "linear") {
    routing = {
      Type: "LINEAR",
      WaitIntervalInSeconds: wait,
      LinearStepSize: { Type: "CAPACITY_PERCENT", Value: LINEAR_STEP_PERCENT },
    };
    steps = Math.ceil(100 / LINEAR_STEP_PERCENT);
  } else {
    // The model requires WaitIntervalInSeconds even here, although the docs' example omits it.
    routing = { Type: "ALL_AT_ONCE", WaitIntervalInSeconds: wait };
    steps = 1;
  }
  // Room for provisioning the green fleet (30 min) on top of the waits; 600-14400 is the
  // range both AWS and Terraform accept.
  const timeout = Math.min(14_400, Math.max(600, steps * wait + termination + 1800));
  return {
    BlueGreenUpdatePolicy: {
      TrafficRoutingConfiguration: routing,
      TerminationWaitInSeconds: termination,
      MaximumExecutionTimeoutInSeconds: timeout,
    },
    ...(options.alarmNames.length > 0
      ? { AutoRollbackConfiguration: { Alarms: options.alarmNames.map((AlarmName) => ({ AlarmName })) } }
      : {}),
  };
}

function releaseSteps(
  ecs: EcsPlan,
  sagemaker: SageMakerPlan,
  inputs: ReleaseInputs,
  smokeFunctionArn: string,
  nativeAlarms: string[],
): PlanStep[] {
  const td = ecs.taskDefinition;
  return [
    {
      target: "ecs",
      action: td.action === "reuse" ? "reuse-task-definition" : "register-task-definition",
      detail:
        td.action === "reuse"
          ? `reuse ${td.arn} (identical, image ${inputs.imageUri})`
          : `register a revision of ${td.registration.family} with image ${inputs.imageUri}`,
    },
    {
      target: "sagemaker",
      action: `${sagemaker.model.action}-model`,
      detail: `${sagemaker.model.action} model ${sagemaker.desired.modelName}`,
    },
    {
      target: "sagemaker",
      action: `${sagemaker.endpointConfig.action}-endpoint-config`,
      detail: `${sagemaker.endpointConfig.action} endpoint config ${sagemaker.desired.endpointConfigName}`,
    },
    {
      target: "ecs",
      action: "update-service",
      detail: `blue/green deployment of ${ecs.service}, bake ${inputs.bakeMinutes} min, rollback on ${nativeAlarms.length} alarm(s)`,
    },
    {
      target: "smoke",
      action: "ecs-hook",
      detail: `ECS runs ${smokeFunctionArn} at POST_TEST_TRAFFIC_SHIFT against green on the test listener`,
    },
    {
      target: "sagemaker",
      action: "update-endpoint",
      detail: `${inputs.strategy} update of ${sagemaker.endpointName} to ${sagemaker.desired.endpointConfigName}, once the ECS smoke test passed`,
    },
    {
      target: "smoke",
      action: "invoke",
      detail: `invoke ${smokeFunctionArn} against endpoint ${sagemaker.endpointName} once green takes all its traffic`,
    },
    {
      target: "alarms",
      action: "watch",
      detail: `watch ${inputs.alarmNames.length} alarm(s) through a ${inputs.bakeMinutes}-minute bake; any failure rolls back both targets`,
    },
  ];
}

// ---------------------------------------------------------------------------------
// The diff

/** The plan as a reviewer reads it: `-` live, `+` desired, then the steps. */
export function renderPlan(plan: ReleasePlan): string {
  const lines: string[] = [];
  const { ecs, sagemaker } = plan;
  lines.push(
    `Release plan for ${plan.environment}: ${plan.noop ? "no-op, both targets already run this version" : `${plan.steps.length} steps`}`,
  );
  lines.push("", `ECS service ${ecs.service} (cluster ${ecs.cluster})`);
  if (!ecs.change) {
    lines.push(`  task definition ${ecs.current.taskDefinitionArn} (unchanged, image ${ecs.current.image})`);
  } else {
    const td = ecs.taskDefinition;
    lines.push(
      `  task definition ${ecs.current.taskDefinitionArn} -> ${td.action === "reuse" ? `${td.arn} (reuse)` : "a new revision (register)"}`,
    );
    lines.push(
      ...diffLines(
        `container ${ecs.containerName}`,
        containerLines(ecs.current),
        containerLines(ecs.desired),
      ),
    );
  }
  lines.push(
    ...diffLines(
      "deployment",
      ecsConfigLines(ecs.currentDeploymentConfiguration),
      ecsConfigLines(ecs.deploymentConfiguration),
    ),
  );
  lines.push("", `SageMaker endpoint ${sagemaker.endpointName}`);
  if (!sagemaker.change) {
    lines.push(`  endpoint config ${sagemaker.current.endpointConfigName} (unchanged)`);
  } else {
    lines.push(
      `  - endpoint config ${sagemaker.current.endpointConfigName}`,
      `  + endpoint config ${sagemaker.desired.endpointConfigName} (${sagemaker.endpointConfig.action})`,
      `  - model ${sagemaker.current.modelName}, image ${sagemaker.current.image}`,
      `  + model ${sagemaker.desired.modelName}, image ${sagemaker.desired.image} (${sagemaker.model.action})`,
    );
    lines.push(`    deployment ${sageMakerConfigLine(sagemaker.deploymentConfig)}`);
  }
  lines.push("", `Alarms (${plan.alarms.watched.length})`);
  for (const name of plan.alarms.watched) {
    const state = plan.alarms.states.find((a) => a.name === name);
    const allowed = plan.alarms.allowedInAlarm.includes(name) ? " (allowed; not a rollback alarm)" : "";
    lines.push(`  ${(state?.state ?? "?").padEnd(17)} ${name}${allowed}`);
  }
  if (plan.steps.length > 0) {
    lines.push("", "Steps");
    plan.steps.forEach((step, i) => {
      lines.push(`  ${i + 1}. [${step.target}] ${step.detail}`);
    });
  }
  for (const warning of plan.warnings) lines.push("", `warning: ${warning}`);
  if (plan.blockers.length > 0) {
    lines.push("", "Blocked:");
    for (const blocker of plan.blockers) lines.push(`  - ${blocker}`);
  }
  return `${lines.join("\n")}\n`;
}

function containerLines(c: { image: string; environment: Record<string, string> }): string[] {
  return [`image ${c.image}`, ...Object.entries(c.environment).map(([k, v]) => `env ${k}=${v}`)];
}

function ecsConfigLines(config: DeploymentConfiguration | undefined): string[] {
  if (!config) return [];
  const lines = [`strategy ${config.strategy ?? "ROLLING"}`];
  if (config.bakeTimeInMinutes !== undefined) lines.push(`bake ${config.bakeTimeInMinutes} min`);
  if (config.alarms) {
    lines.push(
      `alarms ${config.alarms.enable ? "on" : "off"}${config.alarms.rollback ? ", rollback" : ""}: ${(config.alarms.alarmNames ?? []).join(", ") || "none"}`,
    );
  }
  for (const hook of config.lifecycleHooks ?? []) {
    // The details as the smoke test reads them; the release id changes every time and says nothing.
    const details = (hook.hookDetails ?? {}) as Partial<SmokeHookDetails>;
    const what = [
      details.targetUrl ? `target ${details.targetUrl}` : "",
      details.contract
        ? `model ${details.contract.version} ${details.contract.manifestSha256?.slice(0, 12) ?? ""}`.trim()
        : "",
    ].filter(Boolean);
    lines.push(
      `hook ${(hook.lifecycleStages ?? []).join("+")} -> ${hook.hookTargetArn ?? hook.targetType}${what.length ? ` (${what.join(", ")})` : ""}`,
    );
  }
  return lines;
}

function sageMakerConfigLine(config: DeploymentConfig): string {
  const policy = config.BlueGreenUpdatePolicy;
  const routing = policy?.TrafficRoutingConfiguration;
  const size = routing?.CanarySize ?? routing?.LinearStepSize;
  const step = size ? ` ${size.Value}${size.Type === "CAPACITY_PERCENT" ? "%" : " instance(s)"}` : "";
  const alarms = config.AutoRollbackConfiguration?.Alarms?.length ?? 0;
  return `${routing?.Type}${step}, wait ${routing?.WaitIntervalInSeconds} s per step, final bake ${policy?.TerminationWaitInSeconds} s, timeout ${policy?.MaximumExecutionTimeoutInSeconds} s, auto-rollback on ${alarms} alarm(s)`;
}

function diffLines(label: string, before: string[], after: string[]): string[] {
  const out: string[] = [];
  const removed = before.filter((line) => !after.includes(line));
  const added = after.filter((line) => !before.includes(line));
  if (removed.length === 0 && added.length === 0) return [`  ${label} (unchanged)`];
  out.push(`  ${label}`);
  for (const line of removed) out.push(`  - ${line}`);
  for (const line of added) out.push(`  + ${line}`);
  return out;
}

// ---------------------------------------------------------------------------------

function unique(values: string[]): string[] {
  return [...new Set(values.map((v) => v.trim()).filter((v) => v !== ""))];
}

function sortRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}

/** Deep equality of JSON-like values, ignoring key order and undefined fields. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, inner]) => inner !== undefined)
            .sort(([x], [y]) => x.localeCompare(y)),
        )
      : v,
  );
}
