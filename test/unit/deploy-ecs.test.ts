import {
  DescribeServiceDeploymentsCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  ListServiceDeploymentsCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  type ServiceDeployment,
  StopServiceDeploymentCommand,
  type TaskDefinition,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import {
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  ElasticLoadBalancingV2Client,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import type { SmokeContract } from "../../infra/lambda/smoke-test/src/types.js";
import {
  checkEcsDeployment,
  checkEcsRollback,
  observeEcs,
  progressOf,
  registerTaskDefinition,
  rollbackConfiguration,
  rollbackEcs,
  startEcsDeployment,
} from "../../src/deploy/ecs.js";
import { planRelease, resolveReleaseInputs } from "../../src/deploy/plan.js";
import { ConfigurationError } from "../../src/errors.js";

const ecsMock = mockClient(ECSClient);
const elbMock = mockClient(ElasticLoadBalancingV2Client);
const ecs = new ECSClient({ region: "us-east-1" });
const elb = new ElasticLoadBalancingV2Client({ region: "us-east-1" });

const REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const DIGEST = `sha256:${"a".repeat(64)}`;
const IMAGE = `${REGISTRY}/astrolens-staging/inference@${DIGEST}`;
const OLD_IMAGE = `${REGISTRY}/astrolens-staging/inference@sha256:${"0".repeat(64)}`;
const SMOKE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:astrolens-staging-smoke-test";
const OLD_TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/astrolens-staging-inference:7";
const NEW_TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/astrolens-staging-inference:8";
const DEPLOYMENT =
  "arn:aws:ecs:us-east-1:123456789012:service-deployment/astrolens-staging/astrolens-staging-inference/abc";
const TARGET = { cluster: "astrolens-staging", service: "astrolens-staging-inference" };
const CONTRACT = {
  name: "astrolens",
  version: "2.0.0",
  manifestSha256: "b".repeat(64),
  tileSize: 64,
  classifier: { classes: ["a"] },
  detector: { classes: ["source"], confidenceThreshold: 0.25 },
  ood: { thresholds: { msp: 0.5, energy: 3, mahalanobis: 12 }, rule: "majority", minVotes: 2 },
} satisfies SmokeContract;
const inputs = resolveReleaseInputs({ environment: "staging", imageUri: IMAGE, model: CONTRACT });

function taskDefinition(arn: string, image: string, status = "ACTIVE"): TaskDefinition {
  return {
    taskDefinitionArn: arn,
    family: "astrolens-staging-inference",
    status: status as TaskDefinition["status"],
    networkMode: "awsvpc",
    cpu: "1024",
    memory: "2048",
    containerDefinitions: [{ name: "inference", image, essential: true, environment: [] }],
  };
}

function service(overrides: Record<string, unknown> = {}) {
  return {
    serviceArn: "arn:aws:ecs:us-east-1:123456789012:service/astrolens-staging/astrolens-staging-inference",
    serviceName: "astrolens-staging-inference",
    status: "ACTIVE",
    taskDefinition: OLD_TD,
    deploymentController: { type: "ECS" as const },
    deploymentConfiguration: {
      strategy: "BLUE_GREEN" as const,
      bakeTimeInMinutes: 5,
      lifecycleHooks: [
        {
          hookTargetArn: SMOKE_ARN,
          roleArn: "arn:aws:iam::123456789012:role/hooks",
          lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT" as const],
        },
      ],
    },
    loadBalancers: [
      {
        targetGroupArn: "arn:tg/blue",
        containerName: "inference",
        containerPort: 8080,
        advancedConfiguration: {
          alternateTargetGroupArn: "arn:tg/green",
          productionListenerRule:
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/astrolens-staging/50dc6c495c0c9188/f2f7dc8efc522ab2/1111",
          testListenerRule:
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/astrolens-staging/50dc6c495c0c9188/0467ef3c8400ae65/2222",
          roleArn: "arn:aws:iam::123456789012:role/ecs-elb",
        },
      },
    ],
    events: [
      {
        id: "1",
        createdAt: new Date("2026-11-26T10:05:00Z"),
        message: "(service x) has stopped 1 running tasks: task 123 (Essential container exited).",
      },
      {
        id: "0",
        createdAt: new Date("2026-11-25T10:00:00Z"),
        message: "(service x) has reached a steady state.",
      },
    ],
    ...overrides,
  };
}

function deployment(overrides: Partial<ServiceDeployment> = {}): ServiceDeployment {
  return {
    serviceDeploymentArn: DEPLOYMENT,
    status: "IN_PROGRESS",
    lifecycleStage: "SCALE_UP",
    createdAt: new Date("2026-11-26T10:00:00Z"),
    ...overrides,
  };
}

beforeEach(() => {
  ecsMock.reset();
  elbMock.reset();
});

function mockObservable(svc = service()) {
  ecsMock.on(DescribeServicesCommand).resolves({ services: [svc] });
  ecsMock
    .on(DescribeTaskDefinitionCommand, { taskDefinition: OLD_TD })
    .resolves({ taskDefinition: taskDefinition(OLD_TD, OLD_IMAGE), tags: [] });
  ecsMock.on(ListServiceDeploymentsCommand).resolves({ serviceDeployments: [] });
  ecsMock.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [OLD_TD] });
  elbMock.on(DescribeListenersCommand).resolves({
    Listeners: [{ ListenerArn: "l", LoadBalancerArn: "arn:lb", Port: 8443, Protocol: "HTTP" }],
  });
  elbMock.on(DescribeLoadBalancersCommand).resolves({
    LoadBalancers: [
      { LoadBalancerArn: "arn:lb", DNSName: "astrolens-staging-123.us-east-1.elb.amazonaws.com" },
    ],
  });
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

describe("observeEcs", () => {
  it("reads the service, its revision, the hook role and the test listener's URL", async () => {
    mockObservable();
    const observed = await observeEcs(ecs, elb, inputs);
    expect(observed.deploymentController).toBe("ECS");
    expect(observed.taskDefinition.taskDefinitionArn).toBe(OLD_TD);
    expect(observed.hookRoleArn).toBe("arn:aws:iam::123456789012:role/hooks");
    expect(observed.testUrl).toBe("http://astrolens-staging-123.us-east-1.elb.amazonaws.com:8443");
    expect(observed.reusableTaskDefinitionArn).toBeUndefined();
    expect(observed.inFlightDeployment).toBeUndefined();
    // The listener of the test rule: the rule ARN without its last segment.
    expect(elbMock.commandCalls(DescribeListenersCommand)[0]?.args[0].input).toEqual({
      ListenerArns: [
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/astrolens-staging/50dc6c495c0c9188/0467ef3c8400ae65",
      ],
    });
  });

  it("finds an identical ACTIVE revision to reuse by comparing it, not by its tag", async () => {
    mockObservable();
    ecsMock.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [NEW_TD, OLD_TD] });
    ecsMock
      .on(DescribeTaskDefinitionCommand, { taskDefinition: NEW_TD })
      .resolves({ taskDefinition: taskDefinition(NEW_TD, IMAGE) });
    const observed = await observeEcs(ecs, elb, inputs);
    expect(observed.reusableTaskDefinitionArn).toBe(NEW_TD);
    expect(ecsMock.commandCalls(ListTaskDefinitionsCommand)[0]?.args[0].input).toEqual({
      familyPrefix: "astrolens-staging-inference",
      status: "ACTIVE",
      sort: "DESC",
      maxResults: 20,
    });
  });

  it("does not reuse a revision that differs in anything but tags", async () => {
    mockObservable();
    ecsMock.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [NEW_TD] });
    ecsMock
      .on(DescribeTaskDefinitionCommand, { taskDefinition: NEW_TD })
      .resolves({ taskDefinition: { ...taskDefinition(NEW_TD, IMAGE), memory: "4096" } });
    expect((await observeEcs(ecs, elb, inputs)).reusableTaskDefinitionArn).toBeUndefined();
  });

  it("reports a deployment already running", async () => {
    mockObservable();
    ecsMock.on(ListServiceDeploymentsCommand).resolves({
      serviceDeployments: [{ serviceDeploymentArn: DEPLOYMENT, status: "ROLLBACK_IN_PROGRESS" }],
    });
    expect((await observeEcs(ecs, elb, inputs)).inFlightDeployment).toEqual({
      arn: DEPLOYMENT,
      status: "ROLLBACK_IN_PROGRESS",
    });
  });

  it("refuses a service on the CODE_DEPLOY controller, saying what to do, before reading anything else", async () => {
    mockObservable(service({ deploymentController: { type: "CODE_DEPLOY" } }));
    const err = await configurationError(observeEcs(ecs, elb, inputs));
    expect(err.message).toContain(
      "ECS service astrolens-staging-inference uses the CODE_DEPLOY deployment controller",
    );
    expect(err.message).toContain("switch the service to deploymentController {type: ECS}");
    expect(ecsMock.commandCalls(DescribeTaskDefinitionCommand)).toHaveLength(0);
  });

  it("refuses a missing service, naming it and the cluster", async () => {
    ecsMock
      .on(DescribeServicesCommand)
      .resolves({ services: [], failures: [{ arn: "x", reason: "MISSING" }] });
    const err = await configurationError(observeEcs(ecs, elb, inputs));
    expect(err.message).toBe(
      "ECS service astrolens-staging-inference does not exist in cluster astrolens-staging (MISSING): deploy the environment's stack first, or check the environment name",
    );
  });

  it("does not look the test listener up when the test URL is given", async () => {
    mockObservable();
    const given = resolveReleaseInputs({
      environment: "staging",
      imageUri: IMAGE,
      model: CONTRACT,
      testUrl: "http://x:1",
    });
    expect((await observeEcs(ecs, elb, given)).testUrl).toBeUndefined();
    expect(elbMock.calls()).toHaveLength(0);
  });
});

