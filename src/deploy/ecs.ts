import {
  type DeploymentConfiguration,
  DescribeServiceDeploymentsCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  type ECSClient,
  ListServiceDeploymentsCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  type RegisterTaskDefinitionCommandInput,
  type Service,
  type ServiceDeployment,
  type ServiceDeploymentStatus,
  StopServiceDeploymentCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import {
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  type ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { awsErrorName } from "../aws/clients.js";
import { ConfigurationError, withContext } from "../errors.js";
import {
  deriveTaskDefinition,
  type EcsPlan,
  type ObservedEcs,
  type ReleaseInputs,
  registrationOf,
  sameTaskDefinition,
} from "./plan.js";

/**
 * The ECS side of a release: ECS's built-in blue/green does the traffic shifting, the
 * bake, the alarm rollback and runs the smoke-test hook; this module starts it, follows
 * it through the service-deployment APIs and rolls it back (AWS-BEHAVIOUR.md, part A).
 */

export interface EcsTarget {
  cluster: string;
  service: string;
}

/** Statuses of a deployment that is still running toward its target. */
const IN_FLIGHT: ServiceDeploymentStatus[] = ["PENDING", "IN_PROGRESS"];
/** Statuses that mean ECS is busy with the service (ours or someone else's deployment). */
const BUSY: ServiceDeploymentStatus[] = [
  "PENDING",
  "IN_PROGRESS",
  "ROLLBACK_REQUESTED",
  "ROLLBACK_IN_PROGRESS",
  "STOP_REQUESTED",
];

/** Lifecycle stages in the order a blue/green deployment passes them (A2). */
const STAGES = [
  "RECONCILE_SERVICE",
  "PRE_SCALE_UP",
  "SCALE_UP",
  "POST_SCALE_UP",
  "TEST_TRAFFIC_SHIFT",
  "POST_TEST_TRAFFIC_SHIFT",
  "PRE_PRODUCTION_TRAFFIC_SHIFT",
  "PRODUCTION_TRAFFIC_SHIFT",
  "POST_PRODUCTION_TRAFFIC_SHIFT",
  "BAKE_TIME",
  "CLEAN_UP",
];
const AFTER_TEST = STAGES.indexOf("POST_TEST_TRAFFIC_SHIFT");
const ON_PRODUCTION = STAGES.indexOf("POST_PRODUCTION_TRAFFIC_SHIFT");

/** How many ACTIVE revisions are compared when looking for one to reuse. */
const REUSE_LOOKBACK = 20;

/**
 * Reads the service as the plan needs it. A missing service, or one whose deployment
 * controller is not ECS, is a ConfigurationError: nothing has changed yet.
 */
export async function observeEcs(
  ecs: ECSClient,
  elb: ElasticLoadBalancingV2Client | undefined,
  inputs: ReleaseInputs,
): Promise<ObservedEcs> {
  const { resources } = inputs;
  const target = { cluster: resources.cluster, service: resources.service };
  const service = await describeService(ecs, target);
  const controller = service.deploymentController?.type ?? "ECS";
  if (controller !== "ECS") {
    throw new ConfigurationError(
      `ECS service ${target.service} uses the ${controller} deployment controller, but the release drives ECS's built-in blue/green, which needs the ECS controller: switch the service to deploymentController {type: ECS} (the stack's DeploymentController) with the load balancer's advancedConfiguration (alternate target group, production and test listener rules, role), let that roll out, then release again`,
    );
  }
  if (!service.taskDefinition) throw new Error(`ECS service ${target.service} reports no task definition`);
  const described = await ecs
    .send(new DescribeTaskDefinitionCommand({ taskDefinition: service.taskDefinition, include: ["TAGS"] }))
    .catch((err) => {
      throw withContext(`describing the service's task definition ${service.taskDefinition}`, err);
    });
  if (!described.taskDefinition)
    throw new Error(`ECS returned no task definition for ${service.taskDefinition}`);
  const taskDefinition = described.taskDefinition;
  const tags = described.tags ?? [];

  const busy = await ecs.send(
    new ListServiceDeploymentsCommand({ cluster: target.cluster, service: target.service, status: BUSY }),
  );
  const inFlight = busy.serviceDeployments?.[0];
  const desired = deriveTaskDefinition(taskDefinition, tags, inputs);
  const reusable = await findReusableTaskDefinition(ecs, desired);
  const testUrl = inputs.testUrl ? undefined : await findTestUrl(elb, service);
  const hookRoleArn = service.deploymentConfiguration?.lifecycleHooks?.find((h) => h.roleArn)?.roleArn;
  return {
    serviceArn: service.serviceArn ?? "",
    deploymentController: controller,
    taskDefinition,
    taskDefinitionTags: tags,
    ...(service.deploymentConfiguration ? { deploymentConfiguration: service.deploymentConfiguration } : {}),
    ...(inFlight?.serviceDeploymentArn
      ? { inFlightDeployment: { arn: inFlight.serviceDeploymentArn, status: inFlight.status ?? "?" } }
      : {}),
    ...(reusable ? { reusableTaskDefinitionArn: reusable } : {}),
    ...(testUrl ? { testUrl } : {}),
    ...(hookRoleArn ? { hookRoleArn } : {}),
  };
}

export async function describeService(ecs: ECSClient, target: EcsTarget): Promise<Service> {
  let response: Awaited<ReturnType<typeof sendDescribeServices>>;
  try {
    response = await sendDescribeServices(ecs, target);
  } catch (err) {
    if (awsErrorName(err) === "ClusterNotFoundException") {
      throw new ConfigurationError(
        `ECS cluster ${target.cluster} does not exist: deploy the environment's stack first (the environment contract names the cluster ${target.cluster})`,
      );
    }
    throw withContext(`describing ECS service ${target.service}`, err);
  }
  const service = response.services?.[0];
  if (!service || service.status === "INACTIVE") {
    throw new ConfigurationError(
      `ECS service ${target.service} does not exist in cluster ${target.cluster}${response.failures?.[0]?.reason ? ` (${response.failures[0].reason})` : ""}: deploy the environment's stack first, or check the environment name`,
    );
  }
  return service;
}

function sendDescribeServices(ecs: ECSClient, target: EcsTarget) {
  return ecs.send(new DescribeServicesCommand({ cluster: target.cluster, services: [target.service] }));
}

/**
 * An ACTIVE revision of the family identical to `desired`, so a re-run (or a release of
 * a digest that ran before) reuses it instead of registering a duplicate. Compared field
 * by field, not by tag alone: a tag says what a revision was made for, not what it is.
 */
export async function findReusableTaskDefinition(
  ecs: ECSClient,
  desired: RegisterTaskDefinitionCommandInput,
): Promise<string | undefined> {
  const listed = await ecs.send(
    new ListTaskDefinitionsCommand({
      familyPrefix: desired.family,
      status: "ACTIVE",
      sort: "DESC",
      maxResults: REUSE_LOOKBACK,
    }),
  );
  for (const arn of listed.taskDefinitionArns ?? []) {
    const described = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: arn }));
    const candidate = described.taskDefinition;
    if (!candidate || candidate.family !== desired.family || candidate.status !== "ACTIVE") continue;
    if (sameTaskDefinition(registrationOf(candidate), desired)) return arn;
  }
  return undefined;
}

