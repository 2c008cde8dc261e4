import {
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DeleteEndpointConfigCommand,
  DeleteModelCommand,
  DescribeEndpointCommand,
  type DescribeEndpointCommandOutput,
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  SageMakerClient,
  UpdateEndpointCommand,
} from "@aws-sdk/client-sagemaker";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import type { SmokeContract } from "../../infra/lambda/smoke-test/src/types.js";
import { guardrailConfig, planRelease, resolveReleaseInputs } from "../../src/deploy/plan.js";
import {
  checkSageMakerDeployment,
  judgeEndpoint,
  observeSageMaker,
  prepareSageMakerRelease,
  rollbackSageMaker,
  startSageMakerDeployment,
} from "../../src/deploy/sagemaker.js";
import { ConfigurationError } from "../../src/errors.js";

const smMock = mockClient(SageMakerClient);
const sm = new SageMakerClient({ region: "us-east-1" });

const REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const IMAGE = `${REGISTRY}/astrolens-staging/inference@sha256:${"a".repeat(64)}`;
const OLD_IMAGE = `${REGISTRY}/astrolens-staging/inference@sha256:${"0".repeat(64)}`;
const ENDPOINT = "astrolens-staging-inference";
const OLD = "astrolens-staging-inference-000000000000-cccccccccccc";
const NEW = "astrolens-staging-inference-aaaaaaaaaaaa-bbbbbbbbbbbb";
const REQUESTED_AT = Date.parse("2026-11-26T10:00:00Z");
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

function validation(message: string) {
  return Object.assign(new Error(message), {
    name: "ValidationException",
    $metadata: { httpStatusCode: 400 },
  });
}

function endpoint(overrides: Partial<DescribeEndpointCommandOutput> = {}): DescribeEndpointCommandOutput {
  return {
    $metadata: {},
    EndpointName: ENDPOINT,
    EndpointArn: `arn:aws:sagemaker:us-east-1:123456789012:endpoint/${ENDPOINT}`,
    EndpointConfigName: OLD,
    EndpointStatus: "InService",
    CreationTime: new Date("2026-01-01T00:00:00Z"),
    LastModifiedTime: new Date("2026-11-01T00:00:00Z"),
    ...overrides,
  };
}

const updating = (message: string, status = "Baking") =>
  endpoint({
    EndpointStatus: "Updating",
    LastModifiedTime: new Date(REQUESTED_AT + 1000),
    PendingDeploymentSummary: {
      EndpointConfigName: NEW,
      ProductionVariants: [
        {
          VariantName: "AllTraffic",
          VariantStatus: [{ Status: status as "Baking", StatusMessage: message }],
        },
      ],
    },
  });

beforeEach(() => smMock.reset());

function mockCurrent() {
  smMock.on(DescribeEndpointCommand).resolves(endpoint());
  smMock.on(DescribeEndpointConfigCommand, { EndpointConfigName: OLD }).resolves({
    EndpointConfigName: OLD,
    ProductionVariants: [
      { VariantName: "AllTraffic", ModelName: OLD, InitialInstanceCount: 2, InstanceType: "ml.m5.large" },
    ],
  });
  smMock.on(DescribeModelCommand, { ModelName: OLD }).resolves({
    ModelName: OLD,
    ExecutionRoleArn: "arn:aws:iam::123456789012:role/sm",
    PrimaryContainer: { Image: OLD_IMAGE },
  });
  smMock
    .on(DescribeModelCommand, { ModelName: NEW })
    .rejects(validation(`Could not find model "arn:…/${NEW}".`));
  smMock
    .on(DescribeEndpointConfigCommand, { EndpointConfigName: NEW })
    .rejects(validation(`Could not find endpoint configuration "arn:…/${NEW}".`));
}