describe("registering and deploying", () => {
  it("registers the plan's revision, or returns the reusable one without a call", async () => {
    mockObservable();
    const observed = await observeEcs(ecs, elb, inputs);
    const plan = planRelease(
      { ecs: observed, sagemaker: smStub(), alarms: [], smokeFunctionArn: SMOKE_ARN },
      inputs,
      "r1",
    );
    ecsMock.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: NEW_TD } });
    expect(await registerTaskDefinition(ecs, plan.ecs)).toEqual({ arn: NEW_TD, reused: false });
    const sent = ecsMock.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    expect(sent?.containerDefinitions?.[0]?.image).toBe(IMAGE);
    expect(sent?.tags).toEqual([{ key: "astrolens:release-key", value: `${DIGEST}/${"b".repeat(64)}` }]);

    ecsMock.resetHistory();
    const reuse = {
      ...plan.ecs,
      taskDefinition: { ...plan.ecs.taskDefinition, action: "reuse" as const, arn: NEW_TD },
    };
    expect(await registerTaskDefinition(ecs, reuse)).toEqual({ arn: NEW_TD, reused: true });
    expect(ecsMock.commandCalls(RegisterTaskDefinitionCommand)).toHaveLength(0);
  });

  it("starts the deployment with UpdateService (revision + blue/green configuration) and returns its ARN", async () => {
    ecsMock.on(UpdateServiceCommand).resolves({ service: { currentServiceDeployment: DEPLOYMENT } });
    ecsMock.on(DescribeServiceDeploymentsCommand).resolves({ serviceDeployments: [deployment()] });
    const configuration = { strategy: "BLUE_GREEN" as const, bakeTimeInMinutes: 10 };
    const requested = new Date("2026-11-26T10:00:00Z");
    expect(await startEcsDeployment(ecs, TARGET, NEW_TD, configuration, requested)).toBe(DEPLOYMENT);
    expect(ecsMock.commandCalls(UpdateServiceCommand)[0]?.args[0].input).toEqual({
      cluster: "astrolens-staging",
      service: "astrolens-staging-inference",
      taskDefinition: NEW_TD,
      deploymentConfiguration: configuration,
    });
  });

  it("does not take the last finished deployment for the new one", async () => {
    ecsMock.on(UpdateServiceCommand).resolves({ service: { currentServiceDeployment: "old-one" } });
    ecsMock.on(DescribeServiceDeploymentsCommand).resolves({
      serviceDeployments: [
        {
          serviceDeploymentArn: "old-one",
          status: "SUCCESSFUL",
          createdAt: new Date("2026-11-20T10:00:00Z"),
        },
      ],
    });
    ecsMock.on(ListServiceDeploymentsCommand).resolves({
      serviceDeployments: [{ serviceDeploymentArn: DEPLOYMENT, createdAt: new Date("2026-11-26T10:00:01Z") }],
    });
    expect(await startEcsDeployment(ecs, TARGET, NEW_TD, {}, new Date("2026-11-26T10:00:00Z"))).toBe(
      DEPLOYMENT,
    );
  });

  it("finds the deployment by ListServiceDeployments when UpdateService does not name it", async () => {
    ecsMock.on(UpdateServiceCommand).resolves({ service: {} });
    ecsMock.on(ListServiceDeploymentsCommand).resolves({
      serviceDeployments: [
        { serviceDeploymentArn: "older", createdAt: new Date("2026-11-26T10:00:00Z") },
        { serviceDeploymentArn: DEPLOYMENT, createdAt: new Date("2026-11-26T10:00:05Z") },
      ],
    });
    const requested = new Date("2026-11-26T10:00:04Z");
    expect(await startEcsDeployment(ecs, TARGET, NEW_TD, {}, requested)).toBe(DEPLOYMENT);
    const listed = ecsMock.commandCalls(ListServiceDeploymentsCommand)[0]?.args[0].input;
    expect(listed?.createdAt?.after?.toISOString()).toBe("2026-11-26T09:59:04.000Z");
  });
});