/**
 * The test listener's URL, from the service's blue/green load-balancer configuration:
 * `testListenerRule` is an ALB listener-rule ARN (or an NLB listener ARN), whose
 * listener gives the port and whose load balancer gives the DNS name.
 */
export async function findTestUrl(
  elb: ElasticLoadBalancingV2Client | undefined,
  service: Service,
): Promise<string | undefined> {
  const rule = service.loadBalancers?.find((lb) => lb.advancedConfiguration?.testListenerRule)
    ?.advancedConfiguration?.testListenerRule;
  if (!elb || !rule) return undefined;
  const listenerArn = rule.includes(":listener-rule/")
    ? rule.replace(":listener-rule/", ":listener/").replace(/\/[^/]+$/, "")
    : rule;
  try {
    const listeners = await elb.send(new DescribeListenersCommand({ ListenerArns: [listenerArn] }));
    const listener = listeners.Listeners?.[0];
    if (!listener?.LoadBalancerArn || !listener.Port) return undefined;
    const balancers = await elb.send(
      new DescribeLoadBalancersCommand({ LoadBalancerArns: [listener.LoadBalancerArn] }),
    );
    const dns = balancers.LoadBalancers?.[0]?.DNSName;
    if (!dns) return undefined;
    const scheme = listener.Protocol === "HTTPS" || listener.Protocol === "TLS" ? "https" : "http";
    return `${scheme}://${dns}:${listener.Port}`;
  } catch (err) {
    throw withContext(`finding the test listener ${listenerArn} (pass "test-url" to skip this)`, err);
  }
}

