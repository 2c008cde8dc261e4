import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { environmentResources, LEDGER_LOCK_ID } from "../environment.js";
import { ConfigurationError, errorMessage, withContext } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { type Clock, isoTime, systemClock } from "./clock.js";
import { observeRelease, type ReleaseDrivers } from "./drivers.js";
import { describeProgress, type EcsProgress, ecsFailed } from "./ecs.js";
import {
  type LockItem,
  LockLostError,
  type LockRunner,
  lockIsLive,
  newReleaseId,
  type ReleaseOutcome,
  type ReleaseRecord,
  type ReleaseStage,
  type RollbackTrigger,
} from "./ledger.js";
import {
  guardrailConfig,
  type ObservedAlarm,
  planRelease,
  type ReleaseInputs,
  type ReleasePlan,
  type ReleaseRequest,
  renderPlan,
  resolveReleaseInputs,
} from "./plan.js";
import type { SageMakerProgress } from "./sagemaker.js";
import { ecsHookRecord, logSmoke, sageMakerSmokeRecord } from "./smoke.js";
import { AlarmWatch } from "./watch.js";

/**
 * The release coordinator: ECS and SageMaker as one release unit.
 *
 * plan -> lock -> register/prepare -> ECS blue/green (its smoke hook gates everything)
 * -> SageMaker blue/green -> smoke test on SageMaker -> bake, watching both targets and
 * the alarms -> done. On any failure, alarm, failed smoke test or silent rollback of
 * one target, both are rolled back; the release ends with both on the new version or
 * both on the previous one, and says why in one sentence.
 *
 * Every stage is written to the ledger before it begins, and each stage's actions are
 * safe to repeat, so a run that dies (or returns at the bake on purpose) is continued
 * by `resumeRelease` — or by running the same release again — from the record.
 * SageMaker starts only after ECS's smoke hook passed: a failed smoke test never
 * touches SageMaker, and SageMaker (which cannot be stopped mid-update) is only
 * changed once the version has been proven on ECS green.
 */

export interface CoordinatorOptions {
  drivers: ReleaseDrivers;
  logger: Logger;
  clock?: Clock;
  /** How often the targets and alarms are read (default 15 s): the bound on reaction time. */
  pollIntervalMs?: number;
  /** A lock not renewed for this long belongs to a dead run (default max(60 s, 4 polls)). */
  staleLockAfterMs?: number;
  /** Return once the bake has started (the record says so); `resumeRelease` watches the rest. */
  returnAtBake?: boolean;
  /** How long SageMaker may take to show an accepted update (default 120 s). */
  sageMakerStartGraceMs?: number;
  /** This process, as the lock records it (default: this host and pid). */
  runner?: LockRunner;
  /** Whether a lock's runner is known to be gone (default: same host and its pid no longer exists). */
  runnerGone?: (runner: LockRunner) => boolean;
}

export interface ReleaseResult {
  /** planned (dry run), no-op, or the ledger's outcome (in-progress when it returned at the bake). */
  status: "planned" | "no-op" | ReleaseOutcome;
  environment: string;
  releaseId?: string;
  reason: string;
  plan?: ReleasePlan;
  record?: ReleaseRecord;
}

export interface Settings {
  clock: Clock;
  pollMs: number;
  staleMs: number;
  graceMs: number;
  returnAtBake: boolean;
  runner: LockRunner;
  runnerGone: (runner: LockRunner) => boolean;
}

export function settingsOf(options: CoordinatorOptions): Settings {
  const pollMs = options.pollIntervalMs ?? 15_000;
  return {
    clock: options.clock ?? systemClock,
    pollMs,
    staleMs: options.staleLockAfterMs ?? Math.max(60_000, 4 * pollMs),
    graceMs: options.sageMakerStartGraceMs ?? 120_000,
    returnAtBake: options.returnAtBake ?? false,
    runner: options.runner ?? { host: hostname(), pid: process.pid },
    runnerGone: options.runnerGone ?? runnerGoneHere,
  };
}

/**
 * A lock's runner is gone when it ran on this machine and its process no longer exists
 * (a terminal's run killed with SIGKILL, then run again): the re-run resumes at once
 * instead of waiting for the heartbeat to go stale. Another machine's runner is never
 * judged here. This process itself is alive (two releases from one process still meet
 * the lock).
 */
