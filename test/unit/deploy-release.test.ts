import type { DeploymentConfiguration, ServiceDeployment } from "@aws-sdk/client-ecs";
import type { DeploymentConfig, DescribeEndpointCommandOutput } from "@aws-sdk/client-sagemaker";
import { describe, expect, it, vi } from "vitest";
import type { SmokeContract, SmokeVerdict } from "../../infra/lambda/smoke-test/src/types.js";
import type { Clock } from "../../src/deploy/clock.js";
import type { ReleaseDrivers } from "../../src/deploy/drivers.js";
import { ecsFailed, progressOf } from "../../src/deploy/ecs.js";
import {
  type LedgerStore,
  type LockItem,
  LockLostError,
  type ReleaseRecord,
} from "../../src/deploy/ledger.js";
import type { ObservedAlarm, ObservedEcs, ObservedSageMaker } from "../../src/deploy/plan.js";
import {
  type CoordinatorOptions,
  type ReleaseResult,
  resumeRelease,
  runRelease,
} from "../../src/deploy/release.js";
import { rollbackEnvironment } from "../../src/deploy/rollback.js";
import { judgeEndpoint } from "../../src/deploy/sagemaker.js";
import { environmentResources, releaseAlarms } from "../../src/environment.js";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import { releaseSummary } from "../../src/gh/summary.js";

// ---------------------------------------------------------------------------------
// A small world: the fakes implement the drivers' interfaces and follow scripts; each
// call costs API time on a fake clock, and every call that changes something is logged.

const T0 = Date.parse("2026-11-26T10:00:00.000Z");
const POLL = 1_000;
const API_MS = 7;
const resources = environmentResources("staging");
const ALARMS = releaseAlarms(resources);
const REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const DIGEST = `sha256:${"a".repeat(64)}`;
const OTHER_DIGEST = `sha256:${"d".repeat(64)}`;
const IMAGE = `${REGISTRY}/astrolens-staging/inference@${DIGEST}`;
const OLD_IMAGE = `${REGISTRY}/astrolens-staging/inference@sha256:${"0".repeat(64)}`;
const SMOKE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:astrolens-staging-smoke-test";
const OLD_TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/astrolens-staging-inference:7";
const NEW_TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/astrolens-staging-inference:8";
const DEPLOYMENT =
  "arn:aws:ecs:us-east-1:123456789012:service-deployment/astrolens-staging/astrolens-staging-inference/n3w";
const PREV_CONFIG = "astrolens-staging-inference-000000000000-cccccccccccc";
const NEW_CONFIG = "astrolens-staging-inference-aaaaaaaaaaaa-bbbbbbbbbbbb";
const CONTRACT: SmokeContract = {
  name: "astrolens",
  version: "2.0.0",
  manifestSha256: "b".repeat(64),
  tileSize: 64,
  classifier: { classes: ["point_source", "extended_source", "streak", "hot_pixels", "empty_sky"] },
  detector: { classes: ["source"], confidenceThreshold: 0.25 },
  ood: { thresholds: { msp: 0.5, energy: 3, mahalanobis: 12 }, rule: "majority", minVotes: 2 },
};

class FakeClock implements Clock {
  t = T0;
  sleeps = 0;
  now = () => this.t;
  sleep = async (ms: number) => {
    if (++this.sleeps > 50_000) throw new Error("the coordinator never finished (runaway loop)");
    this.t += ms;
  };
}

class MemoryLedger implements LedgerStore {
  readonly items = new Map<string, LockItem | ReleaseRecord>();
  /** The stage of every record written, in order, and the records themselves. */
  readonly stages: string[] = [];
  readonly writes: ReleaseRecord[] = [];
  private key = (env: string, id: string) => `${env}|${id}`;
  private lock = (env: string) => this.items.get(this.key(env, "#lock")) as LockItem | undefined;

  async acquireLock(lock: LockItem) {
    const held = this.lock(lock.environment);
    if (held) return { acquired: false as const, holder: structuredClone(held) };
    this.items.set(this.key(lock.environment, "#lock"), structuredClone(lock));
    return { acquired: true as const };
  }
  async takeOverLock(env: string, seenOwner: string, owner: string, now: string) {
    const held = this.lock(env);
    if (!held || held.owner !== seenOwner) return false;
    Object.assign(held, { owner, heartbeatAt: now, detached: false });
    return true;
  }
  async heartbeat(env: string, owner: string, now: string, detached = false) {
    const held = this.lock(env);
    if (!held || held.owner !== owner) throw new LockLostError("lost the lock");
    Object.assign(held, { heartbeatAt: now, detached });
  }
  async releaseLock(env: string, owner: string) {
    if (this.lock(env)?.owner === owner) this.items.delete(this.key(env, "#lock"));
  }
  async readLock(env: string) {
    const held = this.lock(env);
    return held ? structuredClone(held) : undefined;
  }
  async putRecord(record: ReleaseRecord) {
    this.items.set(this.key(record.environment, record.releaseId), structuredClone(record));
    this.stages.push(record.stage);
    this.writes.push(structuredClone(record));
  }
  async getRecord(env: string, id: string) {
    const found = this.items.get(this.key(env, id)) as ReleaseRecord | undefined;
    return found ? structuredClone(found) : undefined;
  }
  async listRecords(env: string, limit: number) {
    return [...this.items.entries()]
      .filter(([k]) => k.startsWith(`${env}|`) && !k.endsWith("|#lock"))
      .map(([, v]) => structuredClone(v) as ReleaseRecord)
      .sort((a, b) => b.releaseId.localeCompare(a.releaseId))
      .slice(0, limit);
  }
  records(): ReleaseRecord[] {
    return [...this.items.values()].filter((v): v is ReleaseRecord => "stage" in v);
  }
  only(): ReleaseRecord {
    const all = this.records();
    expect(all).toHaveLength(1);
    return all[0] as ReleaseRecord;
  }
}

type Endpoint = Pick<
  DescribeEndpointCommandOutput,
  "EndpointStatus" | "EndpointConfigName" | "PendingDeploymentSummary" | "FailureReason" | "LastModifiedTime"
>;

const dep = (
  status: ServiceDeployment["status"],
  lifecycleStage?: string,
  hook?: string,
  extra: Partial<ServiceDeployment> = {},
): ServiceDeployment => ({
  serviceDeploymentArn: DEPLOYMENT,
  status,
  ...(lifecycleStage ? { lifecycleStage: lifecycleStage as ServiceDeployment["lifecycleStage"] } : {}),
  ...(hook
    ? { lifecycleHookDetails: [{ hookId: "h1", targetArn: SMOKE_ARN, status: hook as "SUCCEEDED" }] }
    : {}),
  ...extra,
});