/** Registers the plan's revision, or returns the identical one the plan found. */
export async function registerTaskDefinition(
  ecs: ECSClient,
  plan: EcsPlan,
): Promise<{ arn: string; reused: boolean }> {
  if (plan.taskDefinition.action === "reuse" && plan.taskDefinition.arn) {
    return { arn: plan.taskDefinition.arn, reused: true };
  }
  try {
    const registered = await ecs.send(new RegisterTaskDefinitionCommand(plan.taskDefinition.registration));
    const arn = registered.taskDefinition?.taskDefinitionArn;
    if (!arn) throw new Error("RegisterTaskDefinition returned no ARN");
    return { arn, reused: false };
  } catch (err) {
    throw withContext(`registering a revision of ${plan.taskDefinition.registration.family}`, err);
  }
}

/**
 * Starts the blue/green deployment: the new revision and the release's deployment
 * configuration in one UpdateService (changing the configuration alone would not start
 * a deployment). Returns the service-deployment ARN to follow.
 */
export async function startEcsDeployment(
  ecs: ECSClient,
  target: EcsTarget,
  taskDefinitionArn: string,
  deploymentConfiguration: DeploymentConfiguration,
  requestedAt: Date,
): Promise<string> {
  let updated: Service | undefined;
  try {
    const response = await ecs.send(
      new UpdateServiceCommand({
        cluster: target.cluster,
        service: target.service,
        taskDefinition: taskDefinitionArn,
        deploymentConfiguration,
      }),
    );
    updated = response.service;
  } catch (err) {
    throw withContext(`updating ECS service ${target.service} to ${taskDefinitionArn}`, err);
  }
  // The service's current deployment must be the one this request started, not the
  // last finished one: following that would report success for a deployment never made.
  const current = updated?.currentServiceDeployment;
  if (current) {
    const deployment = await describeDeployment(ecs, current);
    if ((deployment.createdAt?.getTime() ?? 0) >= requestedAt.getTime() - CLOCK_SLACK_MS) return current;
  }
  const arn = await findEcsDeploymentSince(ecs, target, requestedAt);
  if (!arn) throw new Error(`ECS started no service deployment for ${target.service} after UpdateService`);
  return arn;
}

/** Slack for the difference between our clock and AWS's when comparing their timestamps. */
const CLOCK_SLACK_MS = 60_000;

/** The newest deployment of the service created at or after `since` (how a resumed release finds its own). */
export async function findEcsDeploymentSince(
  ecs: ECSClient,
  target: EcsTarget,
  since: Date,
): Promise<string | undefined> {
  const listed = await ecs.send(
    new ListServiceDeploymentsCommand({
      cluster: target.cluster,
      service: target.service,
      createdAt: { after: new Date(since.getTime() - CLOCK_SLACK_MS) },
    }),
  );
  const newest = [...(listed.serviceDeployments ?? [])].sort(
    (a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0),
  )[0];
  return newest?.serviceDeploymentArn;
}

export type EcsPhase =
  | "in-progress"
  | "succeeded"
  | "rolling-back"
  | "rolled-back"
  | "rollback-failed"
  | "stopped";