export function runnerGoneHere(runner: LockRunner): boolean {
  if (runner.host !== hostname() || runner.pid === process.pid) return false;
  try {
    process.kill(runner.pid, 0);
    return false;
  } catch (err) {
    // EPERM: it exists, as another user's process.
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * Releases one image + model to one environment. `dryRun` stops after the plan. An
 * in-flight release of the same version (its run died, or returned at the bake) is
 * resumed; any other release holding the environment is refused, naming it.
 */
export async function runRelease(
  request: ReleaseRequest,
  options: CoordinatorOptions & { dryRun?: boolean; releaseId?: string },
): Promise<ReleaseResult> {
  const { drivers, logger } = options;
  const s = settingsOf(options);
  const inputs = resolveReleaseInputs(request);
  const environment = inputs.resources.environment;

  const held = await inspectLock(environment, options, s);
  if (held) {
    const { lock, record } = held;
    if (record.digest !== inputs.digest || record.model.manifestSha256 !== inputs.model.manifestSha256) {
      throw new ConfigurationError(
        `environment ${environment} has release ${record.releaseId} (image ${record.digest}, model ${record.model.version}) in flight since ${record.startedAt} at stage ${record.stage}, and no run is driving it${lock.detached ? " (it returned when its bake started)" : ""}: finish it with \`astrolens-release resume --env ${environment}\`, or roll it back with \`astrolens-release rollback --env ${environment}\`, then release again`,
      );
    }
    if (options.dryRun) {
      return {
        status: "in-progress",
        environment,
        releaseId: record.releaseId,
        reason: `Release ${record.releaseId} of this version is in flight at stage ${record.stage}; a real run resumes it.`,
        record,
      };
    }
    logger.info(
      `release ${record.releaseId} of this version is in flight (stage ${record.stage}): resuming it`,
    );
    return resume(record, lock, options, s);
  }

  const releaseId = options.releaseId ?? newReleaseId(s.clock.now(), inputs.digest);
  const plan = await logger.group("Plan", async () => {
    const observed = await observeRelease(inputs, drivers);
    if (!inputs.hookRoleArn && !observed.ecs.hookRoleArn) {
      // The service lost its hook (someone removed it, or an older rollback did): the
      // role a previous release of this environment used is still the environment's.
      const known = (await drivers.ledger.listRecords(environment, 20)).find((r) => r.request.hookRoleArn);
      if (known?.request.hookRoleArn) observed.ecs.hookRoleArn = known.request.hookRoleArn;
    }
    const planned = planRelease(observed, inputs, releaseId);
    logger.info(renderPlan(planned));
    return planned;
  });
  if (options.dryRun) {
    return {
      status: "planned",
      environment,
      reason: plan.noop
        ? `Dry run: ${environment} already runs this version on both targets; nothing to do.`
        : `Dry run: ${plan.steps.length} steps planned for ${environment}${plan.blockers.length ? `, but blocked: ${plan.blockers.join("; ")}` : ""}.`,
      plan,
    };
  }
  if (plan.noop) {
    const previous = (await drivers.ledger.listRecords(environment, 20)).find(
      (r) => r.kind === "release" && r.digest === inputs.digest && r.outcome === "succeeded",
    );
    return {
      status: "no-op",
      environment,
      ...(previous ? { releaseId: previous.releaseId } : {}),
      reason: `${environment} already runs ${shortDigest(inputs.digest)} (model ${inputs.model.version}) on both targets${previous ? `, released by ${previous.releaseId}` : ""}; nothing to do.`,
      plan,
      ...(previous ? { record: previous } : {}),
    };
  }
  if (plan.blockers.length > 0) {
    throw new ConfigurationError(
      `the release to ${environment} cannot start, nothing was changed: ${plan.blockers.join("; ")}`,
    );
  }
  for (const warning of plan.warnings) logger.warning(warning);

  const now = s.clock.now();
  const record = newRecord(inputs, plan, releaseId, now);
  const owner = await lockFor(record, options, s);
  logger.info(`release ${releaseId}: ${environment} locked`);
  const ctx = newContext(record, owner, options, s, false);
  ctx.plan = plan;
  return execute(ctx);
}

/**
 * Continues the environment's in-flight release from its ledger record: the `watch`
 * step after a release returned at the bake, or the recovery after a run died. With
 * nothing in flight it reports the latest release.
 */
export async function resumeRelease(
  environment: string,
  options: CoordinatorOptions,
): Promise<ReleaseResult> {
  const s = settingsOf(options);
  environmentResources(environment);
  const held = await inspectLock(environment, options, s);
  if (!held) {
    const latest = (await options.drivers.ledger.listRecords(environment, 1))[0];
    return {
      status: latest?.outcome ?? "no-op",
      environment,
      ...(latest ? { releaseId: latest.releaseId, record: latest } : {}),
      reason: latest
        ? `Nothing in flight in ${environment}; the latest release, ${latest.releaseId}, ended: ${latest.reason}`
        : `Nothing in flight in ${environment}, and the ledger holds no release.`,
    };
  }
  options.logger.info(`resuming release ${held.record.releaseId} at stage ${held.record.stage}`);
  return resume(held.record, held.lock, options, settingsOf(options));
}

/**
 * Reads the environment's lock. A live holder is refused (naming it); a lock whose
 * release finished, or has no record, is cleared; a lock of an in-flight release whose
 * run is gone (or detached at the bake) is returned for resuming.
 */
export async function inspectLock(
  environment: string,
  options: CoordinatorOptions,
  s: Settings,
): Promise<{ lock: LockItem; record: ReleaseRecord } | undefined> {
  const { ledger } = options.drivers;
  const lock = await ledger.readLock(environment);
  if (!lock) return undefined;
  const gone = lock.runner ? s.runnerGone(lock.runner) : false;
  if (lockIsLive(lock, s.clock.now(), s.staleMs, gone)) throw refusal(environment, lock);
  if (gone)
    options.logger.info(
      `the run that held the lock (pid ${lock.runner?.pid} on ${lock.runner?.host}) is gone`,
    );
  const record = await ledger.getRecord(environment, lock.holder);
  if (record && record.outcome === "in-progress") return { lock, record };
  // The run died after finishing (or before writing its record): nothing to resume.
  const owner = randomUUID();
  if (await ledger.takeOverLock(environment, lock.owner, owner, isoTime(s.clock.now()), s.runner)) {
    await ledger.releaseLock(environment, owner);
    options.logger.info(
      `cleared the lock left by release ${lock.holder} (${record ? `it ended ${record.outcome}` : "it has no record"})`,
    );
    return undefined;
  }
  throw refusal(environment, (await ledger.readLock(environment)) ?? lock);
}

/**
 * Takes the environment's lock for a new record, then writes the record: the lock's
 * conditional write is what admits one release at a time. Returns the owner token the
 * heartbeat and the release of the lock are checked against.
 */
export async function lockFor(
  record: ReleaseRecord,
  options: CoordinatorOptions,
  s: Settings,
): Promise<string> {
  const owner = randomUUID();
  const lock: LockItem = {
    environment: record.environment,
    releaseId: LEDGER_LOCK_ID,
    holder: record.releaseId,
    digest: record.digest,
    startedAt: record.startedAt,
    heartbeatAt: record.startedAt,
    owner,
    detached: false,
    runner: s.runner,
  };
  const taken = await options.drivers.ledger.acquireLock(lock);
  if (!taken.acquired) throw refusal(record.environment, taken.holder);
  await options.drivers.ledger.putRecord(record);
  return owner;
}

export function refusal(environment: string, lock: LockItem): ConfigurationError {
  return new ConfigurationError(
    `environment ${environment} is locked by release ${lock.holder} (image ${lock.digest}), started ${lock.startedAt} and still running: one release per environment at a time; wait for it to finish (\`astrolens-release status --env ${environment}\`), then release again`,
  );
}

/**
 * Takes the lock over from the run that left it and drives the record to its end;
 * `rollBack` starts with a rollback (an operator's, on an in-flight release).
 */
export async function resume(
  record: ReleaseRecord,
  lock: LockItem,
  options: CoordinatorOptions,
  s: Settings,
  rollBack?: { trigger: RollbackTrigger; cause: string },
): Promise<ReleaseResult> {
  const owner = randomUUID();
  if (
    !(await options.drivers.ledger.takeOverLock(
      record.environment,
      lock.owner,
      owner,
      isoTime(s.clock.now()),
      s.runner,
    ))
  ) {
    throw refusal(record.environment, (await options.drivers.ledger.readLock(record.environment)) ?? lock);
  }
  return execute(newContext(record, owner, options, s, true), rollBack);
}

/** Drives a record this run has just locked (a release or an operator's rollback) to its end. */
export async function driveLocked(
  record: ReleaseRecord,
  owner: string,
  options: CoordinatorOptions,
): Promise<ReleaseResult> {
  return execute(newContext(record, owner, options, settingsOf(options), false));
}

// ---------------------------------------------------------------------------------
// One run of one release

interface Context {
  record: ReleaseRecord;
  owner: string;
  drivers: ReleaseDrivers;
  logger: Logger;
  s: Settings;
  /** This run took over from another (its first looks may find half-done steps). */
  resumed: boolean;
  watch: AlarmWatch;
  plan?: ReleasePlan;
  stageStartedAt: number;
  /** The SageMaker update (or the update back) was seen running: by config name. */
  seenUpdating: Set<string>;
}

function newContext(
  record: ReleaseRecord,
  owner: string,
  options: CoordinatorOptions,
  s: Settings,
  resumed: boolean,
): Context {
  return {
    record,
    owner,
    drivers: options.drivers,
    logger: options.logger,
    s,
    resumed,
    watch: new AlarmWatch(record.alarms.atStart, record.alarms.allowedInAlarm, record.alarms.events),
    stageStartedAt: s.clock.now(),
    seenUpdating: new Set(),
  };
}

function newRecord(inputs: ReleaseInputs, plan: ReleasePlan, releaseId: string, now: number): ReleaseRecord {
  return {
    environment: inputs.resources.environment,
    releaseId,
    kind: "release",
    imageUri: inputs.imageUri,
    digest: inputs.digest,
    model: inputs.model,
    provenance: inputs.provenance,
    request: {
      strategy: inputs.strategy,
      bakeMinutes: inputs.bakeMinutes,
      alarmNames: inputs.alarmNames,
      allowAlarms: inputs.allowAlarms,
      smokeFunction: inputs.smokeFunction,
      smokeFunctionArn: plan.smoke.functionArn,
      hookRoleArn: plan.smoke.hookRoleArn,
      testUrl: plan.smoke.hookDetails.targetUrl,
      stepWaitSeconds: inputs.stepWaitSeconds,
      containerEnvironment: inputs.containerEnvironment,
      contract: inputs.contract,
    },
    stage: "started",
    outcome: "in-progress",
    reason: "The release is in progress.",
    startedAt: isoTime(now),
    updatedAt: isoTime(now),
    ecs: {
      previousTaskDefinitionArn: plan.ecs.current.taskDefinitionArn,
      ...(plan.ecs.currentDeploymentConfiguration
        ? { previousDeploymentConfiguration: plan.ecs.currentDeploymentConfiguration }
        : {}),
      deploymentConfiguration: plan.ecs.deploymentConfiguration,
    },
    sagemaker: {
      previousEndpointConfigName: plan.sagemaker.current.endpointConfigName,
      endpointConfigName: plan.sagemaker.desired.endpointConfigName,
      modelName: plan.sagemaker.desired.modelName,
    },
    alarms: {
      watched: plan.alarms.watched,
      native: plan.alarms.native,
      allowedInAlarm: plan.alarms.allowedInAlarm,
      atStart: plan.alarms.states,
      events: [],
    },
    smoke: {},
    timings: {},
  };
}

/** The inputs a record was started with, for stages that must plan again after a crash. */
function inputsOf(record: ReleaseRecord): ReleaseInputs {
  const r = record.request;
  if (!r.contract) throw new Error(`release ${record.releaseId} has no model contract to plan with`);
  return resolveReleaseInputs({
    environment: record.environment,
    imageUri: record.imageUri,
    model: r.contract,
    strategy: r.strategy,
    bakeMinutes: r.bakeMinutes,
    alarmNames: r.alarmNames,
    allowAlarms: r.allowAlarms,
    smokeFunction: r.smokeFunction,
    ...(r.hookRoleArn ? { hookRoleArn: r.hookRoleArn } : {}),
    ...(r.testUrl ? { testUrl: r.testUrl } : {}),
    stepWaitSeconds: r.stepWaitSeconds,
    containerEnvironment: r.containerEnvironment,
    provenance: record.provenance,
  });
}

async function currentPlan(ctx: Context): Promise<ReleasePlan> {
  if (!ctx.plan) {
    // Blockers are not checked again: the busy target may be this release's own deployment.
    const inputs = inputsOf(ctx.record);
    ctx.plan = planRelease(await observeRelease(inputs, ctx.drivers), inputs, ctx.record.releaseId);
  }
  return ctx.plan;
}

async function execute(
  ctx: Context,
  rollBack?: { trigger: RollbackTrigger; cause: string },
): Promise<ReleaseResult> {
  const { record, logger } = ctx;
  try {
    if (rollBack && record.stage !== "rolling-back" && record.stage !== "done") {
      await beginRollback(ctx, { ...rollBack, at: ctx.s.clock.now() });
    }
    await drive(ctx);
  } catch (err) {
    if (err instanceof LockLostError) throw err;
    if (record.stage === "rolling-back" || record.stage === "done") {
      await saveQuietly(ctx);
      // The lock stays: once it goes stale, a re-run or `resume` finishes the rollback.
      throw withContext(
        `release ${record.releaseId}: rolling back (run \`astrolens-release resume --env ${record.environment}\` to continue)`,
        err,
      );
    }
    if (!record.ecs.requestedAt) {
      logger.error(`release ${record.releaseId} stopped before deploying anything: ${errorMessage(err)}`);
      record.outcome = "rolled-back";
      record.reason = `Release of ${shortDigest(record.digest)} to ${record.environment} stopped before anything was deployed (${errorMessage(err)}); both targets remain on the previous version.`;
      await finish(ctx);
      return resultOf(ctx);
    }
    logger.error(`release ${record.releaseId} failed: ${errorMessage(err)}`);
    await beginRollback(ctx, {
      trigger: "error",
      cause: `the release hit an error (${errorMessage(err)})`,
      at: ctx.s.clock.now(),
    });
    try {
      await drive(ctx);
    } catch (again) {
      if (again instanceof LockLostError) throw again;
      await saveQuietly(ctx);
      throw withContext(
        `release ${record.releaseId}: rolling back (run \`astrolens-release resume --env ${record.environment}\` to continue)`,
        again,
      );
    }
  }
  return resultOf(ctx);
}

const STAGE_TITLES: Record<ReleaseStage, string> = {
  started: "Preparing the task definition, model and endpoint config",
  "resources-ready": "Starting the ECS blue/green deployment",
  "ecs-deploying": "ECS blue/green: waiting for the smoke-test hook",
  "sagemaker-deploying": "SageMaker blue/green: waiting for green to take traffic",
  baking: "Bake: watching both targets and the alarms",
  "rolling-back": "Rolling back both targets",
  done: "Done",
};

/** Runs the stages from wherever the record is; returns when done or detached at the bake. */
async function drive(ctx: Context): Promise<void> {
  for (;;) {
    const stage = ctx.record.stage;
    if (stage === "done") return;
    const detached = await ctx.logger.group(STAGE_TITLES[stage], async () => {
      switch (stage) {
        case "started":
          await prepareResources(ctx);
          return false;
        case "resources-ready":
          await startEcs(ctx);
          return false;
        case "ecs-deploying":
          await followEcs(ctx);
          return false;
        case "sagemaker-deploying":
          await followBoth(ctx);
          return false;
        case "baking":
          return bake(ctx);
        case "rolling-back":
          await finishRollback(ctx);
          return false;
      }
    });
    if (detached) return;
  }
}

async function prepareResources(ctx: Context): Promise<void> {
  const { record, drivers, logger } = ctx;
  const plan = await currentPlan(ctx);
  const td = await drivers.ecs.register(plan.ecs);
  record.ecs.taskDefinitionArn = td.arn;
  record.ecs.reused = td.reused;
  logger.info(`task definition ${td.arn} (${td.reused ? "reused" : "registered"})`);
  const sm = await drivers.sagemaker.prepare(plan.sagemaker);
  logger.info(
    `SageMaker model ${record.sagemaker.modelName} ${sm.model}, endpoint config ${record.sagemaker.endpointConfigName} ${sm.endpointConfig}`,
  );
  enterStage(ctx, "resources-ready");
  await save(ctx);
}

async function startEcs(ctx: Context): Promise<void> {
  const { record, drivers } = ctx;
  const plan = await currentPlan(ctx);
  const at = ctx.s.clock.now();
  // The intent is written first: a run that dies inside UpdateService leaves a record
  // that says a deployment may exist, and the next run looks for it.
  record.ecs.requestedAt = isoTime(at);
  enterStage(ctx, "ecs-deploying");
  await save(ctx);
  record.ecs.deploymentArn = await drivers.ecs.deploy(
    taskDefinitionOf(record),
    plan.ecs.deploymentConfiguration,
    new Date(at),
  );
  ctx.logger.info(`ECS deployment ${record.ecs.deploymentArn} started`);
  await save(ctx);
}

async function followEcs(ctx: Context): Promise<void> {
  const { record, drivers, logger } = ctx;
  if (!record.ecs.deploymentArn) {
    const since = new Date(Date.parse(record.ecs.requestedAt ?? record.startedAt));
    const found = await drivers.ecs.findDeploymentSince(since);
    if (found) {
      logger.info(`found this release's ECS deployment ${found}`);
      record.ecs.deploymentArn = found;
    } else {
      const plan = await currentPlan(ctx);
      record.ecs.deploymentArn = await drivers.ecs.deploy(
        taskDefinitionOf(record),
        plan.ecs.deploymentConfiguration,
        new Date(ctx.s.clock.now()),
      );
      logger.info(`ECS deployment ${record.ecs.deploymentArn} started (the previous run did not get to it)`);
    }
    await save(ctx);
  }
  const deploymentArn = record.ecs.deploymentArn;
  for (;;) {
    const tick = await look(ctx, { ecs: deploymentArn });
    const failure = failureOf(ctx, tick);
    if (failure) return beginRollback(ctx, failure);
    if (tick.ecs?.testPassed) {
      record.smoke.ecs = ecsHookRecord({
        passed: true,
        ...(tick.ecs.hookStatus ? { hookStatus: tick.ecs.hookStatus } : {}),
        functionName: record.request.smokeFunction,
        deploymentArn,
        at: isoTime(tick.at),
      });
      logSmoke(logger, record.smoke.ecs);
      const at = ctx.s.clock.now();
      record.sagemaker.requestedAt = isoTime(at);
      enterStage(ctx, "sagemaker-deploying");
      await save(ctx);
      await drivers.sagemaker.deploy(record.sagemaker.endpointConfigName, sageMakerDeploymentConfig(record));
      logger.info(
        `SageMaker update of ${environmentResources(record.environment).endpoint} to ${record.sagemaker.endpointConfigName} started (${record.request.strategy})`,
      );
      return;
    }
    if (tick.changed) await save(ctx);
    await ctx.s.clock.sleep(ctx.s.pollMs);
  }
}

async function followBoth(ctx: Context): Promise<void> {
  const { record, drivers, logger } = ctx;
  const endpointName = environmentResources(record.environment).endpoint;
  let firstLook = true;
  for (;;) {
    const tick = await look(ctx, { ecs: record.ecs.deploymentArn, sagemaker: true });
    if (firstLook && ctx.resumed && tick.sagemaker?.phase === "not-started") {
      // The previous run wrote its intent and died before (or inside) UpdateEndpoint, and
      // the endpoint shows no sign of it: ask again. If SageMaker did accept the first
      // request, this one is refused as in-progress, which is fine.
      record.sagemaker.requestedAt = isoTime(ctx.s.clock.now());
      await save(ctx);
      await drivers.sagemaker
        .deploy(record.sagemaker.endpointConfigName, sageMakerDeploymentConfig(record))
        .catch((err) => logger.warning(`asking SageMaker again: ${errorMessage(err)}`));
      firstLook = false;
      continue;
    }
    firstLook = false;
    const failure = failureOf(ctx, tick);
    if (failure) return beginRollback(ctx, failure);
    if (tick.sagemaker?.fullTraffic && !record.smoke.sagemaker) {
      const verdict = await drivers.smoke.invoke(record.request.smokeFunctionArn, {
        target: { endpointName },
        ...(record.request.contract ? { contract: record.request.contract } : {}),
      });
      const at = ctx.s.clock.now();
      record.smoke.sagemaker = sageMakerSmokeRecord(verdict, isoTime(at));
      logSmoke(logger, record.smoke.sagemaker);
      if (!verdict.ok) {
        return beginRollback(ctx, {
          trigger: "sagemaker-smoke",
          cause: `the smoke test failed against SageMaker endpoint ${endpointName} (${verdict.summary})`,
          at,
        });
      }
      await save(ctx);
    }
    if (record.smoke.sagemaker?.ok && tick.ecs?.onProduction) {
      const at = ctx.s.clock.now();
      record.bake = { startedAt: isoTime(at), endsAt: isoTime(at + record.request.bakeMinutes * 60_000) };
      logger.info(
        `both targets serve the new version; baking for ${record.request.bakeMinutes} min, until ${record.bake.endsAt}`,
      );
      enterStage(ctx, "baking");
      await save(ctx);
      return;
    }
    if (tick.changed) await save(ctx);
    await ctx.s.clock.sleep(ctx.s.pollMs);
  }
}

/**
 * Whether the targets' own bakes measure the whole bake. SageMaker's final bake
 * (TerminationWaitInSeconds, the bake up to its 3600 s cap) starts when green takes all
 * of the endpoint's traffic — the moment this bake starts — and ends with the endpoint
 * InService on the new config; ECS's started earlier, at its production shift, and ends
 * SUCCESSFUL. Once both have finished, the bake has elapsed in AWS's own time (which the
 * local AWS scales), with both native alarm rollbacks armed throughout. A longer bake
 * than SageMaker's cap is finished on this run's clock.
 */
export function nativeBakeCoversRelease(bakeMinutes: number): boolean {
  return bakeMinutes * 60 <= MAX_TERMINATION_WAIT_SECONDS;
}

/** SageMaker's TerminationWaitInSeconds maximum (AWS-BEHAVIOUR.md B1). */
const MAX_TERMINATION_WAIT_SECONDS = 3600;

/** Returns true when it detached (returned at the bake's start, on request). */
async function bake(ctx: Context): Promise<boolean> {
  const { record, logger, s } = ctx;
  const bakeInfo = record.bake ?? { startedAt: isoTime(s.clock.now()), endsAt: isoTime(s.clock.now()) };
  if (s.returnAtBake) {
    // ECS's bake and SageMaker's final bake hold blue, and every release alarm rolls
    // both back natively, so the environment is guarded while no run watches.
    record.bake = { ...bakeInfo, detachedAt: isoTime(s.clock.now()) };
    record.reason = `The release is baking until ${bakeInfo.endsAt}; ECS and SageMaker roll back natively on any release alarm meanwhile, and \`astrolens-release resume --env ${record.environment}\` finishes it.`;
    await save(ctx);
    await ctx.drivers.ledger.heartbeat(record.environment, ctx.owner, isoTime(s.clock.now()), true);
    logger.info(
      `returning at the bake; resume with \`astrolens-release resume --env ${record.environment}\``,
    );
    return true;
  }
  const endsAt = Date.parse(bakeInfo.endsAt);
  const nativeBakeCovers = nativeBakeCoversRelease(record.request.bakeMinutes);
  for (;;) {
    const tick = await look(ctx, { ecs: record.ecs.deploymentArn, sagemaker: true });
    const failure = failureOf(ctx, tick);
    if (failure) {
      await beginRollback(ctx, failure);
      return false;
    }
    const bothDone = tick.ecs?.phase === "succeeded" && tick.sagemaker?.phase === "succeeded";
    if (bothDone && (tick.at >= endsAt || nativeBakeCovers)) {
      record.outcome = "succeeded";
      record.reason = `Released ${shortDigest(record.digest)} (model ${record.model.version}) to ${record.environment}: ECS and SageMaker both serve it after a ${record.request.bakeMinutes}-minute bake${record.alarms.events.some((e) => e.to === "ALARM") ? "" : " with no alarm"}.`;
      logger.info(record.reason);
      await finish(ctx);
      return false;
    }
    if (tick.changed) await save(ctx);
    const left = endsAt - s.clock.now();
    await s.clock.sleep(left > 0 ? Math.min(s.pollMs, left) : s.pollMs);
  }
}

// ---------------------------------------------------------------------------------
// Looking at both targets and the alarms

interface Tick {
  /** When the answers were in: the moment a failure counts as detected. */
  at: number;
  ecs?: EcsProgress;
  sagemaker?: SageMakerProgress;
  firing: ObservedAlarm[];
  /** Something the ledger should show changed (alarm state, target status). */
  changed: boolean;
}

/** One poll: renew the lock, read the targets and the alarms, all at once. */
async function look(ctx: Context, what: { ecs?: string; sagemaker?: boolean }): Promise<Tick> {
  const { record, drivers, s } = ctx;
  const [, ecs, sagemaker, alarms] = await Promise.all([
    drivers.ledger.heartbeat(record.environment, ctx.owner, isoTime(s.clock.now())),
    what.ecs ? drivers.ecs.check(what.ecs, record.request.smokeFunctionArn) : undefined,
    what.sagemaker
      ? drivers.sagemaker.check(
          record.sagemaker.endpointConfigName,
          Date.parse(record.sagemaker.requestedAt ?? record.startedAt),
          ctx.seenUpdating.has(record.sagemaker.endpointConfigName),
        )
      : undefined,
    drivers.alarms.describe(record.alarms.watched),
  ]);
  const at = s.clock.now();
  const changes = ctx.watch.update(alarms, isoTime(at));
  for (const change of changes) {
    const line = `alarm ${change.name}: ${change.from} -> ${change.to} (${change.reason || "no reason given"})`;
    if (change.to === "ALARM") ctx.logger.warning(line);
    else ctx.logger.info(line);
  }
  let changed = changes.length > 0;
  if (ecs) {
    const status = describeProgress(ecs);
    if (status !== record.ecs.status) {
      record.ecs.status = status;
      ctx.logger.info(status);
      changed = true;
    }
  }
  if (sagemaker) {
    noteUpdating(ctx, sagemaker);
    const status = `SageMaker ${sagemaker.status} on ${sagemaker.endpointConfigName}${sagemaker.pendingEndpointConfigName ? ` (deploying ${sagemaker.pendingEndpointConfigName})` : ""}${sagemaker.variantStatus.length ? `: ${sagemaker.variantStatus.join("; ")}` : ""}`;
    if (status !== record.sagemaker.status) {
      record.sagemaker.status = status;
      ctx.logger.info(status);
      changed = true;
    }
  }
  return {
    at,
    ...(ecs ? { ecs } : {}),
    ...(sagemaker ? { sagemaker } : {}),
    firing: ctx.watch.firing(),
    changed,
  };
}

interface Failure {
  trigger: RollbackTrigger;
  /** Why, as the end of "… because <cause>". */
  cause: string;
  at: number;
  /** The alarms that fired (alarm triggers). */
  alarms?: string[];
}

/** The first reason to roll back in a tick; an alarm is named before what it caused. */
function failureOf(ctx: Context, tick: Tick): Failure | undefined {
  const { record } = ctx;
  const when = record.stage === "baking" ? "during the bake" : "during the deployment";
  const alarm = tick.firing[0];
  if (alarm) {
    return {
      trigger: "alarm",
      cause: `alarm ${alarm.name} fired ${when} (${alarm.reason || "no reason given"})`,
      at: tick.at,
      alarms: tick.firing.map((a) => a.name),
    };
  }
  const ecs = tick.ecs;
  if (ecs && ecsFailed(ecs.phase)) {
    if (ecs.triggeredAlarms.length > 0) {
      return {
        trigger: "alarm",
        cause: `alarm ${ecs.triggeredAlarms.join(", ")} fired ${when} and ECS rolled back (${ecs.reason})`,
        at: tick.at,
        alarms: ecs.triggeredAlarms,
      };
    }
    const hookFailed =
      ecs.hookStatus === "FAILED" || ecs.hookStatus === "TIMED_OUT" || /hook/i.test(ecs.reason ?? "");
    if (hookFailed && !record.smoke.ecs?.ok) {
      record.smoke.ecs = ecsHookRecord({
        passed: false,
        ...(ecs.hookStatus ? { hookStatus: ecs.hookStatus } : {}),
        ...(ecs.reason ? { reason: ecs.reason } : {}),
        functionName: record.request.smokeFunction,
        deploymentArn: ecs.deploymentArn,
        at: isoTime(tick.at),
      });
      logSmoke(ctx.logger, record.smoke.ecs);
      return {
        trigger: "ecs-smoke",
        cause: `the smoke test failed against ECS green before production traffic moved (${ecs.reason})`,
        at: tick.at,
      };
    }
    return { trigger: "ecs", cause: `the ECS deployment failed (${ecs.reason})`, at: tick.at };
  }
  const sm = tick.sagemaker;
  if (sm?.phase === "failed")
    return { trigger: "sagemaker", cause: sm.reason ?? "SageMaker failed", at: tick.at };
  if (sm?.phase === "not-started") {
    const requestedAt = Date.parse(record.sagemaker.requestedAt ?? record.startedAt);
    if (tick.at - requestedAt > ctx.s.graceMs) {
      return {
        trigger: "sagemaker",
        cause: `SageMaker showed no update of the endpoint ${Math.round(ctx.s.graceMs / 1000)} s after UpdateEndpoint was accepted`,
        at: tick.at,
      };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------
// Rolling back

/**
 * Asks both targets to roll back, at once, before anything else (the ledger is written
 * after the requests: the time to the other target's request is what limits harm).
 */
async function beginRollback(ctx: Context, failure: Failure): Promise<void> {
  const { record, logger } = ctx;
  logger.error(`rolling back both targets: ${failure.cause}`);
  record.rollback = {
    trigger: failure.trigger,
    cause: failure.cause,
    detectedAt: isoTime(failure.at),
    requests: {},
    ...(failure.alarms?.length ? { alarms: failure.alarms } : {}),
  };
  record.reason = `Rolling back ${record.environment} because ${failure.cause}.`;
  enterStage(ctx, "rolling-back");
  await Promise.all([requestEcsRollback(ctx), requestSageMakerRollback(ctx)]);
  measureRollback(ctx);
  await save(ctx);
}

async function requestEcsRollback(ctx: Context): Promise<void> {
  const { record, drivers, s } = ctx;
  if (!record.ecs.requestedAt) {
    record.ecs.rollback = { action: "not-deployed", state: "done" };
    return;
  }
  const handle = await drivers.ecs.rollback({
    ...(record.ecs.deploymentArn ? { deploymentArn: record.ecs.deploymentArn } : {}),
    previousTaskDefinitionArn: record.ecs.previousTaskDefinitionArn,
    smokeFunctionArn: record.request.smokeFunctionArn,
  });
  const at = isoTime(s.clock.now());
  record.ecs.rollback = {
    action: handle.action,
    ...(handle.deploymentArn ? { deploymentArn: handle.deploymentArn } : {}),
    requestedAt: at,
    state: handle.action === "unchanged" ? "done" : "waiting",
  };
  if (record.rollback && !record.rollback.requests.ecs) record.rollback.requests.ecs = at;
  ctx.logger.info(
    `ECS rollback: ${handle.action}${handle.deploymentArn ? ` (${handle.deploymentArn})` : ""}`,
  );
}

async function requestSageMakerRollback(ctx: Context): Promise<void> {
  const { record, drivers, s } = ctx;
  if (!record.sagemaker.requestedAt) {
    record.sagemaker.rollback = { result: "not-deployed", state: "done" };
    return;
  }
  const result = await drivers.sagemaker.rollback(record.sagemaker.previousEndpointConfigName);
  const at = isoTime(s.clock.now());
  if (result === "busy") {
    record.sagemaker.rollback = { result, state: "waiting" };
    if (record.rollback) record.rollback.deferred = true;
    ctx.logger.info(
      "SageMaker is still updating (it rolls back by itself on any release alarm); asking again when it stops",
    );
    return;
  }
  record.sagemaker.rollback = { result, requestedAt: at, state: result === "unchanged" ? "done" : "waiting" };
  if (record.rollback && !record.rollback.requests.sagemaker) record.rollback.requests.sagemaker = at;
  ctx.logger.info(
    `SageMaker rollback: ${result === "unchanged" ? "already on" : "updating back to"} ${record.sagemaker.previousEndpointConfigName}`,
  );
}

/** Detection to the other target's rollback request (both, for an alarm or an error). */
function measureRollback(ctx: Context): void {
  const rollback = ctx.record.rollback;
  if (!rollback) return;
  const detected = Date.parse(rollback.detectedAt);
  const ecs = rollback.requests.ecs ? Date.parse(rollback.requests.ecs) - detected : undefined;
  const sm = rollback.requests.sagemaker ? Date.parse(rollback.requests.sagemaker) - detected : undefined;
  const t = rollback.trigger;
  // An alarm SageMaker rolls back on by itself needs no request while it updates (it
  // refuses one anyway): its side is SageMaker's own, not the coordinator's.
  const smNative =
    t === "alarm" &&
    rollback.deferred === true &&
    (rollback.alarms ?? []).some((name) => ctx.record.alarms.native.includes(name));
  const latency =
    t === "ecs" || t === "ecs-smoke"
      ? sm
      : t === "sagemaker" || t === "sagemaker-smoke"
        ? ecs
        : [ecs, smNative ? undefined : sm]
            .filter((v): v is number => v !== undefined)
            .reduce<number | undefined>((a, b) => Math.max(a ?? 0, b), undefined);
  if (latency !== undefined) rollback.latencyMs = latency;
}

async function finishRollback(ctx: Context): Promise<void> {
  const { record, drivers, s, logger } = ctx;
  for (;;) {
    await drivers.ledger.heartbeat(record.environment, ctx.owner, isoTime(s.clock.now()));
    const ecsRollback = record.ecs.rollback;
    if (!ecsRollback || ecsRollback.state === "retry") {
      await requestEcsRollback(ctx);
    } else if (ecsRollback.state === "waiting") {
      const progress = await drivers.ecs.checkRollback(
        {
          action: ecsRollback.action as "native" | "stopped" | "redeployed" | "unchanged",
          ...(ecsRollback.deploymentArn ? { deploymentArn: ecsRollback.deploymentArn } : {}),
          previousTaskDefinitionArn: record.ecs.previousTaskDefinitionArn,
        },
        record.request.smokeFunctionArn,
      );
      if (progress.state !== "waiting") logger.info(`ECS rollback ${progress.state}: ${progress.detail}`);
      ecsRollback.state = progress.state;
      ecsRollback.detail = progress.detail;
    }
    const smRollback = record.sagemaker.rollback;
    if (!smRollback || smRollback.result === "busy") {
      await requestSageMakerRollback(ctx);
    } else if (smRollback.state === "waiting") {
      const previous = record.sagemaker.previousEndpointConfigName;
      const progress = await drivers.sagemaker.check(
        previous,
        Date.parse(smRollback.requestedAt ?? record.startedAt),
        ctx.seenUpdating.has(previous),
      );
      noteUpdating(ctx, progress);
      if (progress.phase === "succeeded") smRollback.state = "done";
      else if (progress.phase === "failed") {
        smRollback.state = "failed";
        smRollback.detail = progress.reason ?? "SageMaker did not return to the previous config";
      }
      if (smRollback.state !== "waiting") logger.info(`SageMaker rollback ${smRollback.state}`);
    }
    measureRollback(ctx);
    await restorePreviousConfiguration(ctx);

    const ecsState = record.ecs.rollback?.state;
    const smState = record.sagemaker.rollback?.state;
    const settled = (state?: string) => state === "done" || state === "failed";
    if (settled(ecsState) && settled(smState)) {
      const cause = record.rollback?.cause ?? "the release failed";
      if (ecsState === "done" && smState === "done") {
        record.outcome = "rolled-back";
        const where =
          record.sagemaker.rollback?.result === "not-deployed"
            ? "ECS is back on the previous revision and SageMaker was never updated"
            : record.ecs.rollback?.action === "not-deployed"
              ? "SageMaker is back on the previous config and ECS was never updated"
              : "ECS and SageMaker are both back on the previous version";
        record.reason = `Rolled back ${shortDigest(record.digest)} in ${record.environment} because ${cause}: ${where}.`;
        logger.info(record.reason);
      } else {
        record.outcome = "failed";
        const broken = [
          ecsState === "failed" ? `ECS failed (${record.ecs.rollback?.detail})` : "",
          smState === "failed" ? `SageMaker failed (${record.sagemaker.rollback?.detail})` : "",
        ]
          .filter(Boolean)
          .join(" and ");
        record.reason = `Release of ${shortDigest(record.digest)} to ${record.environment} needs attention: it was rolled back because ${cause}, but the rollback of ${broken}.`;
        logger.error(record.reason);
      }
      await finish(ctx);
      return;
    }
    await save(ctx);
    await s.clock.sleep(s.pollMs);
  }
}

/**
 * Once ECS is back on the previous revision, puts the previous deployment configuration
 * back as well: the release's own (its bake, its alarms, its smoke hook carrying the new
 * model's contract) and the rollback deployment's (no hook, no bake, alarms off) must not
 * outlive it — the next release reads the hook's role and timeout, and the bake, from
 * the service. A failure here leaves the targets where they should be, so it is reported,
 * not treated as a failed rollback.
 */
async function restorePreviousConfiguration(ctx: Context): Promise<void> {
  const { record, drivers, logger } = ctx;
  const rollback = record.ecs.rollback;
  const previous = record.ecs.previousDeploymentConfiguration;
  if (!previous || !rollback || rollback.state !== "done" || rollback.configurationRestored) return;
  if (rollback.action === "not-deployed") return;
  try {
    await drivers.ecs.restoreConfiguration(previous);
    rollback.configurationRestored = true;
    logger.info("ECS service's previous deployment configuration restored");
  } catch (err) {
    rollback.configurationRestored = false;
    rollback.detail = `${rollback.detail ?? "ECS is back"}; the previous deployment configuration was not restored (${errorMessage(err)})`;
    logger.warning(rollback.detail);
  }
}

// ---------------------------------------------------------------------------------

/** Remembers that an update toward a config was seen running (it cannot be "not started" any more). */
function noteUpdating(ctx: Context, progress: SageMakerProgress): void {
  if (progress.phase === "updating" && progress.pendingEndpointConfigName) {
    ctx.seenUpdating.add(progress.pendingEndpointConfigName);
  }
}

function sageMakerDeploymentConfig(record: ReleaseRecord) {
  return guardrailConfig(record.request.strategy, {
    stepWaitSeconds: record.request.stepWaitSeconds,
    bakeMinutes: record.request.bakeMinutes,
    alarmNames: record.alarms.native,
  });
}

function taskDefinitionOf(record: ReleaseRecord): string {
  if (!record.ecs.taskDefinitionArn)
    throw new Error(`release ${record.releaseId} has no task definition yet`);
  return record.ecs.taskDefinitionArn;
}

function enterStage(ctx: Context, stage: ReleaseStage): void {
  const now = ctx.s.clock.now();
  const { record } = ctx;
  record.timings[record.stage] = (record.timings[record.stage] ?? 0) + (now - ctx.stageStartedAt);
  record.stage = stage;
  ctx.stageStartedAt = now;
}

async function save(ctx: Context): Promise<void> {
  ctx.record.updatedAt = isoTime(ctx.s.clock.now());
  await ctx.drivers.ledger.putRecord(ctx.record);
}

async function saveQuietly(ctx: Context): Promise<void> {
  try {
    await save(ctx);
  } catch (err) {
    ctx.logger.warning(`could not write the ledger: ${errorMessage(err)}`);
  }
}

async function finish(ctx: Context): Promise<void> {
  enterStage(ctx, "done");
  ctx.record.finishedAt = isoTime(ctx.s.clock.now());
  await save(ctx);
  await ctx.drivers.ledger.releaseLock(ctx.record.environment, ctx.owner);
}

function resultOf(ctx: Context): ReleaseResult {
  return {
    status: ctx.record.outcome,
    environment: ctx.record.environment,
    releaseId: ctx.record.releaseId,
    reason: ctx.record.reason,
    record: ctx.record,
    ...(ctx.plan ? { plan: ctx.plan } : {}),
  };
}

export function shortDigest(digest: string): string {
  return digest ? `${digest.slice(0, 19)}…` : "(unknown image)";
}