/** ECS through its stages: the hook runs at POST_TEST_TRAFFIC_SHIFT, then production, bake, success. */
const ECS_HAPPY = [
  dep("PENDING"),
  dep("IN_PROGRESS", "SCALE_UP"),
  dep("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", "IN_PROGRESS"),
  dep("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", "SUCCEEDED"),
  dep("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "SUCCEEDED"),
  ...Array.from({ length: 20 }, () => dep("IN_PROGRESS", "BAKE_TIME", "SUCCEEDED")),
  dep("IN_PROGRESS", "CLEAN_UP", "SUCCEEDED"),
  dep("SUCCESSFUL", undefined, "SUCCEEDED"),
];

const smUpdating = (message: string, status = "Creating"): Endpoint => ({
  EndpointStatus: "Updating",
  EndpointConfigName: PREV_CONFIG,
  LastModifiedTime: new Date(T0 + 1),
  PendingDeploymentSummary: {
    EndpointConfigName: NEW_CONFIG,
    ProductionVariants: [
      {
        VariantName: "AllTraffic",
        VariantStatus: [{ Status: status as "Creating", StatusMessage: message }],
      },
    ],
  },
});
const SM_LAUNCHING = smUpdating("Launching 2 instance(s).");
const SM_CANARY = smUpdating("Activating traffic on canary capacity of 1 instance(s).", "ActivatingTraffic");
const SM_FINAL_BAKE = smUpdating(
  "Baking for 60 seconds (TerminationWaitInSeconds) with traffic enabled on full capacity of 2 instance(s).",
  "Baking",
);
const SM_DONE: Endpoint = {
  EndpointStatus: "InService",
  EndpointConfigName: NEW_CONFIG,
  LastModifiedTime: new Date(T0 + 2),
};
/** B3: SageMaker rolled its update back; the waiter would call this a success. */
const SM_SILENT_ROLLBACK: Endpoint = {
  EndpointStatus: "InService",
  EndpointConfigName: PREV_CONFIG,
  LastModifiedTime: new Date(T0 + 36_000_000),
  FailureReason: "Alarm astrolens-staging-sagemaker-invocation-5xx is in ALARM",
};
const SM_HAPPY = [SM_LAUNCHING, SM_CANARY, SM_FINAL_BAKE, SM_FINAL_BAKE, SM_DONE];

const PASSED: SmokeVerdict = {
  ok: true,
  target: `sagemaker:${resources.endpoint}`,
  modelVersion: "2.0.0",
  checks: [{ name: "ping", ok: true, detail: "200 OK", ms: 4 }],
  summary: `smoke test passed: 1 check against sagemaker:${resources.endpoint} (model 2.0.0) in 4 ms`,
};

interface WorldOptions {
  ecsSteps?: ServiceDeployment[];
  smSteps?: Endpoint[];
  alarm?: { name: string; at: number; reason: string };
  alarmsAtStart?: Record<string, "ALARM">;
  smokeVerdict?: SmokeVerdict;
  imageExists?: boolean;
  hangAt?: string;
  observeError?: { ecs?: Error; sagemaker?: Error; alarms?: Error };
  /** Both targets already run the new version. */
  live?: "new";
  smDeployError?: Error;
  /** The service has no lifecycle hook to read the hook role from. */
  noHookRole?: boolean;
}

class World {
  readonly clock = new FakeClock();
  readonly ledger = new MemoryLedger();
  readonly calls: string[] = [];
  readonly counts = new Map<string, number>();
  hung?: string;
  ecsIndex = 0;
  smIndex = 0;
  registered = false;
  ecsDeployed = false;
  ecsConfig?: DeploymentConfiguration;
  ecsRestored?: DeploymentConfiguration;
  ecsRollbackChecks = 0;
  smPrepared = false;
  smDeployed = false;
  smConfig?: DeploymentConfig;
  smRollbackRequested = false;
  smLast?: Endpoint;
  finalBakeFrom?: number;

  constructor(readonly o: WorldOptions = {}) {}

  private async api(point: string): Promise<void> {
    this.clock.t += API_MS;
    const n = (this.counts.get(point) ?? 0) + 1;
    this.counts.set(point, n);
    if (this.o.hangAt === point || this.o.hangAt === `${point}#${n}`) {
      this.o.hangAt = undefined;
      this.hung = point;
      // The run is killed here: this call never returns.
      await new Promise(() => {});
    }
  }

  private ecsNow(): ServiceDeployment {
    const steps = this.o.ecsSteps ?? ECS_HAPPY;
    return steps[Math.min(this.ecsIndex++, steps.length - 1)] as ServiceDeployment;
  }

  private endpointNow(config: string): Endpoint {
    if (this.smRollbackRequested && config === PREV_CONFIG) {
      return {
        EndpointStatus: "InService",
        EndpointConfigName: PREV_CONFIG,
        LastModifiedTime: new Date(this.clock.t),
      };
    }
    if (!this.smDeployed || this.o.live === "new") {
      return this.o.live === "new"
        ? SM_DONE
        : {
            EndpointStatus: "InService",
            EndpointConfigName: PREV_CONFIG,
            LastModifiedTime: new Date(T0 - 86_400_000),
          };
    }
    const steps = this.o.smSteps ?? SM_HAPPY;
    const step = steps[Math.min(this.smIndex, steps.length - 1)] as Endpoint;
    // As on AWS, the final bake lasts TerminationWaitInSeconds: SageMaker stays there
    // until it has elapsed, however often it is asked.
    if (step === SM_FINAL_BAKE) {
      this.finalBakeFrom ??= this.clock.t;
      const wait = (this.smConfig?.BlueGreenUpdatePolicy?.TerminationWaitInSeconds ?? 0) * 1000;
      if (this.clock.t - this.finalBakeFrom >= wait) this.smIndex++;
    } else {
      this.smIndex++;
    }
    this.smLast = step;
    return this.smLast;
  }

  private alarmStates(): ObservedAlarm[] {
    return ALARMS.map((name) => {
      const fire = this.o.alarm;
      if (fire && fire.name === name && this.clock.t >= fire.at) {
        return {
          name,
          state: "ALARM" as const,
          reason: fire.reason,
          updatedAt: new Date(fire.at).toISOString(),
        };
      }
      if (this.o.alarmsAtStart?.[name]) {
        return {
          name,
          state: "ALARM" as const,
          reason: "Threshold Crossed: 3 datapoints > 0.2",
          updatedAt: "2026-11-26T09:00:00.000Z",
        };
      }
      return {
        name,
        state: "OK" as const,
        reason: "Threshold Crossed: no datapoints",
        updatedAt: "2026-11-01T00:00:00.000Z",
      };
    });
  }

  drivers(): ReleaseDrivers {
    return {
      images: {
        exists: async () => {
          await this.api("ecr.describeImages");
          return this.o.imageExists ?? true;
        },
      },
      ecs: {
        observe: async (): Promise<ObservedEcs> => {
          await this.api("ecs.observe");
          if (this.o.observeError?.ecs) throw this.o.observeError.ecs;
          const image = this.o.live === "new" ? IMAGE : OLD_IMAGE;
          return {
            serviceArn:
              "arn:aws:ecs:us-east-1:123456789012:service/astrolens-staging/astrolens-staging-inference",
            deploymentController: "ECS",
            taskDefinition: {
              taskDefinitionArn: this.o.live === "new" ? NEW_TD : OLD_TD,
              family: resources.taskFamily,
              containerDefinitions: [{ name: "inference", image }],
            },
            taskDefinitionTags: [],
            deploymentConfiguration: { strategy: "BLUE_GREEN", bakeTimeInMinutes: 5 },
            ...(this.o.noHookRole
              ? {}
              : { hookRoleArn: "arn:aws:iam::123456789012:role/astrolens-staging-hooks" }),
            testUrl: "http://alb.local:8443",
            ...(this.registered ? { reusableTaskDefinitionArn: NEW_TD } : {}),
          };
        },
        register: async (plan) => {
          this.calls.push(`ecs.register:${plan.taskDefinition.action}`);
          await this.api("ecs.register");
          this.registered = true;
          return { arn: NEW_TD, reused: plan.taskDefinition.action === "reuse" };
        },
        deploy: async (taskDefinitionArn, configuration) => {
          this.calls.push(`ecs.deploy:${taskDefinitionArn === OLD_TD ? "previous" : "new"}`);
          await this.api("ecs.deploy:before");
          this.ecsDeployed = true;
          this.ecsConfig = configuration;
          await this.api("ecs.deploy:after");
          return DEPLOYMENT;
        },
        findDeploymentSince: async () => {
          this.calls.push("ecs.find");
          await this.api("ecs.find");
          return this.ecsDeployed ? DEPLOYMENT : undefined;
        },
        check: async () => {
          await this.api("ecs.check");
          const deployment = this.ecsNow();
          const progress = progressOf(deployment, SMOKE_ARN);
          if (ecsFailed(progress.phase))
            progress.reason = `ECS deployment ${progress.status}; ${deployment.statusReason ?? "no reason"}`;
          return progress;
        },
        rollback: async (options) => {
          this.calls.push("ecs.rollback");
          await this.api("ecs.rollback");
          if (!options.deploymentArn)
            return {
              action: "redeployed",
              deploymentArn: "back",
              previousTaskDefinitionArn: options.previousTaskDefinitionArn,
            };
          const last = (this.o.ecsSteps ?? ECS_HAPPY)[Math.max(0, this.ecsIndex - 1)];
          const action = last?.status?.startsWith("ROLLBACK_") ? "native" : "stopped";
          return {
            action,
            deploymentArn: options.deploymentArn,
            previousTaskDefinitionArn: options.previousTaskDefinitionArn,
          };
        },
        restoreConfiguration: async (configuration) => {
          this.calls.push("ecs.restoreConfiguration");
          await this.api("ecs.restoreConfiguration");
          this.ecsRestored = configuration;
        },
        checkRollback: async () => {
          await this.api("ecs.checkRollback");
          return ++this.ecsRollbackChecks >= 2
            ? { state: "done", detail: "ECS rolled back" }
            : { state: "waiting", detail: "ECS ROLLBACK_IN_PROGRESS" };
        },
      },
      sagemaker: {
        observe: async (): Promise<ObservedSageMaker> => {
          await this.api("sm.observe");
          if (this.o.observeError?.sagemaker) throw this.o.observeError.sagemaker;
          const config = this.o.live === "new" ? NEW_CONFIG : PREV_CONFIG;
          return {
            endpointName: resources.endpoint,
            endpointStatus: "InService",
            endpointConfigName: config,
            endpointConfig: {
              EndpointConfigName: config,
              ProductionVariants: [{ VariantName: "AllTraffic", ModelName: config }],
            },
            model: {
              ModelName: config,
              PrimaryContainer: { Image: this.o.live === "new" ? IMAGE : OLD_IMAGE },
            },
            ...(this.smPrepared || this.o.live === "new"
              ? { existingModel: { image: IMAGE }, existingEndpointConfig: { modelNames: [NEW_CONFIG] } }
              : {}),
          };
        },
        prepare: async (plan) => {
          this.calls.push(`sm.prepare:${plan.model.action}`);
          await this.api("sm.prepare:before");
          this.smPrepared = true;
          return { model: "created", endpointConfig: "created" };
        },
        deploy: async (name, config) => {
          this.calls.push(`sm.deploy:${name === PREV_CONFIG ? "previous" : "new"}`);
          await this.api("sm.deploy:before");
          if (this.o.smDeployError) throw this.o.smDeployError;
          if (this.smDeployed) throw new Error(`Cannot update in-progress endpoint "${resources.endpoint}".`);
          this.smDeployed = true;
          this.smConfig = config;
          await this.api("sm.deploy:after");
        },
        check: async (config, requestedAt, seenUpdating) => {
          await this.api("sm.check");
          return judgeEndpoint(this.endpointNow(config), config, requestedAt, seenUpdating);
        },
        rollback: async () => {
          this.calls.push("sm.rollback");
          await this.api("sm.rollback");
          // Like DescribeEndpoint, each look sees SageMaker's progress.
          const last = this.smDeployed ? this.endpointNow(NEW_CONFIG) : undefined;
          if (last?.EndpointStatus === "Updating") return "busy";
          if (!this.smDeployed || last?.EndpointConfigName === PREV_CONFIG) return "unchanged";
          this.smRollbackRequested = true;
          return "requested";
        },
      },
      alarms: {
        describe: async (names) => {
          await this.api("alarms");
          if (this.o.observeError?.alarms) throw this.o.observeError.alarms;
          return this.alarmStates().filter((a) => names.includes(a.name));
        },
      },
      smoke: {
        resolve: async () => {
          await this.api("lambda.get");
          return SMOKE_ARN;
        },
        invoke: async (_arn, invocation) => {
          this.calls.push(
            `smoke.invoke:${"endpointName" in invocation.target ? invocation.target.endpointName : invocation.target.url}`,
          );
          await this.api("smoke.invoke");
          return this.o.smokeVerdict ?? PASSED;
        },
      },
      ledger: this.ledger,
    };
  }

  options(extra: Partial<CoordinatorOptions> = {}): CoordinatorOptions {
    return {
      drivers: this.drivers(),
      logger: createMemoryLogger(),
      clock: this.clock,
      pollIntervalMs: POLL,
      staleLockAfterMs: 60_000,
      ...extra,
    };
  }

  /** Calls that change something in AWS. */
  changes(): string[] {
    return this.calls.filter((c) => /register|prepare|deploy|rollback/.test(c));
  }
}

function request(overrides: Record<string, unknown> = {}) {
  return {
    environment: "staging",
    imageUri: IMAGE,
    model: CONTRACT,
    bakeMinutes: 1,
    stepWaitSeconds: 30,
    provenance: {
      scanVerdict: "pass",
      waivers: ["ASTROLENS-2026-0001"],
      gate: { verdict: "pass", metrics: { accuracy: 0.958 } },
    },
    ...overrides,
  };
}

async function configurationError(promise: Promise<unknown>): Promise<ConfigurationError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected a ConfigurationError");
}