describe("observeSageMaker", () => {
  it("reads the endpoint, its config and model, and whether this release's exist", async () => {
    mockCurrent();
    const observed = await observeSageMaker(sm, inputs);
    expect(observed).toMatchObject({
      endpointName: ENDPOINT,
      endpointStatus: "InService",
      endpointConfigName: OLD,
      model: { ModelName: OLD, PrimaryContainer: { Image: OLD_IMAGE } },
    });
    expect(observed.existingModel).toBeUndefined();
    expect(observed.existingEndpointConfig).toBeUndefined();
  });

  it("finds the model and config a previous run created", async () => {
    mockCurrent();
    smMock
      .on(DescribeModelCommand, { ModelName: NEW })
      .resolves({ ModelName: NEW, PrimaryContainer: { Image: IMAGE } });
    smMock.on(DescribeEndpointConfigCommand, { EndpointConfigName: NEW }).resolves({
      EndpointConfigName: NEW,
      ProductionVariants: [{ VariantName: "AllTraffic", ModelName: NEW }],
    });
    const observed = await observeSageMaker(sm, inputs);
    expect(observed.existingModel).toEqual({ image: IMAGE });
    expect(observed.existingEndpointConfig).toEqual({ modelNames: [NEW] });
  });

  it("refuses a missing endpoint, naming it", async () => {
    smMock.on(DescribeEndpointCommand).rejects(validation(`Could not find endpoint "arn:…/${ENDPOINT}".`));
    const err = await observeSageMaker(sm, inputs).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigurationError);
    expect(err.message).toContain(
      `SageMaker endpoint ${ENDPOINT} does not exist: deploy the environment's stack first`,
    );
  });
});

describe("preparing and starting the update", () => {
  async function plan() {
    mockCurrent();
    const observed = await observeSageMaker(sm, inputs);
    return planRelease(
      {
        ecs: {
          serviceArn: "s",
          deploymentController: "ECS",
          taskDefinition: {
            taskDefinitionArn: "td",
            containerDefinitions: [{ name: "inference", image: OLD_IMAGE }],
          },
          taskDefinitionTags: [],
        },
        sagemaker: observed,
        alarms: [],
        smokeFunctionArn: "fn",
      },
      inputs,
      "r1",
    ).sagemaker;
  }

  it("creates the model and the config named by digest + model hash", async () => {
    const p = await plan();
    smMock.on(CreateModelCommand).resolves({ ModelArn: "m" });
    smMock.on(CreateEndpointConfigCommand).resolves({ EndpointConfigArn: "c" });
    expect(await prepareSageMakerRelease(sm, p)).toEqual({ model: "created", endpointConfig: "created" });
    expect(smMock.commandCalls(CreateModelCommand)[0]?.args[0].input).toMatchObject({
      ModelName: NEW,
      ExecutionRoleArn: "arn:aws:iam::123456789012:role/sm",
      PrimaryContainer: { Image: IMAGE },
    });
    expect(smMock.commandCalls(CreateEndpointConfigCommand)[0]?.args[0].input).toMatchObject({
      EndpointConfigName: NEW,
      ProductionVariants: [
        { VariantName: "AllTraffic", ModelName: NEW, InitialInstanceCount: 2, InstanceType: "ml.m5.large" },
      ],
    });
  });

  it("counts a model another run created a moment ago as reused", async () => {
    const p = await plan();
    smMock.on(CreateModelCommand).rejects(validation(`Cannot create already existing model "arn:…/${NEW}".`));
    smMock.on(CreateEndpointConfigCommand).resolves({ EndpointConfigArn: "c" });
    expect(await prepareSageMakerRelease(sm, p)).toEqual({ model: "reused", endpointConfig: "created" });
  });

  it("calls UpdateEndpoint with the blue/green policy and the auto-rollback alarms", async () => {
    const config = guardrailConfig("canary", { stepWaitSeconds: 60, bakeMinutes: 10, alarmNames: ["a"] });
    smMock.on(UpdateEndpointCommand).resolves({ EndpointArn: "e" });
    await startSageMakerDeployment(sm, ENDPOINT, NEW, config);
    expect(smMock.commandCalls(UpdateEndpointCommand)[0]?.args[0].input).toEqual({
      EndpointName: ENDPOINT,
      EndpointConfigName: NEW,
      DeploymentConfig: {
        BlueGreenUpdatePolicy: {
          TrafficRoutingConfiguration: {
            Type: "CANARY",
            WaitIntervalInSeconds: 60,
            CanarySize: { Type: "CAPACITY_PERCENT", Value: 10 },
          },
          TerminationWaitInSeconds: 600,
          MaximumExecutionTimeoutInSeconds: 2460,
        },
        AutoRollbackConfiguration: { Alarms: [{ AlarmName: "a" }] },
      },
    });
  });

  it("reports SageMaker's in-progress refusal with context", async () => {
    smMock
      .on(UpdateEndpointCommand)
      .rejects(validation(`Cannot update in-progress endpoint "arn:…/${ENDPOINT}".`));
    await expect(startSageMakerDeployment(sm, ENDPOINT, NEW, {})).rejects.toThrow(
      `updating SageMaker endpoint ${ENDPOINT} to ${NEW}: Cannot update in-progress endpoint`,
    );
  });
});