export interface EcsProgress {
  deploymentArn: string;
  status: string;
  stage?: string;
  phase: EcsPhase;
  /** The smoke-test hook has passed: the deployment is past POST_TEST_TRAFFIC_SHIFT. */
  testPassed: boolean;
  /** Production traffic is on green. */
  onProduction: boolean;
  /** The smoke-test hook's status, as ECS reports it. */
  hookStatus?: string;
  triggeredAlarms: string[];
  /** Why it failed, from every source ECS offers (set when `phase` is a failure). */
  reason?: string;
}

/** Whether the phase means the deployment did not (or will not) reach its target. */
export function ecsFailed(phase: EcsPhase): boolean {
  return phase !== "in-progress" && phase !== "succeeded";
}

/** One look at a deployment: where it is, and, when it failed, why. */
export async function checkEcsDeployment(
  ecs: ECSClient,
  target: EcsTarget,
  deploymentArn: string,
  smokeFunctionArn: string,
): Promise<EcsProgress> {
  const deployment = await describeDeployment(ecs, deploymentArn);
  const progress = progressOf(deployment, smokeFunctionArn);
  if (ecsFailed(progress.phase)) progress.reason = await explainEcsFailure(ecs, target, deployment);
  return progress;
}

async function describeDeployment(ecs: ECSClient, deploymentArn: string): Promise<ServiceDeployment> {
  const described = await ecs.send(
    new DescribeServiceDeploymentsCommand({ serviceDeploymentArns: [deploymentArn] }),
  );
  const deployment = described.serviceDeployments?.find((d) => d.serviceDeploymentArn === deploymentArn);
  if (!deployment) {
    const failure = described.failures?.[0];
    throw new Error(
      `ECS does not know service deployment ${deploymentArn}${failure ? ` (${failure.reason}${failure.detail ? `: ${failure.detail}` : ""})` : ""}`,
    );
  }
  return deployment;
}

/** Maps a deployment to its phase (A5: ROLLBACK_*, STOPPED and STOP_REQUESTED are failures). */
export function progressOf(deployment: ServiceDeployment, smokeFunctionArn: string): EcsProgress {
  const status = deployment.status ?? "PENDING";
  const stage = deployment.lifecycleStage;
  const index = stage ? STAGES.indexOf(stage) : -1;
  const hook = deployment.lifecycleHookDetails?.find((h) => h.targetArn === smokeFunctionArn);
  let phase: EcsPhase;
  switch (status) {
    case "SUCCESSFUL":
      phase = "succeeded";
      break;
    case "ROLLBACK_REQUESTED":
    case "ROLLBACK_IN_PROGRESS":
      phase = "rolling-back";
      break;
    case "ROLLBACK_SUCCESSFUL":
      phase = "rolled-back";
      break;
    case "ROLLBACK_FAILED":
      phase = "rollback-failed";
      break;
    case "STOPPED":
    case "STOP_REQUESTED":
      phase = "stopped";
      break;
    default:
      phase = "in-progress";
  }
  const succeeded = phase === "succeeded";
  return {
    deploymentArn: deployment.serviceDeploymentArn ?? "",
    status,
    ...(stage ? { stage } : {}),
    phase,
    testPassed:
      succeeded || (phase === "in-progress" && (index > AFTER_TEST || hook?.status === "SUCCEEDED")),
    onProduction: succeeded || (phase === "in-progress" && index >= ON_PRODUCTION),
    ...(hook?.status ? { hookStatus: hook.status } : {}),
    triggeredAlarms: deployment.alarms?.triggeredAlarmNames ?? [],
  };
}

/**
 * Why a deployment failed, in one line: ECS's status reason, the rollback's reason,
 * failed or timed-out hooks, triggered alarms, the circuit breaker and the service's
 * latest events (where stopped-task reasons show up).
 */
