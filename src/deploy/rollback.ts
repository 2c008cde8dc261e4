import { environmentResources } from "../environment.js";
import { ConfigurationError } from "../errors.js";
import { isoTime } from "./clock.js";
import type { ReleaseRecord } from "./ledger.js";
import {
  type CoordinatorOptions,
  driveLocked,
  inspectLock,
  lockFor,
  type ReleaseResult,
  resume,
  settingsOf,
} from "./release.js";

/**
 * An operator's rollback: return an environment to its previous good release, on both
 * targets, through the same rollback steps (and ledger) as an automatic one.
 *
 * - A release in flight whose run is gone is rolled back (not resumed: the operator
 *   asked for the way back). One whose run is alive is refused, naming it.
 * - Otherwise the target is the newest succeeded release before the newest succeeded
 *   one (its task definition and endpoint config); with no such release, the state the
 *   newest one replaced. Rolling back twice returns to the same place: the ledger
 *   records each rollback, but only releases move the "current" mark.
 */
export async function rollbackEnvironment(
  environment: string,
  options: CoordinatorOptions & { reason?: string },
): Promise<ReleaseResult> {
  const { drivers, logger } = options;
  const s = settingsOf(options);
  environmentResources(environment);
  const asked = options.reason ? `an operator asked for it (${options.reason})` : "an operator asked for it";

  const held = await inspectLock(environment, options, s);
  if (held) {
    logger.info(`release ${held.record.releaseId} is in flight with no run driving it: rolling it back`);
    return resume(held.record, held.lock, options, s, { trigger: "operator", cause: asked });
  }

  const records = await drivers.ledger.listRecords(environment, 50);
  const releases = records.filter((r) => r.kind === "release" && r.outcome === "succeeded");
  const current = releases[0];
  if (!current?.ecs.taskDefinitionArn) {
    throw new ConfigurationError(
      `the ledger of ${environment} holds no succeeded release to roll back from; nothing was changed (a release that failed was already rolled back by itself)`,
    );
  }
  const earlier = releases.find((r) => r.startedAt < current.startedAt && r.digest !== current.digest);
  const target = earlier?.ecs.taskDefinitionArn
    ? {
        taskDefinitionArn: earlier.ecs.taskDefinitionArn,
        deploymentConfiguration: earlier.ecs.deploymentConfiguration,
        endpointConfigName: earlier.sagemaker.endpointConfigName,
        label: `release ${earlier.releaseId} (${earlier.digest.slice(0, 19)}…, model ${earlier.model.version})`,
      }
    : {
        taskDefinitionArn: current.ecs.previousTaskDefinitionArn,
        deploymentConfiguration: current.ecs.previousDeploymentConfiguration,
        endpointConfigName: current.sagemaker.previousEndpointConfigName,
        label: `the version release ${current.releaseId} replaced`,
      };

  const now = s.clock.now();
  const releaseId = `${isoTime(now)
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}-rollback`;
  const record: ReleaseRecord = {
    ...structuredClone(current),
    releaseId,
    kind: "rollback",
    // Written as rolling back from the start: a run that dies here must never be resumed as a release.
    stage: "rolling-back",
    outcome: "in-progress",
    reason: `Rolling back ${environment} to ${target.label}.`,
    startedAt: isoTime(now),
    updatedAt: isoTime(now),
    ecs: {
      previousTaskDefinitionArn: target.taskDefinitionArn,
      ...(target.deploymentConfiguration
        ? { previousDeploymentConfiguration: target.deploymentConfiguration }
        : {}),
      taskDefinitionArn: current.ecs.taskDefinitionArn,
      requestedAt: isoTime(now),
    },
    sagemaker: {
      previousEndpointConfigName: target.endpointConfigName,
      endpointConfigName: current.sagemaker.endpointConfigName,
      modelName: current.sagemaker.modelName,
      requestedAt: isoTime(now),
    },
    alarms: { ...current.alarms, events: [] },
    smoke: {},
    rollback: {
      trigger: "operator",
      cause: `${asked}, to return to ${target.label}`,
      detectedAt: isoTime(now),
      requests: {},
    },
    timings: {},
  };
  delete record.bake;
  delete record.finishedAt;

  const owner = await lockFor(record, options, s);
  logger.info(`rolling back ${environment} from release ${current.releaseId} to ${target.label}`);
  return driveLocked(record, owner, options);
}
