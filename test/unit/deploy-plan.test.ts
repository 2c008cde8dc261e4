import type { TaskDefinition } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import type { SmokeContract } from "../../infra/lambda/smoke-test/src/types.js";
import {
  blueGreenConfiguration,
  deriveTaskDefinition,
  guardrailConfig,
  type ObservedState,
  planRelease,
  RELEASE_KEY_TAG,
  type ReleaseRequest,
  registrationOf,
  renderPlan,
  resolveReleaseInputs,
  sageMakerReleaseName,
  sameTaskDefinition,
} from "../../src/deploy/plan.js";
import { environmentResources, releaseAlarms } from "../../src/environment.js";
import { ConfigurationError } from "../../src/errors.js";

const REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const DIGEST = `sha256:${"a".repeat(64)}`;
const OLD_DIGEST = `sha256:${"0".repeat(64)}`;
const IMAGE = `${REGISTRY}/astrolens-staging/inference@${DIGEST}`;
const OLD_IMAGE = `${REGISTRY}/astrolens-staging/inference@${OLD_DIGEST}`;
const MODEL_SHA = "b".repeat(64);
const SMOKE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:astrolens-staging-smoke-test";
const HOOK_ROLE = "arn:aws:iam::123456789012:role/astrolens-staging-hooks";
const TEST_URL = "http://alb.example:8443";
const OLD_TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/astrolens-staging-inference:7";
const resources = environmentResources("staging");

const CONTRACT: SmokeContract = {
  name: "astrolens",
  version: "2.0.0",
  manifestSha256: MODEL_SHA,
  tileSize: 64,
  classifier: { classes: ["point_source", "extended_source", "streak", "hot_pixels", "empty_sky"] },
  detector: { classes: ["source"], confidenceThreshold: 0.25 },
  ood: { thresholds: { msp: 0.5, energy: 3, mahalanobis: 12 }, rule: "majority", minVotes: 2 },
};

function request(overrides: Partial<ReleaseRequest> = {}): ReleaseRequest {
  return { environment: "staging", imageUri: IMAGE, model: CONTRACT, ...overrides };
}

function taskDefinition(image = OLD_IMAGE): TaskDefinition {
  return {
    taskDefinitionArn: OLD_TD,
    family: "astrolens-staging-inference",
    revision: 7,
    status: "ACTIVE",
    taskRoleArn: "arn:aws:iam::123456789012:role/task",
    executionRoleArn: "arn:aws:iam::123456789012:role/exec",
    networkMode: "awsvpc",
    requiresCompatibilities: ["FARGATE"],
    cpu: "1024",
    memory: "2048",
    containerDefinitions: [
      {
        name: "inference",
        image,
        essential: true,
        portMappings: [{ containerPort: 8080, protocol: "tcp" }],
        environment: [{ name: "PORT", value: "8080" }],
      },
      { name: "log-router", image: "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable" },
    ],
    registeredAt: new Date("2026-01-01T00:00:00Z"),
    compatibilities: ["EC2", "FARGATE"],
  };
}

function observed(
  overrides: {
    ecs?: Partial<ObservedState["ecs"]>;
    sagemaker?: Partial<ObservedState["sagemaker"]>;
    alarms?: ObservedState["alarms"];
  } = {},
): ObservedState {
  return {
    ecs: {
      serviceArn: "arn:aws:ecs:us-east-1:123456789012:service/astrolens-staging/astrolens-staging-inference",
      deploymentController: "ECS",
      taskDefinition: taskDefinition(),
      taskDefinitionTags: [{ key: "team", value: "astro" }],
      deploymentConfiguration: {
        strategy: "BLUE_GREEN",
        bakeTimeInMinutes: 5,
        maximumPercent: 200,
        minimumHealthyPercent: 100,
        lifecycleHooks: [
          {
            hookTargetArn: SMOKE_ARN,
            roleArn: HOOK_ROLE,
            lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT"],
            hookDetails: { targetUrl: TEST_URL, releaseId: "old" },
          },
          {
            hookTargetArn: "arn:aws:lambda:us-east-1:123456789012:function:audit",
            roleArn: HOOK_ROLE,
            lifecycleStages: ["PRE_SCALE_UP"],
          },
        ],
      },
      testUrl: TEST_URL,
      hookRoleArn: HOOK_ROLE,
      ...overrides.ecs,
    },
    sagemaker: {
      endpointName: resources.endpoint,
      endpointStatus: "InService",
      endpointConfigName: "astrolens-staging-inference-000000000000-cccccccccccc",
      endpointConfig: {
        EndpointConfigName: "astrolens-staging-inference-000000000000-cccccccccccc",
        ProductionVariants: [
          {
            VariantName: "AllTraffic",
            ModelName: "astrolens-staging-inference-000000000000-cccccccccccc",
            InitialInstanceCount: 2,
            InstanceType: "ml.m5.large",
          },
        ],
      },
      model: {
        ModelName: "astrolens-staging-inference-000000000000-cccccccccccc",
        ExecutionRoleArn: "arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer: { Image: OLD_IMAGE, Environment: { SAGEMAKER_CONTAINER_LOG_LEVEL: "20" } },
      },
      ...overrides.sagemaker,
    },
    alarms:
      overrides.alarms ??
      releaseAlarms(resources).map((name) => ({
        name,
        state: "OK" as const,
        reason: "Threshold Crossed: no datapoints were received",
        updatedAt: "2026-11-01T00:00:00.000Z",
      })),
    smokeFunctionArn: SMOKE_ARN,
  };
}