describe("following a deployment", () => {
  it.each([
    ["ROLLBACK_REQUESTED", "rolling-back"],
    ["ROLLBACK_IN_PROGRESS", "rolling-back"],
    ["ROLLBACK_SUCCESSFUL", "rolled-back"],
    ["ROLLBACK_FAILED", "rollback-failed"],
    ["STOPPED", "stopped"],
    ["STOP_REQUESTED", "stopped"],
    ["SUCCESSFUL", "succeeded"],
    ["PENDING", "in-progress"],
    ["IN_PROGRESS", "in-progress"],
  ] as const)("%s is %s", (status, phase) => {
    expect(progressOf(deployment({ status }), SMOKE_ARN).phase).toBe(phase);
  });

  it("counts the smoke test as passed only past POST_TEST_TRAFFIC_SHIFT or when the hook SUCCEEDED", () => {
    const at = (lifecycleStage: string, hookStatus?: string) =>
      progressOf(
        deployment({
          lifecycleStage: lifecycleStage as ServiceDeployment["lifecycleStage"],
          ...(hookStatus
            ? {
                lifecycleHookDetails: [
                  { hookId: "h", targetArn: SMOKE_ARN, status: hookStatus as "SUCCEEDED" },
                ],
              }
            : {}),
        }),
        SMOKE_ARN,
      );
    expect(at("TEST_TRAFFIC_SHIFT").testPassed).toBe(false);
    expect(at("POST_TEST_TRAFFIC_SHIFT").testPassed).toBe(false);
    expect(at("POST_TEST_TRAFFIC_SHIFT", "IN_PROGRESS").testPassed).toBe(false);
    expect(at("POST_TEST_TRAFFIC_SHIFT", "SUCCEEDED").testPassed).toBe(true);
    // The describe-side enum lacks this stage; it is still understood.
    expect(at("PRE_PRODUCTION_TRAFFIC_SHIFT").testPassed).toBe(true);
    expect(at("PRODUCTION_TRAFFIC_SHIFT").onProduction).toBe(false);
    expect(at("BAKE_TIME").onProduction).toBe(true);
    // A rolled-back deployment passed nothing.
    expect(
      progressOf(deployment({ status: "ROLLBACK_IN_PROGRESS", lifecycleStage: "BAKE_TIME" }), SMOKE_ARN)
        .onProduction,
    ).toBe(false);
  });

  it("explains a failure with the status reason, the hook, the alarms and the service's events", async () => {
    ecsMock.on(DescribeServiceDeploymentsCommand).resolves({
      serviceDeployments: [
        deployment({
          status: "ROLLBACK_IN_PROGRESS",
          statusReason: "deployment failed: hook execution failure(s) detected",
          lifecycleStage: "POST_TEST_TRAFFIC_SHIFT",
          lifecycleHookDetails: [{ hookId: "h1", targetArn: SMOKE_ARN, status: "FAILED" }],
          alarms: { status: "TRIGGERED", alarmNames: ["a", "b"], triggeredAlarmNames: ["b"] },
        }),
      ],
    });
    ecsMock.on(DescribeServicesCommand).resolves({ services: [service()] });
    const progress = await checkEcsDeployment(ecs, TARGET, DEPLOYMENT, SMOKE_ARN);
    expect(progress.phase).toBe("rolling-back");
    expect(progress.hookStatus).toBe("FAILED");
    expect(progress.triggeredAlarms).toEqual(["b"]);
    expect(progress.reason).toBe(
      `ECS deployment ROLLBACK_IN_PROGRESS; deployment failed: hook execution failure(s) detected; lifecycle hook ${SMOKE_ARN} FAILED; alarm(s) triggered: b; service events: (service x) has stopped 1 running tasks: task 123 (Essential container exited).`,
    );
  });

  it("reports a deployment ECS does not know (from failures[], which does not throw)", async () => {
    ecsMock.on(DescribeServiceDeploymentsCommand).resolves({
      serviceDeployments: [],
      failures: [{ arn: DEPLOYMENT, reason: "MISSING" }],
    });
    await expect(checkEcsDeployment(ecs, TARGET, DEPLOYMENT, SMOKE_ARN)).rejects.toThrow(
      `ECS does not know service deployment ${DEPLOYMENT} (MISSING)`,
    );
  });
});

