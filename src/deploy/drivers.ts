import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ECRClient } from "@aws-sdk/client-ecr";
import { type DeploymentConfiguration, ECSClient } from "@aws-sdk/client-ecs";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { type DeploymentConfig, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { SmokeInvocation, SmokeVerdict } from "../../infra/lambda/smoke-test/src/types.js";
import { type AwsOptions, awsErrorName, createClient } from "../aws/clients.js";
import type { EnvironmentResources } from "../environment.js";
import { ConfigurationError } from "../errors.js";
import { findImageByDigest } from "../image/ecr.js";
import {
  checkEcsDeployment,
  checkEcsRollback,
  type EcsProgress,
  type EcsRollbackHandle,
  findEcsDeploymentSince,
  observeEcs,
  type RollbackProgress,
  registerTaskDefinition,
  restoreEcsConfiguration,
  rollbackEcs,
  startEcsDeployment,
} from "./ecs.js";
import { createDynamoLedger, type LedgerStore } from "./ledger.js";
import type {
  EcsPlan,
  ObservedAlarm,
  ObservedEcs,
  ObservedSageMaker,
  ObservedState,
  ReleaseInputs,
  SageMakerPlan,
} from "./plan.js";
import {
  checkSageMakerDeployment,
  observeSageMaker,
  prepareSageMakerRelease,
  rollbackSageMaker,
  type SageMakerProgress,
  startSageMakerDeployment,
} from "./sagemaker.js";
import { invokeSmokeTest, resolveSmokeFunction } from "./smoke.js";
import { describeAlarms } from "./watch.js";

/**
 * The edges the coordinator drives, one small interface per target, bound to one
 * environment. The coordinator only sees these, so its tests use typed fakes and the
 * AWS-facing modules are tested on their own with SDK mocks.
 */

export interface ImageDriver {
  exists(repository: string, digest: string): Promise<boolean>;
}

export interface EcsDriver {
  observe(inputs: ReleaseInputs): Promise<ObservedEcs>;
  register(plan: EcsPlan): Promise<{ arn: string; reused: boolean }>;
  deploy(
    taskDefinitionArn: string,
    configuration: DeploymentConfiguration,
    requestedAt: Date,
  ): Promise<string>;
  findDeploymentSince(since: Date): Promise<string | undefined>;
  check(deploymentArn: string, smokeFunctionArn: string): Promise<EcsProgress>;
  rollback(options: {
    deploymentArn?: string;
    previousTaskDefinitionArn: string;
    smokeFunctionArn: string;
  }): Promise<EcsRollbackHandle>;
  checkRollback(handle: EcsRollbackHandle, smokeFunctionArn: string): Promise<RollbackProgress>;
  /** Puts a deployment configuration back, starting no deployment. */
  restoreConfiguration(configuration: DeploymentConfiguration): Promise<void>;
}

export interface SageMakerDriver {
  observe(inputs: ReleaseInputs): Promise<ObservedSageMaker>;
  prepare(
    plan: SageMakerPlan,
  ): Promise<{ model: "created" | "reused"; endpointConfig: "created" | "reused" }>;
  deploy(endpointConfigName: string, deploymentConfig: DeploymentConfig): Promise<void>;
  /** `seenUpdating`: the caller saw the update running (see judgeEndpoint). */
  check(endpointConfigName: string, requestedAt: number, seenUpdating?: boolean): Promise<SageMakerProgress>;
  rollback(previousEndpointConfigName: string): Promise<"requested" | "unchanged" | "busy">;
}

export interface AlarmDriver {
  describe(names: string[]): Promise<ObservedAlarm[]>;
}

export interface SmokeDriver {
  /** The function's ARN; ConfigurationError when it does not exist. */
  resolve(functionName: string): Promise<string>;
  invoke(functionArn: string, invocation: SmokeInvocation): Promise<SmokeVerdict>;
}

export interface ReleaseDrivers {
  images: ImageDriver;
  ecs: EcsDriver;
  sagemaker: SageMakerDriver;
  alarms: AlarmDriver;
  smoke: SmokeDriver;
  ledger: LedgerStore;
}

/** The drivers over the AWS SDK, every client from createClient (region, endpoint, retries). */
export function createAwsDrivers(resources: EnvironmentResources, aws: AwsOptions = {}): ReleaseDrivers {
  const ecr = createClient(ECRClient, aws);
  const ecs = createClient(ECSClient, aws);
  const elb = createClient(ElasticLoadBalancingV2Client, aws);
  const sm = createClient(SageMakerClient, aws);
  const cloudwatch = createClient(CloudWatchClient, aws);
  const lambda = createClient(LambdaClient, aws);
  const doc = DynamoDBDocumentClient.from(createClient(DynamoDBClient, aws), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const target = { cluster: resources.cluster, service: resources.service };
  return {
    images: {
      async exists(repository, digest) {
        try {
          return (await findImageByDigest(ecr, repository, digest)) !== undefined;
        } catch (err) {
          if (awsErrorName(err) === "RepositoryNotFoundException") return false;
          throw err;
        }
      },
    },
    ecs: {
      observe: (inputs) => observeEcs(ecs, elb, inputs),
      register: (plan) => registerTaskDefinition(ecs, plan),
      deploy: (arn, configuration, requestedAt) =>
        startEcsDeployment(ecs, target, arn, configuration, requestedAt),
      findDeploymentSince: (since) => findEcsDeploymentSince(ecs, target, since),
      check: (arn, smokeFunctionArn) => checkEcsDeployment(ecs, target, arn, smokeFunctionArn),
      rollback: (options) => rollbackEcs(ecs, target, options),
      checkRollback: (handle, smokeFunctionArn) => checkEcsRollback(ecs, target, handle, smokeFunctionArn),
      restoreConfiguration: (configuration) => restoreEcsConfiguration(ecs, target, configuration),
    },
    sagemaker: {
      observe: (inputs) => observeSageMaker(sm, inputs),
      prepare: (plan) => prepareSageMakerRelease(sm, plan),
      deploy: (name, deploymentConfig) =>
        startSageMakerDeployment(sm, resources.endpoint, name, deploymentConfig),
      check: (name, requestedAt, seenUpdating) =>
        checkSageMakerDeployment(sm, resources.endpoint, name, requestedAt, seenUpdating),
      rollback: (previous) => rollbackSageMaker(sm, resources.endpoint, previous),
    },
    alarms: { describe: (names) => describeAlarms(cloudwatch, names) },
    smoke: {
      resolve: (name) => resolveSmokeFunction(lambda, name),
      invoke: (arn, invocation) => invokeSmokeTest(lambda, arn, invocation),
    },
    ledger: createDynamoLedger(doc, resources.ledgerTable),
  };
}

/**
 * Everything the plan needs, read before anything changes. Each input is checked
 * against AWS — the digest is in ECR, the service and endpoint exist, the controller is
 * ECS, the alarms and the smoke function exist — and every problem found is reported
 * at once, as one ConfigurationError naming the inputs.
 */
export async function observeRelease(inputs: ReleaseInputs, drivers: ReleaseDrivers): Promise<ObservedState> {
  const [image, ecs, sagemaker, alarms, smoke] = await Promise.allSettled([
    drivers.images.exists(inputs.repository, inputs.digest),
    drivers.ecs.observe(inputs),
    drivers.sagemaker.observe(inputs),
    drivers.alarms.describe(inputs.alarmNames),
    drivers.smoke.resolve(inputs.smokeFunction),
  ]);
  const problems: string[] = [];
  const bugs: unknown[] = [];
  if (image.status === "fulfilled" && !image.value) {
    problems.push(
      `input "image": ${inputs.imageUri} does not exist in ECR (no image ${inputs.digest} in repository ${inputs.repository}); pass the digest push-image or promote-image reported, for this account and region`,
    );
  }
  for (const result of [image, ecs, sagemaker, alarms, smoke]) {
    if (result.status === "rejected") {
      if (result.reason instanceof ConfigurationError) problems.push(result.reason.message);
      else bugs.push(result.reason);
    }
  }
  if (problems.length > 0) {
    throw new ConfigurationError(`nothing was changed: ${problems.join("; ")}`);
  }
  if (bugs.length > 0) throw bugs[0];
  const value = <T>(r: PromiseSettledResult<T>) => (r as PromiseFulfilledResult<T>).value;
  return {
    ecs: value(ecs),
    sagemaker: value(sagemaker),
    alarms: value(alarms),
    smokeFunctionArn: value(smoke),
  };
}