describe("judging the update (B3: not the waiter)", () => {
  it("succeeds only on InService, the requested config, nothing pending", () => {
    expect(
      judgeEndpoint(
        endpoint({ EndpointConfigName: NEW, LastModifiedTime: new Date(REQUESTED_AT + 5000) }),
        NEW,
        REQUESTED_AT,
      ),
    ).toMatchObject({
      phase: "succeeded",
      fullTraffic: true,
    });
  });

  it("calls InService on the old config after the request a failure: the silent rollback, with FailureReason", () => {
    const judged = judgeEndpoint(
      endpoint({
        EndpointConfigName: OLD,
        LastModifiedTime: new Date(REQUESTED_AT + 600_000),
        FailureReason: " Failed to download model data for container from URL",
      }),
      NEW,
      REQUESTED_AT,
    );
    expect(judged.phase).toBe("failed");
    expect(judged.reason).toBe(
      `SageMaker rolled the update back on its own: endpoint is InService on ${OLD}, not on ${NEW} (FailureReason: Failed to download model data for container from URL)`,
    );
  });

  it("calls it a silent rollback even when FailureReason is empty", () => {
    const judged = judgeEndpoint(
      endpoint({ LastModifiedTime: new Date(REQUESTED_AT + 1), FailureReason: "" }),
      NEW,
      REQUESTED_AT,
    );
    expect(judged.phase).toBe("failed");
    expect(judged.reason).toContain("(no FailureReason given)");
  });

  it("fails an InService endpoint with a deployment still pending", () => {
    const judged = judgeEndpoint(
      endpoint({ EndpointConfigName: NEW, PendingDeploymentSummary: { EndpointConfigName: NEW } }),
      NEW,
      REQUESTED_AT,
    );
    expect(judged.phase).toBe("failed");
    expect(judged.reason).toContain(`with a deployment to ${NEW} still pending`);
  });

  it("calls RollingBack toward the requested config a failure at once, without waiting for the end", () => {
    const judged = judgeEndpoint(
      endpoint({
        EndpointStatus: "RollingBack",
        PendingDeploymentSummary: { EndpointConfigName: NEW },
        FailureReason: "Alarm a in ALARM",
      }),
      NEW,
      REQUESTED_AT,
    );
    expect(judged.phase).toBe("failed");
    expect(judged.reason).toBe(
      `SageMaker is rolling the update to ${NEW} back on its own (FailureReason: Alarm a in ALARM)`,
    );
  });

  it("is not-started while the endpoint shows no change since the request", () => {
    expect(judgeEndpoint(endpoint(), NEW, REQUESTED_AT).phase).toBe("not-started");
  });

  it("once the update was seen running, back on the old config is a rollback whatever LastModifiedTime says", () => {
    const judged = judgeEndpoint(endpoint({ FailureReason: "alarm" }), NEW, REQUESTED_AT, true);
    expect(judged.phase).toBe("failed");
    expect(judged.reason).toContain("SageMaker rolled the update back on its own");
  });

  it("follows Updating, and sees the final bake (full traffic on green) by its message", () => {
    const canary = judgeEndpoint(
      updating("Activating traffic on canary capacity of 1 instance(s).", "ActivatingTraffic"),
      NEW,
      REQUESTED_AT,
    );
    expect(canary).toMatchObject({ phase: "updating", fullTraffic: false, pendingEndpointConfigName: NEW });
    const bake = judgeEndpoint(
      updating(
        "Baking for 600 seconds (TerminationWaitInSeconds) with traffic enabled on full capacity of 2 instance(s).",
      ),
      NEW,
      REQUESTED_AT,
    );
    expect(bake.fullTraffic).toBe(true);
    expect(bake.variantStatus).toEqual([
      "AllTraffic: Baking Baking for 600 seconds (TerminationWaitInSeconds) with traffic enabled on full capacity of 2 instance(s).",
    ]);
  });

  it.each(["Failed", "UpdateRollbackFailed", "OutOfService"])(
    "fails on %s with the FailureReason",
    (status) => {
      const judged = judgeEndpoint(
        endpoint({ EndpointStatus: status as "Failed", FailureReason: "capacity" }),
        NEW,
        REQUESTED_AT,
      );
      expect(judged.phase).toBe("failed");
      expect(judged.reason).toContain(`SageMaker endpoint is ${status} on ${OLD}`);
      expect(judged.reason).toContain("(FailureReason: capacity)");
    },
  );

  it("checkSageMakerDeployment reads the endpoint through DescribeEndpoint", async () => {
    smMock.on(DescribeEndpointCommand).resolves(endpoint({ EndpointConfigName: NEW }));
    expect((await checkSageMakerDeployment(sm, ENDPOINT, NEW, REQUESTED_AT)).phase).toBe("succeeded");
  });
});