describe("rollbackEcs", () => {
  const options = {
    deploymentArn: DEPLOYMENT,
    previousTaskDefinitionArn: OLD_TD,
    smokeFunctionArn: SMOKE_ARN,
  };

  it("stops an in-flight deployment with ROLLBACK (blue still runs)", async () => {
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolves({ serviceDeployments: [deployment({ lifecycleStage: "BAKE_TIME" })] });
    ecsMock.on(StopServiceDeploymentCommand).resolves({ serviceDeploymentArn: DEPLOYMENT });
    expect(await rollbackEcs(ecs, TARGET, options)).toEqual({
      action: "stopped",
      deploymentArn: DEPLOYMENT,
      previousTaskDefinitionArn: OLD_TD,
    });
    expect(ecsMock.commandCalls(StopServiceDeploymentCommand)[0]?.args[0].input).toEqual({
      serviceDeploymentArn: DEPLOYMENT,
      stopType: "ROLLBACK",
    });
    expect(ecsMock.commandCalls(UpdateServiceCommand)).toHaveLength(0);
  });

  it("asks nothing of a deployment ECS is already rolling back", async () => {
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolves({ serviceDeployments: [deployment({ status: "ROLLBACK_IN_PROGRESS" })] });
    expect((await rollbackEcs(ecs, TARGET, options)).action).toBe("native");
    expect(ecsMock.commandCalls(StopServiceDeploymentCommand)).toHaveLength(0);
    expect(ecsMock.commandCalls(UpdateServiceCommand)).toHaveLength(0);
  });

  it("deploys the previous revision once the deployment has finished, without the hook, bake or alarm rollback", async () => {
    ecsMock.on(DescribeServiceDeploymentsCommand, { serviceDeploymentArns: [DEPLOYMENT] }).resolves({
      serviceDeployments: [deployment({ status: "SUCCESSFUL" })],
    });
    const configured = service({
      taskDefinition: NEW_TD,
      deploymentConfiguration: {
        strategy: "BLUE_GREEN",
        bakeTimeInMinutes: 10,
        alarms: { alarmNames: ["a"], enable: true, rollback: true },
        lifecycleHooks: [
          { hookTargetArn: SMOKE_ARN, roleArn: "r", lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT"] },
          { hookTargetArn: "audit", roleArn: "r", lifecycleStages: ["PRE_SCALE_UP"] },
        ],
      },
    });
    ecsMock.on(DescribeServicesCommand).resolves({ services: [configured] });
    ecsMock.on(UpdateServiceCommand).resolves({ service: { currentServiceDeployment: "back" } });
    ecsMock.on(DescribeServiceDeploymentsCommand, { serviceDeploymentArns: ["back"] }).resolves({
      serviceDeployments: [{ serviceDeploymentArn: "back", status: "PENDING", createdAt: new Date() }],
    });
    expect(await rollbackEcs(ecs, TARGET, options)).toEqual({
      action: "redeployed",
      deploymentArn: "back",
      previousTaskDefinitionArn: OLD_TD,
    });
    expect(ecsMock.commandCalls(UpdateServiceCommand)[0]?.args[0].input).toMatchObject({
      taskDefinition: OLD_TD,
      deploymentConfiguration: {
        strategy: "BLUE_GREEN",
        bakeTimeInMinutes: 0,
        alarms: { alarmNames: ["a"], enable: false, rollback: false },
        lifecycleHooks: [{ hookTargetArn: "audit", roleArn: "r", lifecycleStages: ["PRE_SCALE_UP"] }],
      },
    });
    expect(ecsMock.commandCalls(StopServiceDeploymentCommand)).toHaveLength(0);
  });

  it("falls back to a new deployment when the stop comes too late (ConflictException)", async () => {
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolvesOnce({ serviceDeployments: [deployment()] })
      .resolves({ serviceDeployments: [deployment({ status: "SUCCESSFUL" })] });
    const conflict = Object.assign(new Error("The service deployment is already complete"), {
      name: "ConflictException",
      $metadata: {},
    });
    ecsMock.on(StopServiceDeploymentCommand).rejects(conflict);
    ecsMock.on(DescribeServicesCommand).resolves({ services: [service({ taskDefinition: NEW_TD })] });
    ecsMock.on(UpdateServiceCommand).resolves({ service: { currentServiceDeployment: "back" } });
    ecsMock.on(DescribeServiceDeploymentsCommand, { serviceDeploymentArns: ["back"] }).resolves({
      serviceDeployments: [{ serviceDeploymentArn: "back", status: "PENDING", createdAt: new Date() }],
    });
    expect((await rollbackEcs(ecs, TARGET, options)).action).toBe("redeployed");
  });

  it("does nothing when the service already runs the previous revision", async () => {
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolves({ serviceDeployments: [deployment({ status: "STOPPED" })] });
    ecsMock
      .on(DescribeServicesCommand)
      .resolves({ services: [service({ taskDefinition: OLD_TD, currentServiceDeployment: DEPLOYMENT })] });
    expect((await rollbackEcs(ecs, TARGET, options)).action).toBe("unchanged");
    expect(ecsMock.commandCalls(UpdateServiceCommand)).toHaveLength(0);
  });

  it("follows a stopped deployment to ROLLBACK_SUCCESSFUL, and asks again if it finished instead", async () => {
    const handle = {
      action: "stopped" as const,
      deploymentArn: DEPLOYMENT,
      previousTaskDefinitionArn: OLD_TD,
    };
    ecsMock.on(DescribeServicesCommand).resolves({ services: [service()] });
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolves({ serviceDeployments: [deployment({ status: "ROLLBACK_IN_PROGRESS" })] });
    expect((await checkEcsRollback(ecs, TARGET, handle, SMOKE_ARN)).state).toBe("waiting");
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolves({ serviceDeployments: [deployment({ status: "ROLLBACK_SUCCESSFUL" })] });
    expect((await checkEcsRollback(ecs, TARGET, handle, SMOKE_ARN)).state).toBe("done");
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolves({ serviceDeployments: [deployment({ status: "SUCCESSFUL" })] });
    expect((await checkEcsRollback(ecs, TARGET, handle, SMOKE_ARN)).state).toBe("retry");
    ecsMock
      .on(DescribeServiceDeploymentsCommand)
      .resolves({ serviceDeployments: [deployment({ status: "ROLLBACK_FAILED" })] });
    expect((await checkEcsRollback(ecs, TARGET, handle, SMOKE_ARN)).state).toBe("failed");
  });

  it("rollbackConfiguration keeps the operator's other settings", () => {
    expect(rollbackConfiguration({ maximumPercent: 200, strategy: "ROLLING" }, SMOKE_ARN)).toEqual({
      maximumPercent: 200,
      strategy: "BLUE_GREEN",
      bakeTimeInMinutes: 0,
      alarms: { alarmNames: [], enable: false, rollback: false },
      lifecycleHooks: [],
    });
  });
});

function smStub() {
  return {
    endpointName: "astrolens-staging-inference",
    endpointStatus: "InService",
    endpointConfigName: "old",
    endpointConfig: {
      EndpointConfigName: "old",
      ProductionVariants: [{ VariantName: "AllTraffic", ModelName: "old" }],
    },
    model: { ModelName: "old", PrimaryContainer: { Image: OLD_IMAGE } },
  };
}