/** Starts a run that will be killed at the world's hang point; resolves once it is. */
async function killedRun(world: World, start: () => Promise<unknown>): Promise<void> {
  void start();
  await vi.waitFor(() => expect(world.hung).toBeDefined(), { timeout: 5000, interval: 1 });
}

// ---------------------------------------------------------------------------------

describe("a release", () => {
  it("happy path: both targets on the new version, the ledger complete, the lock released", async () => {
    const world = new World();
    const result = await runRelease(request(), world.options());

    expect(result.status).toBe("succeeded");
    expect(result.reason).toBe(
      "Released sha256:aaaaaaaaaaaa… (model 2.0.0) to staging: ECS and SageMaker both serve it after a 1-minute bake with no alarm.",
    );
    expect(world.changes()).toEqual([
      "ecs.register:register",
      "sm.prepare:create",
      "ecs.deploy:new",
      "sm.deploy:new",
    ]);
    expect(world.calls).toContain(`smoke.invoke:${resources.endpoint}`);

    const record = world.ledger.only();
    expect(record).toMatchObject({
      environment: "staging",
      kind: "release",
      digest: DIGEST,
      imageUri: IMAGE,
      outcome: "succeeded",
      stage: "done",
      model: { version: "2.0.0", manifestSha256: "b".repeat(64) },
      provenance: { scanVerdict: "pass", gate: { verdict: "pass", metrics: { accuracy: 0.958 } } },
      ecs: { previousTaskDefinitionArn: OLD_TD, taskDefinitionArn: NEW_TD, deploymentArn: DEPLOYMENT },
      sagemaker: { previousEndpointConfigName: PREV_CONFIG, endpointConfigName: NEW_CONFIG },
      smoke: {
        ecs: { ok: true, source: "ecs-hook", hookStatus: "SUCCEEDED" },
        sagemaker: { ok: true, source: "invoke" },
      },
    });
    expect(record.releaseId).toMatch(/^20261126T100000Z-aaaaaaaaaaaa$/);
    expect(record.finishedAt).toBeDefined();
    expect(Object.keys(record.timings)).toEqual([
      "started",
      "resources-ready",
      "ecs-deploying",
      "sagemaker-deploying",
      "baking",
    ]);
    expect(record.timings.baking).toBeGreaterThanOrEqual(60_000);
    // The ledger was written at every stage, in order.
    expect([...new Set(world.ledger.stages)]).toEqual([
      "started",
      "resources-ready",
      "ecs-deploying",
      "sagemaker-deploying",
      "baking",
      "done",
    ]);
    expect(await world.ledger.readLock("staging")).toBeUndefined();
    // What the targets were asked for.
    expect(world.ecsConfig).toMatchObject({
      strategy: "BLUE_GREEN",
      bakeTimeInMinutes: 1,
      alarms: { alarmNames: ALARMS, enable: true, rollback: true },
      lifecycleHooks: [
        {
          hookTargetArn: SMOKE_ARN,
          lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT"],
          hookDetails: {
            targetUrl: "http://alb.local:8443",
            contract: CONTRACT,
            releaseId: record.releaseId,
          },
        },
      ],
    });
    expect(record.ecs.deploymentConfiguration).toEqual(world.ecsConfig);
    // Nothing rolled back, so the release's configuration stays.
    expect(world.calls).not.toContain("ecs.restoreConfiguration");
    expect(world.smConfig?.BlueGreenUpdatePolicy?.TrafficRoutingConfiguration?.Type).toBe("CANARY");
    expect(world.smConfig?.AutoRollbackConfiguration?.Alarms?.map((a) => a.AlarmName)).toEqual(ALARMS);
  });

  it("starts SageMaker only after the ECS smoke hook passed", async () => {
    const world = new World();
    const logger = createMemoryLogger();
    await runRelease(request(), { ...world.options(), logger });
    const hookPassed = logger.lines.findIndex((l) => l.includes("smoke test passed against ECS green"));
    const smStarted = logger.lines.findIndex((l) => l.includes("SageMaker update of"));
    expect(hookPassed).toBeGreaterThan(-1);
    expect(smStarted).toBeGreaterThan(hookPassed);
  });

  it("alarm during the bake: both targets rolled back, the reason names the alarm and its reason", async () => {
    const alarm = resources.alarms.albTarget5xxRate;
    // A bake longer than SageMaker's 3600 s final bake: the coordinator's own clock keeps
    // watching after SageMaker finished, so SageMaker must be asked to go back.
    const world = new World({
      smSteps: [SM_LAUNCHING, SM_FINAL_BAKE, SM_DONE],
      alarm: {
        name: alarm,
        at: T0 + 3_700_000,
        reason: "Threshold Crossed: 2 datapoints [0.31, 0.4] > 0.05",
      },
    });
    const result = await runRelease(request({ bakeMinutes: 90 }), world.options());

    expect(result.status).toBe("rolled-back");
    expect(result.reason).toBe(
      `Rolled back sha256:aaaaaaaaaaaa… in staging because alarm ${alarm} fired during the bake (Threshold Crossed: 2 datapoints [0.31, 0.4] > 0.05): ECS and SageMaker are both back on the previous version.`,
    );
    expect(world.changes()).toEqual([
      "ecs.register:register",
      "sm.prepare:create",
      "ecs.deploy:new",
      "sm.deploy:new",
      "ecs.rollback",
      "sm.rollback",
    ]);
    const record = world.ledger.only();
    expect(record.alarms.events).toEqual([
      expect.objectContaining({
        name: alarm,
        from: "OK",
        to: "ALARM",
        reason: "Threshold Crossed: 2 datapoints [0.31, 0.4] > 0.05",
      }),
    ]);
    expect(record.rollback).toMatchObject({ trigger: "alarm" });
    // Both requests go out at once, before the ledger is written for the rollback.
    const firstRollbackWrite = world.ledger.writes.find((w) => w.stage === "rolling-back");
    expect(firstRollbackWrite?.rollback?.requests.ecs).toBeDefined();
    expect(firstRollbackWrite?.rollback?.requests.sagemaker).toBeDefined();
    expect(record.rollback?.deferred).toBeUndefined();
    expect(record.ecs.rollback).toMatchObject({
      action: "stopped",
      state: "done",
      configurationRestored: true,
    });
    expect(record.sagemaker.rollback).toMatchObject({ result: "requested", state: "done" });
    // The service's configuration is the one the release found, not the release's.
    expect(world.ecsRestored).toEqual({ strategy: "BLUE_GREEN", bakeTimeInMinutes: 5 });
    expect(record.ecs.previousDeploymentConfiguration).toEqual(world.ecsRestored);
    // Detection to the later of the two requests: within one poll (here, API time only).
    expect(record.rollback?.latencyMs).toBeGreaterThan(0);
    expect(record.rollback?.latencyMs).toBeLessThan(POLL);
    expect(await world.ledger.readLock("staging")).toBeUndefined();
  });

  it("alarm while SageMaker is still in its final bake: asked again once SageMaker has rolled back by itself", async () => {
    const alarm = resources.alarms.sagemakerModelLatency;
    const world = new World({
      smSteps: [SM_LAUNCHING, ...Array.from({ length: 12 }, () => SM_FINAL_BAKE), SM_SILENT_ROLLBACK],
      alarm: { name: alarm, at: T0 + 8_000, reason: "Threshold Crossed" },
    });
    const result = await runRelease(request(), world.options());
    expect(result.status).toBe("rolled-back");
    const record = world.ledger.only();
    expect(record.rollback?.deferred).toBe(true);
    expect(record.rollback?.alarms).toEqual([alarm]);
    expect(record.sagemaker.rollback).toMatchObject({ result: "unchanged", state: "done" });
    expect(world.calls.filter((c) => c === "sm.rollback").length).toBeGreaterThan(1);
    // SageMaker turns back by itself on its own alarm; the latency is ECS's request.
    expect(record.rollback?.latencyMs).toBe(
      Date.parse(record.rollback?.requests.ecs ?? "") - Date.parse(record.rollback?.detectedAt ?? ""),
    );
    expect(record.rollback?.latencyMs).toBeLessThan(POLL);
  });

  it("SageMaker's silent rollback (InService on the old config): ECS is rolled back too, the release reported failed over", async () => {
    const world = new World({ smSteps: [SM_LAUNCHING, SM_CANARY, SM_SILENT_ROLLBACK] });
    const result = await runRelease(request(), world.options());

    expect(result.status).toBe("rolled-back");
    expect(result.reason).toBe(
      `Rolled back sha256:aaaaaaaaaaaa… in staging because SageMaker rolled the update back on its own: endpoint is InService on ${PREV_CONFIG}, not on ${NEW_CONFIG} (FailureReason: Alarm astrolens-staging-sagemaker-invocation-5xx is in ALARM): ECS and SageMaker are both back on the previous version.`,
    );
    expect(world.changes()).toContain("ecs.rollback");
    const record = world.ledger.only();
    expect(record.rollback).toMatchObject({ trigger: "sagemaker" });
    expect(record.ecs.rollback).toMatchObject({ action: "stopped", state: "done" });
    // SageMaker was already back: nothing more was asked of it.
    expect(record.sagemaker.rollback).toMatchObject({ result: "unchanged", state: "done" });
    // The benchmark's number: SageMaker's failure seen -> ECS's rollback requested.
    const detected = Date.parse(record.rollback?.detectedAt ?? "");
    const requested = Date.parse(record.rollback?.requests.ecs ?? "");
    expect(record.rollback?.latencyMs).toBe(requested - detected);
    expect(record.rollback?.latencyMs).toBeLessThanOrEqual(2 * API_MS);
  });

  it("sees the silent rollback even where LastModifiedTime is not kept (the update was seen running)", async () => {
    const stale = { ...SM_SILENT_ROLLBACK, LastModifiedTime: new Date(T0 - 86_400_000) };
    const world = new World({ smSteps: [SM_LAUNCHING, SM_CANARY, stale] });
    const result = await runRelease(request(), world.options());
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain("SageMaker rolled the update back on its own");
    // Seen at once, not after the 120 s start grace.
    const record = world.ledger.only();
    expect(
      Date.parse(record.rollback?.detectedAt ?? "") - Date.parse(record.sagemaker.requestedAt ?? ""),
    ).toBeLessThan(10_000);
  });

  it("ECS smoke hook fails: rolled back before production traffic, SageMaker never updated or rolled back", async () => {
    const world = new World({
      ecsSteps: [
        dep("IN_PROGRESS", "SCALE_UP"),
        dep("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", "IN_PROGRESS"),
        dep("ROLLBACK_IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", "FAILED", {
          statusReason: "deployment failed: hook execution failure(s) detected",
        }),
        dep("ROLLBACK_SUCCESSFUL", undefined, "FAILED"),
      ],
    });
    const result = await runRelease(request(), world.options());

    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain(
      "because the smoke test failed against ECS green before production traffic moved",
    );
    expect(result.reason).toContain("ECS is back on the previous revision and SageMaker was never updated.");
    expect(world.calls.some((c) => c.startsWith("sm.deploy"))).toBe(false);
    expect(world.calls).not.toContain("sm.rollback");
    expect(world.calls.some((c) => c.startsWith("smoke.invoke"))).toBe(false);
    const record = world.ledger.only();
    expect(record.smoke.ecs).toMatchObject({ ok: false, source: "ecs-hook", hookStatus: "FAILED" });
    expect(record.smoke.ecs?.logHint).toContain(`filter resourceArn = "${DEPLOYMENT}"`);
    expect(record.rollback?.trigger).toBe("ecs-smoke");
    // ECS was already rolling back by itself: no request needed, only followed.
    expect(record.ecs.rollback).toMatchObject({ action: "native", state: "done" });
    expect(record.sagemaker.rollback).toMatchObject({ result: "not-deployed" });
    expect(record.sagemaker.requestedAt).toBeUndefined();
  });

  it("SageMaker smoke test fails: both rolled back, every check in the ledger", async () => {
    const failed: SmokeVerdict = {
      ...PASSED,
      ok: false,
      checks: [
        ...PASSED.checks,
        { name: "model identity", ok: false, detail: "served manifest 0000…, expected bbbb…", ms: 3 },
      ],
      summary: 'smoke test failed at "model identity": served manifest 0000…, expected bbbb…',
    };
    const world = new World({ smokeVerdict: failed });
    const result = await runRelease(request(), world.options());
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain(
      `because the smoke test failed against SageMaker endpoint ${resources.endpoint} (smoke test failed at "model identity"`,
    );
    const record = world.ledger.only();
    expect(record.smoke.sagemaker?.checks).toHaveLength(2);
    expect(record.rollback?.trigger).toBe("sagemaker-smoke");
    expect(world.changes()).toEqual(expect.arrayContaining(["ecs.rollback", "sm.rollback"]));
  });

  it("an error mid-flight rolls both back rather than leaving a third state", async () => {
    const world = new World({ smDeployError: new Error("socket hang up") });
    const result = await runRelease(request(), world.options());
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain("because the release hit an error (socket hang up)");
    expect(world.changes()).toContain("ecs.rollback");
  });

  it("an error before anything was deployed ends the release with both targets untouched", async () => {
    const world = new World();
    const drivers = world.drivers();
    drivers.ecs.register = async () => {
      throw new Error("RegisterTaskDefinition: ThrottlingException");
    };
    const result = await runRelease(request(), { ...world.options(), drivers });
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toBe(
      "Release of sha256:aaaaaaaaaaaa… to staging stopped before anything was deployed (RegisterTaskDefinition: ThrottlingException); both targets remain on the previous version.",
    );
    expect(world.calls.filter((c) => /deploy|rollback/.test(c))).toEqual([]);
    expect(await world.ledger.readLock("staging")).toBeUndefined();
  });

  it("SageMaker that never shows the accepted update fails the release after the start grace", async () => {
    const untouched: Endpoint = {
      EndpointStatus: "InService",
      EndpointConfigName: PREV_CONFIG,
      LastModifiedTime: new Date(T0 - 86_400_000),
    };
    const world = new World({ smSteps: [untouched] });
    const result = await runRelease(request(), world.options({ sageMakerStartGraceMs: 30_000 }));
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain(
      "SageMaker showed no update of the endpoint 30 s after UpdateEndpoint was accepted",
    );
    const record = world.ledger.only();
    const waited =
      Date.parse(record.rollback?.detectedAt ?? "") - Date.parse(record.sagemaker.requestedAt ?? "");
    expect(waited).toBeGreaterThan(30_000);
    expect(waited).toBeLessThan(30_000 + 2 * POLL);
  });

  it("dry run: prints the plan and changes nothing", async () => {
    const world = new World();
    const logger = createMemoryLogger();
    const result = await runRelease(request(), { ...world.options(), logger, dryRun: true });
    expect(result.status).toBe("planned");
    expect(result.plan?.steps).toHaveLength(8);
    expect(logger.lines.join("\n")).toContain(`+ endpoint config ${NEW_CONFIG} (create)`);
    expect(world.changes()).toEqual([]);
    expect(world.ledger.items.size).toBe(0);
  });

  it("a finished release of the same version is a no-op", async () => {
    const world = new World();
    const first = await runRelease(request(), world.options());
    const again = new World({ live: "new" });
    for (const [k, v] of world.ledger.items) again.ledger.items.set(k, v);
    const result = await runRelease(request(), again.options());
    expect(result.status).toBe("no-op");
    expect(result.reason).toBe(
      `staging already runs sha256:aaaaaaaaaaaa… (model 2.0.0) on both targets, released by ${first.releaseId}; nothing to do.`,
    );
    expect(again.changes()).toEqual([]);
    expect(await again.ledger.readLock("staging")).toBeUndefined();
  });
});