export async function explainEcsFailure(
  ecs: ECSClient,
  target: EcsTarget,
  deployment: ServiceDeployment,
): Promise<string> {
  const parts: string[] = [`ECS deployment ${deployment.status}`];
  if (deployment.statusReason) parts.push(deployment.statusReason);
  if (deployment.rollback?.reason && deployment.rollback.reason !== deployment.statusReason) {
    parts.push(`rollback: ${deployment.rollback.reason}`);
  }
  for (const hook of deployment.lifecycleHookDetails ?? []) {
    if (hook.status === "FAILED" || hook.status === "TIMED_OUT") {
      parts.push(`lifecycle hook ${hook.targetArn ?? hook.hookId} ${hook.status}`);
    }
  }
  const triggered = deployment.alarms?.triggeredAlarmNames ?? [];
  if (triggered.length > 0) parts.push(`alarm(s) triggered: ${triggered.join(", ")}`);
  const breaker = deployment.deploymentCircuitBreaker;
  if (breaker?.status === "TRIGGERED") {
    parts.push(`circuit breaker triggered after ${breaker.failureCount} failed task(s)`);
  }
  try {
    const service = await describeService(ecs, target);
    const since = deployment.createdAt?.getTime() ?? 0;
    const events = (service.events ?? [])
      .filter((e) => (e.createdAt?.getTime() ?? 0) >= since)
      .slice(0, 3)
      .map((e) => e.message)
      .filter(Boolean);
    if (events.length > 0) parts.push(`service events: ${events.join(" / ")}`);
  } catch {
    // The explanation must not hide the failure it explains.
  }
  return parts.join("; ");
}

export interface EcsRollbackHandle {
  /**
   * native: ECS was already rolling back on its own; stopped: StopServiceDeployment
   * (ROLLBACK) on the in-flight deployment; redeployed: a deployment back to the previous
   * revision (the release's deployment had finished); unchanged: already there.
   */
  action: "native" | "stopped" | "redeployed" | "unchanged";
  deploymentArn?: string;
  previousTaskDefinitionArn: string;
}

/**
 * Returns the service to `previousTaskDefinitionArn`. While the release's deployment is
 * in flight, StopServiceDeployment(ROLLBACK) sends traffic back to blue, which still
 * runs; once it has finished, a new deployment of the previous revision is the only
 * way back. Safe to call again (a resumed release does).
 */
export async function rollbackEcs(
  ecs: ECSClient,
  target: EcsTarget,
  options: { deploymentArn?: string; previousTaskDefinitionArn: string; smokeFunctionArn: string },
): Promise<EcsRollbackHandle> {
  const previous = options.previousTaskDefinitionArn;
  if (options.deploymentArn) {
    const arn = options.deploymentArn;
    const deployment = await describeDeployment(ecs, arn);
    const status = deployment.status ?? "PENDING";
    if (status.startsWith("ROLLBACK_") && status !== "ROLLBACK_FAILED") {
      return { action: "native", deploymentArn: arn, previousTaskDefinitionArn: previous };
    }
    if (status === "ROLLBACK_FAILED") {
      throw new Error(
        `ECS deployment ${arn} failed to roll back (${deployment.statusReason ?? "no reason given"}); the service needs attention`,
      );
    }
    if (IN_FLIGHT.includes(status as ServiceDeploymentStatus)) {
      try {
        await ecs.send(new StopServiceDeploymentCommand({ serviceDeploymentArn: arn, stopType: "ROLLBACK" }));
        return { action: "stopped", deploymentArn: arn, previousTaskDefinitionArn: previous };
      } catch (err) {
        // It finished (or began rolling back) between the describe and the stop.
        if (awsErrorName(err) !== "ConflictException") {
          throw withContext(`stopping ECS deployment ${arn} with rollback`, err);
        }
        const again = await describeDeployment(ecs, arn);
        if (again.status?.startsWith("ROLLBACK_") && again.status !== "ROLLBACK_FAILED") {
          return { action: "native", deploymentArn: arn, previousTaskDefinitionArn: previous };
        }
      }
    }
  }
  const service = await describeService(ecs, target);
  if (service.taskDefinition === previous) {
    const current = service.currentServiceDeployment;
    if (current && current !== options.deploymentArn) {
      const deployment = await describeDeployment(ecs, current);
      if (IN_FLIGHT.includes((deployment.status ?? "PENDING") as ServiceDeploymentStatus)) {
        return { action: "redeployed", deploymentArn: current, previousTaskDefinitionArn: previous };
      }
    }
    return { action: "unchanged", previousTaskDefinitionArn: previous };
  }
  const deploymentArn = await startEcsDeployment(
    ecs,
    target,
    previous,
    rollbackConfiguration(service.deploymentConfiguration, options.smokeFunctionArn),
    new Date(),
  );
  return { action: "redeployed", deploymentArn, previousTaskDefinitionArn: previous };
}