describe("rollbackSageMaker", () => {
  it("waits while the endpoint is updating (UpdateEndpoint would be refused)", async () => {
    smMock.on(DescribeEndpointCommand).resolves(updating("Launching 2 instance(s).", "Creating"));
    expect(await rollbackSageMaker(sm, ENDPOINT, OLD)).toBe("busy");
    expect(smMock.commandCalls(UpdateEndpointCommand)).toHaveLength(0);
  });

  it("does nothing when SageMaker already rolled back on its own", async () => {
    smMock.on(DescribeEndpointCommand).resolves(endpoint({ EndpointConfigName: OLD }));
    expect(await rollbackSageMaker(sm, ENDPOINT, OLD)).toBe("unchanged");
    expect(smMock.commandCalls(UpdateEndpointCommand)).toHaveLength(0);
  });

  it("updates back to the previous config, all at once, without alarms, and deletes nothing", async () => {
    smMock.on(DescribeEndpointCommand).resolves(endpoint({ EndpointConfigName: NEW }));
    smMock.on(UpdateEndpointCommand).resolves({ EndpointArn: "e" });
    expect(await rollbackSageMaker(sm, ENDPOINT, OLD)).toBe("requested");
    expect(smMock.commandCalls(UpdateEndpointCommand)[0]?.args[0].input).toEqual({
      EndpointName: ENDPOINT,
      EndpointConfigName: OLD,
      DeploymentConfig: {
        BlueGreenUpdatePolicy: {
          TrafficRoutingConfiguration: { Type: "ALL_AT_ONCE", WaitIntervalInSeconds: 0 },
          TerminationWaitInSeconds: 0,
        },
      },
    });
    expect(smMock.commandCalls(DeleteEndpointConfigCommand)).toHaveLength(0);
    expect(smMock.commandCalls(DeleteModelCommand)).toHaveLength(0);
  });

  it("treats an in-progress refusal (a race with a new update) as busy", async () => {
    smMock.on(DescribeEndpointCommand).resolves(endpoint({ EndpointConfigName: NEW }));
    smMock.on(UpdateEndpointCommand).rejects(validation(`Cannot update in-progress endpoint "arn:…".`));
    expect(await rollbackSageMaker(sm, ENDPOINT, OLD)).toBe("busy");
  });
});