describe("one release per environment", () => {
  it("a second release while the first runs is refused, naming the holder and its start", async () => {
    const first = new World({ hangAt: "ecs.check#3" });
    await killedRun(first, () => runRelease(request(), first.options()));
    // Straight away: the first run's heartbeat is fresh.
    const second = Object.assign(new World(), { clock: first.clock, ledger: first.ledger });
    const err = await configurationError(
      runRelease(request({ imageUri: IMAGE.replace(DIGEST, OTHER_DIGEST) }), second.options()),
    );
    const holder = first.ledger.only();
    expect(err.message).toBe(
      `environment staging is locked by release ${holder.releaseId} (image ${DIGEST}), started ${holder.startedAt} and still running: one release per environment at a time; wait for it to finish (\`astrolens-release status --env staging\`), then release again`,
    );
    expect(second.calls).toEqual([]);
    expect(second.counts.size).toBe(0);
  });

  it("the same version run again while the first is alive is refused too (no double driving)", async () => {
    const first = new World({ hangAt: "ecs.check#3" });
    await killedRun(first, () => runRelease(request(), first.options()));
    const second = Object.assign(new World(), { clock: first.clock, ledger: first.ledger });
    await configurationError(runRelease(request(), second.options()));
  });

  it("another version is refused while an orphaned release is in flight, saying how to finish it", async () => {
    const first = new World({ hangAt: "ecs.check#3" });
    await killedRun(first, () => runRelease(request(), first.options()));
    first.clock.t += 5 * 60_000;
    const second = Object.assign(new World(), { clock: first.clock, ledger: first.ledger });
    const err = await configurationError(
      runRelease(request({ imageUri: IMAGE.replace(DIGEST, OTHER_DIGEST) }), second.options()),
    );
    expect(err.message).toContain(
      `has release ${first.ledger.only().releaseId} (image ${DIGEST}, model 2.0.0) in flight`,
    );
    expect(err.message).toContain("astrolens-release resume --env staging");
    expect(second.changes()).toEqual([]);
  });
});