/**
 * Puts a deployment configuration back on the service (after a rollback: the one the
 * release replaced). An UpdateService with only the configuration starts no deployment
 * (AWS-BEHAVIOUR.md A1), so nothing moves; the next release starts from it.
 */
export async function restoreEcsConfiguration(
  ecs: ECSClient,
  target: EcsTarget,
  deploymentConfiguration: DeploymentConfiguration,
): Promise<void> {
  try {
    await ecs.send(
      new UpdateServiceCommand({ cluster: target.cluster, service: target.service, deploymentConfiguration }),
    );
  } catch (err) {
    throw withContext(`restoring the deployment configuration of ECS service ${target.service}`, err);
  }
}

/**
 * The configuration of a deployment back to the previous revision: still blue/green,
 * but no bake, no smoke hook (it would judge the old version against the new
 * manifest) and no alarm rollback (the alarm that caused the rollback may still be in
 * ALARM, and would roll the rollback back onto the failed version).
 */
export function rollbackConfiguration(
  current: DeploymentConfiguration | undefined,
  smokeFunctionArn: string,
): DeploymentConfiguration {
  return {
    ...(current ?? {}),
    strategy: "BLUE_GREEN",
    bakeTimeInMinutes: 0,
    alarms: { alarmNames: current?.alarms?.alarmNames ?? [], enable: false, rollback: false },
    // Only for this deployment: the rollback restores the previous configuration once done.
    lifecycleHooks: (current?.lifecycleHooks ?? []).filter((h) => h.hookTargetArn !== smokeFunctionArn),
  };
}

export interface RollbackProgress {
  /** waiting: still moving; done: on the previous version; retry: call rollback again; failed: needs a person. */
  state: "waiting" | "done" | "retry" | "failed";
  detail: string;
}

/** Follows a rollback started by {@link rollbackEcs}. */
export async function checkEcsRollback(
  ecs: ECSClient,
  target: EcsTarget,
  handle: EcsRollbackHandle,
  smokeFunctionArn: string,
): Promise<RollbackProgress> {
  if (handle.action === "unchanged" || !handle.deploymentArn) {
    return { state: "done", detail: `ECS already on ${handle.previousTaskDefinitionArn}` };
  }
  const progress = await checkEcsDeployment(ecs, target, handle.deploymentArn, smokeFunctionArn);
  if (handle.action === "redeployed") {
    if (progress.phase === "succeeded") {
      return { state: "done", detail: `ECS redeployed ${handle.previousTaskDefinitionArn}` };
    }
    if (progress.phase === "in-progress") return { state: "waiting", detail: describeProgress(progress) };
    return {
      state: "failed",
      detail: `the deployment back to ${handle.previousTaskDefinitionArn} failed: ${progress.reason}`,
    };
  }
  switch (progress.phase) {
    case "rolled-back":
      return { state: "done", detail: `ECS rolled back to ${handle.previousTaskDefinitionArn}` };
    case "rollback-failed":
      return { state: "failed", detail: progress.reason ?? "ECS rollback failed" };
    // Finished before the rollback took hold: green stayed, so deploy the previous revision.
    case "succeeded":
    case "stopped":
      return { state: "retry", detail: `ECS deployment ended ${progress.status} instead of rolling back` };
    default:
      return { state: "waiting", detail: describeProgress(progress) };
  }
}

export function describeProgress(progress: EcsProgress): string {
  return `ECS ${progress.status}${progress.stage ? ` at ${progress.stage}` : ""}${progress.hookStatus ? `, smoke hook ${progress.hookStatus}` : ""}`;
}