function configError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected a ConfigurationError");
}

/** Freezes every object reachable from value, so a mutation throws. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

describe("resolveReleaseInputs", () => {
  it("fills defaults from the environment contract", () => {
    const inputs = resolveReleaseInputs(request());
    expect(inputs.digest).toBe(DIGEST);
    expect(inputs.repository).toBe("astrolens-staging/inference");
    expect(inputs.strategy).toBe("canary");
    expect(inputs.bakeMinutes).toBe(10);
    expect(inputs.stepWaitSeconds).toBe(600);
    expect(inputs.alarmNames).toEqual(releaseAlarms(resources));
    expect(inputs.smokeFunction).toBe("astrolens-staging-smoke-test");
    expect(inputs.model).toEqual({ version: "2.0.0", manifestSha256: MODEL_SHA });
  });

  it("names each bad input and reports them together", () => {
    const err = configError(() =>
      resolveReleaseInputs(
        request({
          model: { ...CONTRACT, manifestSha256: undefined },
          strategy: "blue" as never,
          bakeMinutes: 1441,
          allowAlarms: ["not-watched"],
        }),
      ),
    );
    expect(err.message).toContain('input "model-manifest"');
    expect(err.message).toContain(
      'input "sagemaker-strategy": "blue" is not one of canary, linear, all-at-once',
    );
    expect(err.message).toContain(
      'input "bake-minutes": 1441 is not a whole number of minutes from 0 to 1440',
    );
    expect(err.message).toContain(
      'input "allow-alarms-in-alarm": not-watched is not among the release\'s alarms',
    );
  });

  it("refuses an image addressed by tag, not digest", () => {
    const err = configError(() =>
      resolveReleaseInputs(request({ imageUri: `${REGISTRY}/astrolens/inference:v2` })),
    );
    expect(err.message).toContain('input "image"');
  });

  it("refuses a gate verdict that blocks the release", () => {
    const err = configError(() =>
      resolveReleaseInputs(request({ provenance: { gate: { verdict: "fail", blocksRelease: true } } })),
    );
    expect(err.message).toContain(
      'input "gate-metrics-file": the accuracy gate\'s verdict "fail" blocks the release',
    );
  });

  it("refuses more than ten rollback alarms (SageMaker's limit)", () => {
    const names = Array.from({ length: 11 }, (_, i) => `alarm-${i}`);
    expect(configError(() => resolveReleaseInputs(request({ alarmNames: names }))).message).toContain(
      "SageMaker's auto-rollback takes at most 10",
    );
  });
});

describe("sageMakerReleaseName", () => {
  it("is the endpoint, 12 hex of the digest and 12 of the model hash, within 63 characters", () => {
    const name = sageMakerReleaseName(resources, DIGEST, { version: "2", manifestSha256: MODEL_SHA });
    expect(name).toBe("astrolens-staging-inference-aaaaaaaaaaaa-bbbbbbbbbbbb");
    const longest = sageMakerReleaseName(environmentResources("abcdefghijklmno"), DIGEST, {
      version: "2",
      manifestSha256: MODEL_SHA,
    });
    expect(longest.length).toBeLessThanOrEqual(63);
    expect(longest).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
  });
});

describe("planRelease", () => {
  it("is pure: it changes nothing it is given and gives the same plan twice", () => {
    const state = deepFreeze(observed());
    const inputs = deepFreeze(resolveReleaseInputs(request()));
    const first = planRelease(state, inputs, "r1");
    expect(planRelease(state, inputs, "r1")).toEqual(first);
  });

  it("plans a new revision with the new image, keeping everything else from the current one", () => {
    const plan = planRelease(observed(), resolveReleaseInputs(request()), "r1");
    expect(plan.noop).toBe(false);
    expect(plan.blockers).toEqual([]);
    const registration = plan.ecs.taskDefinition.registration;
    expect(plan.ecs.taskDefinition.action).toBe("register");
    expect(registration.family).toBe("astrolens-staging-inference");
    expect(registration.executionRoleArn).toBe("arn:aws:iam::123456789012:role/exec");
    expect(registration.containerDefinitions?.[0]).toMatchObject({
      name: "inference",
      image: IMAGE,
      portMappings: [{ containerPort: 8080, protocol: "tcp" }],
      environment: [{ name: "PORT", value: "8080" }],
    });
    // The sidecar is untouched.
    expect(registration.containerDefinitions?.[1]?.image).toBe(
      "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
    );
    expect(registration.tags).toEqual([
      { key: "team", value: "astro" },
      { key: RELEASE_KEY_TAG, value: `${DIGEST}/${MODEL_SHA}` },
    ]);
    // Describe-only fields are not registration fields.
    expect(registration).not.toHaveProperty("revision");
    expect(registration).not.toHaveProperty("registeredAt");
  });

  it("reuses an identical ACTIVE revision the driver found", () => {
    const reused = "arn:aws:ecs:us-east-1:123456789012:task-definition/astrolens-staging-inference:9";
    const plan = planRelease(
      observed({ ecs: { reusableTaskDefinitionArn: reused } }),
      resolveReleaseInputs(request()),
      "r1",
    );
    expect(plan.ecs.taskDefinition).toMatchObject({ action: "reuse", arn: reused });
    expect(plan.steps[0]).toMatchObject({ action: "reuse-task-definition" });
  });

  it("configures BLUE_GREEN with the bake, every alarm with rollback, and the smoke hook at POST_TEST_TRAFFIC_SHIFT", () => {
    const inputs = resolveReleaseInputs(request({ bakeMinutes: 20 }));
    const plan = planRelease(observed(), inputs, "r1");
    const config = plan.ecs.deploymentConfiguration;
    expect(config).toMatchObject({
      strategy: "BLUE_GREEN",
      bakeTimeInMinutes: 20,
      maximumPercent: 200,
      minimumHealthyPercent: 100,
      alarms: { alarmNames: releaseAlarms(resources), enable: true, rollback: true },
    });
    // The operator's own hook is kept; ours is replaced, not duplicated.
    expect(config.lifecycleHooks).toHaveLength(2);
    expect(config.lifecycleHooks?.[0]?.hookTargetArn).toContain("function:audit");
    expect(config.lifecycleHooks?.[1]).toEqual({
      targetType: "AWS_LAMBDA",
      hookTargetArn: SMOKE_ARN,
      roleArn: HOOK_ROLE,
      lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT"],
      hookDetails: { targetUrl: TEST_URL, contract: CONTRACT, releaseId: "r1" },
    });
  });

  it("names the SageMaker model and config by digest + model hash, derived from the current config", () => {
    const plan = planRelease(observed(), resolveReleaseInputs(request()), "r1");
    const name = "astrolens-staging-inference-aaaaaaaaaaaa-bbbbbbbbbbbb";
    expect(plan.sagemaker.desired).toEqual({ endpointConfigName: name, modelName: name, image: IMAGE });
    expect(plan.sagemaker.model).toMatchObject({ action: "create" });
    expect(plan.sagemaker.model.input).toMatchObject({
      ModelName: name,
      ExecutionRoleArn: "arn:aws:iam::123456789012:role/sagemaker",
      PrimaryContainer: { Image: IMAGE, Environment: { SAGEMAKER_CONTAINER_LOG_LEVEL: "20" } },
    });
    expect(plan.sagemaker.endpointConfig.input.ProductionVariants).toEqual([
      { VariantName: "AllTraffic", ModelName: name, InitialInstanceCount: 2, InstanceType: "ml.m5.large" },
    ]);
  });

  it("reuses a model and config a previous run created", () => {
    const plan = planRelease(
      observed({
        sagemaker: { existingModel: { image: IMAGE }, existingEndpointConfig: { modelNames: ["x"] } },
      }),
      resolveReleaseInputs(request()),
      "r1",
    );
    expect(plan.sagemaker.model.action).toBe("reuse");
    expect(plan.sagemaker.endpointConfig.action).toBe("reuse");
    expect(plan.blockers).toEqual([]);
  });

  it("is blocked when a model by this release's name runs another image", () => {
    const plan = planRelease(
      observed({ sagemaker: { existingModel: { image: OLD_IMAGE } } }),
      resolveReleaseInputs(request()),
      "r1",
    );
    expect(plan.blockers.join()).toContain("was not made by this toolkit for this image");
  });

  it("is a no-op when both targets already run the desired version", () => {
    const name = "astrolens-staging-inference-aaaaaaaaaaaa-bbbbbbbbbbbb";
    const plan = planRelease(
      observed({
        ecs: { taskDefinition: taskDefinition(IMAGE) },
        sagemaker: {
          endpointConfigName: name,
          existingModel: { image: IMAGE },
          existingEndpointConfig: { modelNames: [name] },
        },
      }),
      resolveReleaseInputs(request()),
      "r1",
    );
    expect(plan.noop).toBe(true);
    expect(plan.steps).toEqual([]);
    expect(plan.blockers).toEqual([]);
    expect(renderPlan(plan)).toContain("no-op, both targets already run this version");
  });

  it("refuses a split environment (one target on the new version, one not)", () => {
    const plan = planRelease(
      observed({ ecs: { taskDefinition: taskDefinition(IMAGE) } }),
      resolveReleaseInputs(request()),
      "r1",
    );
    expect(plan.noop).toBe(false);
    expect(plan.blockers.join()).toContain("the environment is split between two versions");
  });

  it("blocks on an alarm already in ALARM, naming it and its reason", () => {
    const alarms = releaseAlarms(resources).map((name, i) => ({
      name,
      state: i === 0 ? ("ALARM" as const) : ("OK" as const),
      reason: i === 0 ? "Threshold Crossed: 1 datapoint [12.0] > 5.0" : "",
      updatedAt: "2026-11-26T09:00:00.000Z",
    }));
    const plan = planRelease(observed({ alarms }), resolveReleaseInputs(request()), "r1");
    expect(plan.blockers).toHaveLength(1);
    expect(plan.blockers[0]).toContain(
      `alarm ${resources.alarms.albTarget5xxRate} is already in ALARM (Threshold Crossed: 1 datapoint [12.0] > 5.0`,
    );
    expect(plan.blockers[0]).toContain('"allow-alarms-in-alarm"');
  });

  it("proceeds with an allowed alarm in ALARM, leaving it out of both native rollback lists", () => {
    const alarm = resources.alarms.anomalyRate;
    const alarms = releaseAlarms(resources).map((name) => ({
      name,
      state: name === alarm ? ("ALARM" as const) : ("OK" as const),
      reason: "",
      updatedAt: "2026-11-26T09:00:00.000Z",
    }));
    const plan = planRelease(
      observed({ alarms }),
      resolveReleaseInputs(request({ allowAlarms: [alarm] })),
      "r1",
    );
    expect(plan.blockers).toEqual([]);
    expect(plan.alarms.native).not.toContain(alarm);
    expect(plan.ecs.deploymentConfiguration.alarms?.alarmNames).not.toContain(alarm);
    const smAlarms = plan.sagemaker.deploymentConfig.AutoRollbackConfiguration?.Alarms?.map(
      (a) => a.AlarmName,
    );
    expect(smAlarms).toEqual(plan.alarms.native);
    expect(plan.warnings.join()).toContain(`alarm ${alarm} is in ALARM and allowed`);
  });

  it("is blocked by a deployment or an update already running", () => {
    const plan = planRelease(
      observed({
        ecs: { inFlightDeployment: { arn: "arn:aws:ecs:…:service-deployment/c/s/1", status: "IN_PROGRESS" } },
        sagemaker: { endpointStatus: "Updating" },
      }),
      resolveReleaseInputs(request()),
      "r1",
    );
    expect(plan.blockers.join("\n")).toContain(
      "has deployment arn:aws:ecs:…:service-deployment/c/s/1 IN_PROGRESS",
    );
    expect(plan.blockers.join("\n")).toContain("is Updating, not InService");
  });

  it("asks for the hook role and the test URL when the service names neither", () => {
    const plan = planRelease(
      observed({ ecs: { hookRoleArn: undefined, testUrl: undefined } }),
      resolveReleaseInputs(request()),
      "r1",
    );
    expect(plan.blockers.join("\n")).toContain('option "hook-role-arn"');
    expect(plan.blockers.join("\n")).toContain('option "test-url"');
    const given = planRelease(
      observed({ ecs: { hookRoleArn: undefined, testUrl: undefined } }),
      resolveReleaseInputs(request({ hookRoleArn: HOOK_ROLE, testUrl: "http://localhost:9090/" })),
      "r1",
    );
    expect(given.blockers).toEqual([]);
    expect(given.smoke.hookDetails.targetUrl).toBe("http://localhost:9090");
  });

  it("fails clearly when the task definition has no container of the contract's name", () => {
    const td = { ...taskDefinition(), containerDefinitions: [{ name: "app", image: OLD_IMAGE }] };
    const err = configError(() =>
      planRelease(observed({ ecs: { taskDefinition: td } }), resolveReleaseInputs(request()), "r1"),
    );
    expect(err.message).toContain('has no container "inference" (it has: app)');
  });

  it("orders the steps: ECS smoke hook before any SageMaker update", () => {
    const plan = planRelease(observed(), resolveReleaseInputs(request()), "r1");
    const actions = plan.steps.map((s) => `${s.target}:${s.action}`);
    expect(actions).toEqual([
      "ecs:register-task-definition",
      "sagemaker:create-model",
      "sagemaker:create-endpoint-config",
      "ecs:update-service",
      "smoke:ecs-hook",
      "sagemaker:update-endpoint",
      "smoke:invoke",
      "alarms:watch",
    ]);
  });
});

describe("guardrailConfig", () => {
  const alarms = ["a", "b"];
  it("canary (the default): 10% of capacity, the step wait, the bake as the final bake, alarms", () => {
    expect(guardrailConfig("canary", { stepWaitSeconds: 300, bakeMinutes: 10, alarmNames: alarms })).toEqual({
      BlueGreenUpdatePolicy: {
        TrafficRoutingConfiguration: {
          Type: "CANARY",
          WaitIntervalInSeconds: 300,
          CanarySize: { Type: "CAPACITY_PERCENT", Value: 10 },
        },
        TerminationWaitInSeconds: 600,
        MaximumExecutionTimeoutInSeconds: 300 + 600 + 1800,
      },
      AutoRollbackConfiguration: { Alarms: [{ AlarmName: "a" }, { AlarmName: "b" }] },
    });
  });

  it("linear: 20% steps, five waits in the timeout", () => {
    const config = guardrailConfig("linear", { stepWaitSeconds: 120, bakeMinutes: 5, alarmNames: alarms });
    expect(config.BlueGreenUpdatePolicy?.TrafficRoutingConfiguration).toEqual({
      Type: "LINEAR",
      WaitIntervalInSeconds: 120,
      LinearStepSize: { Type: "CAPACITY_PERCENT", Value: 20 },
    });
    expect(config.BlueGreenUpdatePolicy?.MaximumExecutionTimeoutInSeconds).toBe(5 * 120 + 300 + 1800);
  });

  it("all-at-once still gives WaitIntervalInSeconds (the model requires it)", () => {
    const config = guardrailConfig("all-at-once", { stepWaitSeconds: 0, bakeMinutes: 0, alarmNames: [] });
    expect(config.BlueGreenUpdatePolicy?.TrafficRoutingConfiguration).toEqual({
      Type: "ALL_AT_ONCE",
      WaitIntervalInSeconds: 0,
    });
    // No alarms: no AutoRollbackConfiguration (it takes 1-10).
    expect(config.AutoRollbackConfiguration).toBeUndefined();
    // Within the 600-14400 s both AWS and Terraform accept.
    expect(config.BlueGreenUpdatePolicy?.MaximumExecutionTimeoutInSeconds).toBe(1800);
  });

  it("caps the final bake at SageMaker's 3600 s and the timeout at 14400 s", () => {
    const config = guardrailConfig("linear", {
      stepWaitSeconds: 3600,
      bakeMinutes: 1440,
      alarmNames: alarms,
    });
    expect(config.BlueGreenUpdatePolicy?.TerminationWaitInSeconds).toBe(3600);
    expect(config.BlueGreenUpdatePolicy?.MaximumExecutionTimeoutInSeconds).toBe(14_400);
  });
});

describe("task definitions", () => {
  it("sameTaskDefinition ignores tags and key order but not the image", () => {
    const inputs = resolveReleaseInputs(request());
    const derived = deriveTaskDefinition(taskDefinition(), [], inputs);
    const candidate = registrationOf({ ...taskDefinition(IMAGE), revision: 9 });
    expect(sameTaskDefinition(derived, { ...candidate, tags: [{ key: "x", value: "y" }] })).toBe(true);
    expect(sameTaskDefinition(derived, registrationOf(taskDefinition()))).toBe(false);
  });

  it("blueGreenConfiguration turns off alarm monitoring when every alarm is excused", () => {
    const config = blueGreenConfiguration(undefined, {
      bakeMinutes: 0,
      alarmNames: [],
      hook: {
        functionArn: SMOKE_ARN,
        roleArn: HOOK_ROLE,
        hookDetails: { targetUrl: TEST_URL, releaseId: "r" },
      },
    });
    expect(config.alarms).toEqual({ alarmNames: [], enable: false, rollback: true });
  });
});

describe("the smoke hook keeps what the stack set", () => {
  it("blueGreenConfiguration carries the service's hook timeout over to the release's hook", () => {
    const config = blueGreenConfiguration(
      {
        strategy: "BLUE_GREEN",
        bakeTimeInMinutes: 5,
        lifecycleHooks: [
          {
            hookTargetArn: SMOKE_ARN,
            roleArn: HOOK_ROLE,
            lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT"],
            timeoutConfiguration: { timeoutInMinutes: 5, action: "ROLLBACK" },
          },
        ],
      },
      {
        bakeMinutes: 1,
        alarmNames: ["a"],
        hook: {
          functionArn: SMOKE_ARN,
          roleArn: HOOK_ROLE,
          hookDetails: { targetUrl: TEST_URL, releaseId: "r" },
        },
      },
    );
    expect(config.lifecycleHooks).toHaveLength(1);
    expect(config.lifecycleHooks?.[0]).toMatchObject({
      hookTargetArn: SMOKE_ARN,
      timeoutConfiguration: { timeoutInMinutes: 5, action: "ROLLBACK" },
      hookDetails: { targetUrl: TEST_URL, releaseId: "r" },
    });
  });
});

describe("renderPlan", () => {
  it("prints the live state with - and the desired with +, then the steps", () => {
    const text = renderPlan(
      planRelease(observed(), resolveReleaseInputs(request({ bakeMinutes: 15 })), "r1"),
    );
    expect(text).toContain(`task definition ${OLD_TD} -> a new revision (register)`);
    expect(text).toContain(`  - image ${OLD_IMAGE}`);
    expect(text).toContain(`  + image ${IMAGE}`);
    expect(text).toContain("  - bake 5 min");
    expect(text).toContain("  + bake 15 min");
    expect(text).toContain("  - endpoint config astrolens-staging-inference-000000000000-cccccccccccc");
    expect(text).toContain(
      "  + endpoint config astrolens-staging-inference-aaaaaaaaaaaa-bbbbbbbbbbbb (create)",
    );
    expect(text).toContain("CANARY 10%, wait 600 s per step, final bake 900 s");
    expect(text).toContain(`OK                ${resources.alarms.albTarget5xxRate}`);
    expect(text).toContain("4. [ecs] blue/green deployment of astrolens-staging-inference, bake 15 min");
    // The hook line names what the smoke test checks, not the per-release id.
    expect(text).toContain(`(target ${TEST_URL}, model 2.0.0 bbbbbbbbbbbb)`);
    expect(text).not.toContain("Blocked:");
  });

  it("lists what blocks the release", () => {
    const text = renderPlan(
      planRelease(
        observed({ sagemaker: { endpointStatus: "Updating" } }),
        resolveReleaseInputs(request()),
        "r1",
      ),
    );
    expect(text).toContain("Blocked:\n  - SageMaker endpoint astrolens-staging-inference is Updating");
  });
});