describe("bad input: nothing changed, each named", () => {
  const cases: Array<[string, WorldOptions, string]> = [
    ["a digest not in ECR", { imageExists: false }, `input "image": ${IMAGE} does not exist in ECR`],
    [
      "an unknown alarm",
      {
        observeError: {
          alarms: new ConfigurationError('input "alarms": CloudWatch has no alarm named typo'),
        },
      },
      'input "alarms": CloudWatch has no alarm named typo',
    ],
    [
      "a missing endpoint",
      {
        observeError: {
          sagemaker: new ConfigurationError("SageMaker endpoint astrolens-staging-inference does not exist"),
        },
      },
      "SageMaker endpoint astrolens-staging-inference does not exist",
    ],
    [
      "a service on the CODE_DEPLOY controller",
      {
        observeError: {
          ecs: new ConfigurationError(
            "ECS service astrolens-staging-inference uses the CODE_DEPLOY deployment controller",
          ),
        },
      },
      "uses the CODE_DEPLOY deployment controller",
    ],
  ];
  it.each(cases)("%s", async (_what, options, message) => {
    const world = new World(options);
    const err = await configurationError(runRelease(request(), world.options()));
    expect(err.message).toContain("nothing was changed");
    expect(err.message).toContain(message);
    expect(world.changes()).toEqual([]);
    expect(world.ledger.items.size).toBe(0);
  });

  it("reports every problem at once", async () => {
    const world = new World({
      imageExists: false,
      observeError: { alarms: new ConfigurationError("unknown alarm typo") },
    });
    const err = await configurationError(runRelease(request(), world.options()));
    expect(err.message).toContain('input "image"');
    expect(err.message).toContain("unknown alarm typo");
  });

  it("an alarm already in ALARM blocks, unless allowed — and then it is not a rollback alarm", async () => {
    const alarm = resources.alarms.anomalyRate;
    const blocked = new World({ alarmsAtStart: { [alarm]: "ALARM" } });
    const err = await configurationError(runRelease(request(), blocked.options()));
    expect(err.message).toContain(
      `alarm ${alarm} is already in ALARM (Threshold Crossed: 3 datapoints > 0.2`,
    );
    expect(blocked.changes()).toEqual([]);
    expect(blocked.ledger.items.size).toBe(0);

    const allowed = new World({ alarmsAtStart: { [alarm]: "ALARM" } });
    const result = await runRelease(request({ allowAlarms: [alarm] }), allowed.options());
    expect(result.status).toBe("succeeded");
    expect(allowed.ecsConfig?.alarms?.alarmNames).not.toContain(alarm);
    expect(allowed.smConfig?.AutoRollbackConfiguration?.Alarms?.map((a) => a.AlarmName)).not.toContain(alarm);
  });
});

describe("resuming after the run died", () => {
  const crashes: Array<[string, string, string, (world: World) => void]> = [
    [
      "preparing (after registering)",
      "sm.prepare:before",
      "started",
      (w) => {
        // The revision registered before the crash is reused, not registered twice.
        expect(w.calls.filter((c) => c.startsWith("ecs.register"))).toEqual([
          "ecs.register:register",
          "ecs.register:reuse",
        ]);
      },
    ],
    [
      "inside UpdateService, before ECS took it",
      "ecs.deploy:before",
      "ecs-deploying",
      (w) => {
        expect(w.calls).toContain("ecs.find");
        expect(w.calls.filter((c) => c === "ecs.deploy:new")).toHaveLength(2);
      },
    ],
    [
      "inside UpdateService, after ECS took it",
      "ecs.deploy:after",
      "ecs-deploying",
      (w) => {
        // Found by ListServiceDeployments, not started twice.
        expect(w.calls).toContain("ecs.find");
        expect(w.calls.filter((c) => c === "ecs.deploy:new")).toHaveLength(1);
      },
    ],
    [
      "following ECS",
      "ecs.check#3",
      "ecs-deploying",
      (w) => {
        expect(w.calls.filter((c) => c === "ecs.deploy:new")).toHaveLength(1);
      },
    ],
    [
      "inside UpdateEndpoint, before SageMaker took it",
      "sm.deploy:before",
      "sagemaker-deploying",
      (w) => {
        expect(w.calls.filter((c) => c === "sm.deploy:new")).toHaveLength(2);
      },
    ],
    [
      "following SageMaker",
      "sm.check#2",
      "sagemaker-deploying",
      (w) => {
        expect(w.calls.filter((c) => c === "sm.deploy:new")).toHaveLength(1);
      },
    ],
    [
      "in the bake",
      "alarms#20",
      "baking",
      (w) => {
        expect(w.changes()).toEqual([
          "ecs.register:register",
          "sm.prepare:create",
          "ecs.deploy:new",
          "sm.deploy:new",
        ]);
      },
    ],
  ];

  it.each(crashes)("killed %s: resumed to success", async (_what, hangAt, stage, check) => {
    const world = new World({ hangAt });
    await killedRun(world, () => runRelease(request(), world.options()));
    expect(world.ledger.only()).toMatchObject({ stage, outcome: "in-progress" });
    // The dead run's lock goes stale; the next run takes it over.
    world.clock.t += 2 * 60_000;
    const result = await resumeRelease("staging", world.options());
    expect(result.status).toBe("succeeded");
    expect(world.ledger.only().outcome).toBe("succeeded");
    expect(await world.ledger.readLock("staging")).toBeUndefined();
    check(world);
  });

  it("a run on this machine whose process is gone is resumed at once, without waiting for its heartbeat to go stale", async () => {
    const world = new World({ hangAt: "ecs.check#4" });
    const dead = { host: "runner-1", pid: 4242 };
    await killedRun(world, () => runRelease(request(), world.options({ runner: dead })));
    expect(await world.ledger.readLock("staging")).toMatchObject({ runner: dead });
    // Seconds later, not minutes: the heartbeat is fresh, but the process is known gone.
    world.clock.t += 2_000;
    await configurationError(runRelease(request(), world.options({ runnerGone: () => false })));
    const result = await runRelease(
      request(),
      world.options({ runner: { host: "runner-1", pid: 5151 }, runnerGone: (r) => r.pid === dead.pid }),
    );
    expect(result.status).toBe("succeeded");
    expect(world.ledger.records()).toHaveLength(1);
  });

  it("running the same release again resumes it (the re-run is the recovery)", async () => {
    const world = new World({ hangAt: "ecs.check#4" });
    await killedRun(world, () => runRelease(request(), world.options()));
    world.clock.t += 2 * 60_000;
    const result = await runRelease(request(), world.options());
    expect(result.status).toBe("succeeded");
    expect(world.ledger.records()).toHaveLength(1);
  });

  it("killed while rolling back: the rollback is finished, never a third state", async () => {
    const world = new World({
      smSteps: [SM_LAUNCHING, SM_FINAL_BAKE, SM_DONE],
      alarm: { name: resources.alarms.albP99Latency, at: T0 + 3_700_000, reason: "p99 2.1 s > 1 s" },
      hangAt: "ecs.checkRollback",
    });
    await killedRun(world, () => runRelease(request({ bakeMinutes: 90 }), world.options()));
    expect(world.ledger.only().stage).toBe("rolling-back");
    world.clock.t += 2 * 60_000;
    const result = await resumeRelease("staging", world.options());
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain(`alarm ${resources.alarms.albP99Latency} fired during the bake`);
    // The rollback requests were not sent twice.
    expect(world.calls.filter((c) => c === "ecs.rollback")).toHaveLength(1);
  });

  it("a resumed release whose deployment can no longer finish is rolled back", async () => {
    const world = new World({
      hangAt: "ecs.check#2",
      ecsSteps: [
        dep("IN_PROGRESS", "SCALE_UP"),
        dep("IN_PROGRESS", "SCALE_UP"),
        dep("STOPPED", "SCALE_UP", undefined, { statusReason: "superseded by a new deployment" }),
      ],
    });
    await killedRun(world, () => runRelease(request(), world.options()));
    world.clock.t += 2 * 60_000;
    const result = await resumeRelease("staging", world.options());
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain("because the ECS deployment failed (ECS deployment STOPPED");
  });

  it("a live run is not taken over", async () => {
    const world = new World({ hangAt: "ecs.check#3" });
    await killedRun(world, () => runRelease(request(), world.options()));
    await configurationError(resumeRelease("staging", world.options()));
  });
});

describe("the smoke hook's role", () => {
  it("comes from the environment's last release when the service lost its hook", async () => {
    const world = new World({ noHookRole: true });
    const refused = await configurationError(runRelease(request(), world.options()));
    expect(refused.message).toContain('option "hook-role-arn"');
    expect(world.changes()).toEqual([]);

    const earlier = new World();
    await runRelease(request(), earlier.options());
    const record = { ...earlier.ledger.only(), releaseId: "20261101T000000Z-000000000000" };
    await world.ledger.putRecord(record);
    const result = await runRelease(request(), world.options());
    expect(result.status).toBe("succeeded");
    expect(world.ecsConfig?.lifecycleHooks?.[0]?.roleArn).toBe(record.request.hookRoleArn);
  });
});

describe("returning at the bake", () => {
  it("returns once the bake starts (the record says so); resume watches the rest", async () => {
    const world = new World();
    const first = await runRelease(request(), world.options({ returnAtBake: true }));
    expect(first.status).toBe("in-progress");
    expect(first.reason).toContain("roll back natively on any release alarm meanwhile");
    const record = world.ledger.only();
    expect(record.stage).toBe("baking");
    expect(record.bake?.detachedAt).toBeDefined();
    expect((await world.ledger.readLock("staging"))?.detached).toBe(true);

    // Another version cannot start while this one bakes.
    const other = Object.assign(new World(), { clock: world.clock, ledger: world.ledger });
    await configurationError(
      runRelease(request({ imageUri: IMAGE.replace(DIGEST, OTHER_DIGEST) }), other.options()),
    );

    // No wait for staleness: a detached lock is free to resume.
    const done: ReleaseResult = await resumeRelease("staging", world.options());
    expect(done.status).toBe("succeeded");
    expect(world.ledger.only().bake?.detachedAt).toBe(record.bake?.detachedAt);
  });

  it("an alarm while nobody watched is acted on at resume: both rolled back", async () => {
    const alarm = resources.alarms.sagemakerInvocation5xx;
    const world = new World({
      smSteps: [SM_LAUNCHING, SM_DONE],
      alarm: { name: alarm, at: T0 + 60_000, reason: "5xx" },
    });
    await runRelease(request(), world.options({ returnAtBake: true }));
    world.clock.t = T0 + 10 * 60_000;
    const result = await resumeRelease("staging", world.options());
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain(`alarm ${alarm} fired during the bake (5xx)`);
  });

  it("resume with nothing in flight reports the latest release", async () => {
    const world = new World();
    const done = await runRelease(request(), world.options());
    const result = await resumeRelease("staging", world.options());
    expect(result).toMatchObject({ status: "succeeded", releaseId: done.releaseId });
    expect(result.reason).toContain("Nothing in flight in staging");
  });
});

describe("an operator's rollback", () => {
  it("returns both targets to the state the latest release replaced", async () => {
    const world = new World();
    const released = await runRelease(request(), world.options());
    world.clock.t += 3_600_000;
    const result = await rollbackEnvironment("staging", world.options({}));
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain(
      `because an operator asked for it, to return to the version release ${released.releaseId} replaced`,
    );
    const rollback = world.ledger.records().find((r) => r.kind === "rollback");
    expect(rollback).toMatchObject({
      outcome: "rolled-back",
      ecs: { previousTaskDefinitionArn: OLD_TD, rollback: { action: "redeployed", state: "done" } },
      sagemaker: {
        previousEndpointConfigName: PREV_CONFIG,
        rollback: { result: "requested", state: "done" },
      },
    });
    expect(world.changes().slice(-2)).toEqual(["ecs.rollback", "sm.rollback"]);
  });

  it("goes back to the previous good release when there is one", async () => {
    const world = new World();
    const older: ReleaseRecord = {
      ...(await runRelease(request(), world.options())).record,
    } as ReleaseRecord;
    // A second, newer release of another version on top.
    const newer = structuredClone(older);
    Object.assign(newer, {
      releaseId: "20261127T100000Z-dddddddddddd",
      startedAt: "2026-11-27T10:00:00.000Z",
      digest: OTHER_DIGEST,
      ecs: { ...newer.ecs, taskDefinitionArn: "td:9", previousTaskDefinitionArn: NEW_TD },
      sagemaker: { ...newer.sagemaker, endpointConfigName: "cfg-d", previousEndpointConfigName: NEW_CONFIG },
    });
    await world.ledger.putRecord(newer);
    const result = await rollbackEnvironment("staging", world.options());
    expect(result.reason).toContain(`to return to release ${older.releaseId}`);
    const rollback = world.ledger.records().find((r) => r.kind === "rollback");
    expect(rollback?.ecs.previousTaskDefinitionArn).toBe(NEW_TD);
    expect(rollback?.sagemaker.previousEndpointConfigName).toBe(NEW_CONFIG);
  });

  it("rolls back an orphaned in-flight release instead of resuming it", async () => {
    const world = new World({ hangAt: "sm.check#2" });
    await killedRun(world, () => runRelease(request(), world.options()));
    world.clock.t += 2 * 60_000;
    const result = await rollbackEnvironment("staging", world.options({}));
    expect(result.status).toBe("rolled-back");
    expect(result.reason).toContain("because an operator asked for it");
    expect(world.ledger.only().rollback?.trigger).toBe("operator");
  });

  it("refuses with nothing to roll back to", async () => {
    const world = new World();
    const err = await configurationError(rollbackEnvironment("staging", world.options()));
    expect(err.message).toContain("holds no succeeded release to roll back from");
    expect(world.changes()).toEqual([]);
  });
});

describe("the job summary", () => {
  it("renders the ledger record: outcome, both targets, smoke tests, alarms, provenance", async () => {
    const alarm = resources.alarms.albTarget5xxRate;
    const world = new World({
      // SageMaker rolls back by itself on the alarm, as AWS does in the final bake.
      smSteps: [SM_LAUNCHING, SM_FINAL_BAKE, SM_SILENT_ROLLBACK],
      alarm: { name: alarm, at: T0 + 40_000, reason: "5xx > 5%" },
    });
    const result = await runRelease(request(), world.options());
    const markdown = releaseSummary(result.record as ReleaseRecord).toMarkdown();
    expect(markdown).toContain(`## Release ${result.releaseId} to staging: ↩️ rolled back`);
    expect(markdown).toContain(result.reason);
    expect(markdown).toContain(`| new | ${NEW_TD} | ${NEW_CONFIG} |`);
    expect(markdown).toContain(`| previous | ${OLD_TD} | ${PREV_CONFIG} |`);
    expect(markdown).toContain("| smoke test | passed: smoke test passed against ECS green");
    expect(markdown).toMatch(new RegExp(`\\| ${alarm} \\| OK \\| .*OK → ALARM \\(5xx > 5%\\)`));
    expect(markdown).toContain("Rollback trigger: **alarm**");
    expect(markdown).toContain("| scan verdict | pass |");
    expect(markdown).toContain("| waivers | ASTROLENS-2026-0001 |");
    expect(markdown).toContain("<details><summary>Ledger record</summary>");
  });
});
