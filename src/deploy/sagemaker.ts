import {
  CreateEndpointConfigCommand,
  CreateModelCommand,
  type DeploymentConfig,
  DescribeEndpointCommand,
  type DescribeEndpointCommandOutput,
  DescribeEndpointConfigCommand,
  type DescribeEndpointConfigCommandOutput,
  DescribeModelCommand,
  type DescribeModelCommandOutput,
  type SageMakerClient,
  UpdateEndpointCommand,
} from "@aws-sdk/client-sagemaker";
import { awsErrorName } from "../aws/clients.js";
import { ConfigurationError, errorMessage, withContext } from "../errors.js";
import {
  type ObservedSageMaker,
  type ReleaseInputs,
  type SageMakerPlan,
  sageMakerReleaseName,
} from "./plan.js";

/**
 * The SageMaker side of a release: UpdateEndpoint with deployment guardrails does the
 * blue/green shift, the bakes and the alarm rollback; this module prepares the model
 * and endpoint config, starts the update, and judges its end by what the endpoint
 * reports — not by the SDK's waiter, which calls a rolled-back update a success
 * (AWS-BEHAVIOUR.md B3). Old endpoint configs are never deleted: they are the way back.
 */

/** Statuses in which the endpoint is still moving (B3). */
const MOVING = ["Creating", "Updating", "SystemUpdating", "RollingBack"];

/** Reads the endpoint, its config and model, and whether this release's model and config exist. */
export async function observeSageMaker(
  sm: SageMakerClient,
  inputs: ReleaseInputs,
): Promise<ObservedSageMaker> {
  const endpointName = inputs.resources.endpoint;
  const endpoint = await describeEndpoint(sm, endpointName);
  if (!endpoint) {
    throw new ConfigurationError(
      `SageMaker endpoint ${endpointName} does not exist: deploy the environment's stack first (the environment contract names the endpoint ${endpointName}), or check the environment name`,
    );
  }
  const configName = endpoint.EndpointConfigName ?? "";
  const config = await describeEndpointConfig(sm, configName);
  if (!config)
    throw new Error(`endpoint ${endpointName} names endpoint config ${configName}, which does not exist`);
  const modelName = config.ProductionVariants?.[0]?.ModelName ?? "";
  const model = await describeModel(sm, modelName);
  if (!model) throw new Error(`endpoint config ${configName} names model ${modelName}, which does not exist`);

  const desired = sageMakerReleaseName(inputs.resources, inputs.digest, inputs.model);
  const [existingModel, existingConfig] = await Promise.all([
    describeModel(sm, desired),
    describeEndpointConfig(sm, desired),
  ]);
  return {
    endpointName,
    endpointStatus: endpoint.EndpointStatus ?? "Unknown",
    endpointConfigName: configName,
    ...(endpoint.PendingDeploymentSummary?.EndpointConfigName
      ? { pendingEndpointConfigName: endpoint.PendingDeploymentSummary.EndpointConfigName }
      : {}),
    ...(endpoint.FailureReason ? { failureReason: endpoint.FailureReason } : {}),
    endpointConfig: config,
    model,
    ...(existingModel
      ? {
          existingModel: {
            image: (existingModel.PrimaryContainer ?? existingModel.Containers?.[0])?.Image ?? "",
          },
        }
      : {}),
    ...(existingConfig
      ? {
          existingEndpointConfig: {
            modelNames: (existingConfig.ProductionVariants ?? []).map((v) => v.ModelName ?? ""),
          },
        }
      : {}),
  };
}

/** SageMaker answers "does not exist" with a ValidationException whose text says so (B5). */
function isNotFound(err: unknown): boolean {
  return (
    awsErrorName(err) === "ValidationException" && /could not find|does not exist/i.test(errorMessage(err))
  );
}

export async function describeEndpoint(
  sm: SageMakerClient,
  name: string,
): Promise<DescribeEndpointCommandOutput | undefined> {
  try {
    return await sm.send(new DescribeEndpointCommand({ EndpointName: name }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw withContext(`describing SageMaker endpoint ${name}`, err);
  }
}

async function describeEndpointConfig(
  sm: SageMakerClient,
  name: string,
): Promise<DescribeEndpointConfigCommandOutput | undefined> {
  try {
    return await sm.send(new DescribeEndpointConfigCommand({ EndpointConfigName: name }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw withContext(`describing SageMaker endpoint config ${name}`, err);
  }
}

async function describeModel(
  sm: SageMakerClient,
  name: string,
): Promise<DescribeModelCommandOutput | undefined> {
  try {
    return await sm.send(new DescribeModelCommand({ ModelName: name }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw withContext(`describing SageMaker model ${name}`, err);
  }
}

/**
 * Creates the release's model and endpoint config, or keeps the ones a previous run of
 * the same image + model created (same name = same inputs). Another run creating them
 * at the same moment is fine too.
 */
export async function prepareSageMakerRelease(
  sm: SageMakerClient,
  plan: SageMakerPlan,
): Promise<{ model: "created" | "reused"; endpointConfig: "created" | "reused" }> {
  const model =
    plan.model.action === "reuse"
      ? "reused"
      : await createOnce(
          () => sm.send(new CreateModelCommand(plan.model.input)),
          `creating SageMaker model ${plan.desired.modelName}`,
        );
  const endpointConfig =
    plan.endpointConfig.action === "reuse"
      ? "reused"
      : await createOnce(
          () => sm.send(new CreateEndpointConfigCommand(plan.endpointConfig.input)),
          `creating SageMaker endpoint config ${plan.desired.endpointConfigName}`,
        );
  return { model, endpointConfig };
}

async function createOnce(create: () => Promise<unknown>, context: string): Promise<"created" | "reused"> {
  try {
    await create();
    return "created";
  } catch (err) {
    if (awsErrorName(err) === "ValidationException" && /already exist/i.test(errorMessage(err)))
      return "reused";
    throw withContext(context, err);
  }
}

/** Starts the blue/green update to the release's endpoint config, with its guardrails. */
export async function startSageMakerDeployment(
  sm: SageMakerClient,
  endpointName: string,
  configName: string,
  deploymentConfig: DeploymentConfig,
): Promise<void> {
  try {
    await sm.send(
      new UpdateEndpointCommand({
        EndpointName: endpointName,
        EndpointConfigName: configName,
        DeploymentConfig: deploymentConfig,
      }),
    );
  } catch (err) {
    throw withContext(`updating SageMaker endpoint ${endpointName} to ${configName}`, err);
  }
}

export interface SageMakerProgress {
  status: string;
  /**
   * not-started: InService on another config and unchanged since the request (the
   * update is not visible yet, or was never accepted); updating; succeeded: InService on
   * the requested config with nothing pending; failed: anything else once it stopped
   * moving — including the silent rollback.
   */
  phase: "not-started" | "updating" | "succeeded" | "failed";
  endpointConfigName: string;
  pendingEndpointConfigName?: string;
  /** Green takes all of the endpoint's traffic (the final bake, or done). */
  fullTraffic: boolean;
  /** The variants' status messages while updating ("Baking for 600 seconds …"). */
  variantStatus: string[];
  reason?: string;
}

/**
 * One look at an update toward `requestedConfig` requested at `requestedAt` (ms).
 * Success is InService AND the requested config AND no pending deployment; an endpoint
 * that stopped moving any other way failed, with SageMaker's FailureReason.
 */
export async function checkSageMakerDeployment(
  sm: SageMakerClient,
  endpointName: string,
  requestedConfig: string,
  requestedAt: number,
  seenUpdating = false,
): Promise<SageMakerProgress> {
  const endpoint = await describeEndpoint(sm, endpointName);
  if (!endpoint) throw new Error(`SageMaker endpoint ${endpointName} disappeared during the release`);
  return judgeEndpoint(endpoint, requestedConfig, requestedAt, seenUpdating);
}

/**
 * The judgement of {@link checkSageMakerDeployment}, on a DescribeEndpoint answer (pure).
 * `seenUpdating`: the caller saw this update running, so an endpoint back on another
 * config has rolled back, whatever LastModifiedTime says.
 */
export function judgeEndpoint(
  endpoint: Pick<
    DescribeEndpointCommandOutput,
    | "EndpointStatus"
    | "EndpointConfigName"
    | "PendingDeploymentSummary"
    | "FailureReason"
    | "LastModifiedTime"
  >,
  requestedConfig: string,
  requestedAt: number,
  seenUpdating = false,
): SageMakerProgress {
  const status = endpoint.EndpointStatus ?? "Unknown";
  const current = endpoint.EndpointConfigName ?? "";
  const pending = endpoint.PendingDeploymentSummary;
  const variantStatus = (pending?.ProductionVariants ?? []).flatMap((v) =>
    (v.VariantStatus ?? []).map(
      (s) => `${v.VariantName}: ${s.Status}${s.StatusMessage ? ` ${s.StatusMessage}` : ""}`,
    ),
  );
  const base = {
    status,
    endpointConfigName: current,
    ...(pending?.EndpointConfigName ? { pendingEndpointConfigName: pending.EndpointConfigName } : {}),
    variantStatus,
  };
  if (status === "RollingBack" && pending?.EndpointConfigName === requestedConfig) {
    // Where SageMaker says so (Terraform and ACK poll for it), the update has already
    // failed: the other target need not wait for the rollback to finish to start its own.
    return {
      ...base,
      phase: "failed",
      fullTraffic: false,
      reason: `SageMaker is rolling the update to ${requestedConfig} back on its own${endpoint.FailureReason?.trim() ? ` (FailureReason: ${endpoint.FailureReason.trim()})` : ""}`,
    };
  }
  if (MOVING.includes(status)) {
    // The final bake's message names TerminationWaitInSeconds and "full capacity" ([eb]).
    const fullTraffic =
      pending?.EndpointConfigName === requestedConfig &&
      variantStatus.some((m) => /TerminationWaitInSeconds|full capacity/i.test(m));
    return { ...base, phase: "updating", fullTraffic };
  }
  const failure = endpoint.FailureReason?.trim();
  if (status === "InService" && current === requestedConfig && !pending) {
    return { ...base, phase: "succeeded", fullTraffic: true };
  }
  if (status === "InService" && current !== requestedConfig && !pending) {
    const modified = endpoint.LastModifiedTime?.getTime() ?? 0;
    if (modified < requestedAt && !seenUpdating) return { ...base, phase: "not-started", fullTraffic: false };
    return {
      ...base,
      phase: "failed",
      fullTraffic: false,
      reason: `SageMaker rolled the update back on its own: endpoint ${current ? `is InService on ${current}` : "is InService"}, not on ${requestedConfig}${failure ? ` (FailureReason: ${failure})` : " (no FailureReason given)"}`,
    };
  }
  return {
    ...base,
    phase: "failed",
    fullTraffic: false,
    reason: `SageMaker endpoint is ${status} on ${current || "no config"}${pending ? ` with a deployment to ${pending.EndpointConfigName} still pending` : ""}${failure ? ` (FailureReason: ${failure})` : ""}`,
  };
}

/**
 * Returns the endpoint to `previousConfig`. UpdateEndpoint is refused while an update
 * runs (B5), so "busy" means: ask again once it stops moving — by then SageMaker has
 * often rolled back on its own (every release alarm is an auto-rollback alarm). The
 * update back has no alarms: the alarm behind the rollback may still be in ALARM.
 */
export async function rollbackSageMaker(
  sm: SageMakerClient,
  endpointName: string,
  previousConfig: string,
): Promise<"requested" | "unchanged" | "busy"> {
  const endpoint = await describeEndpoint(sm, endpointName);
  if (!endpoint) throw new Error(`SageMaker endpoint ${endpointName} disappeared during the release`);
  const status = endpoint.EndpointStatus ?? "Unknown";
  if (MOVING.includes(status)) return "busy";
  if (
    status === "InService" &&
    endpoint.EndpointConfigName === previousConfig &&
    !endpoint.PendingDeploymentSummary
  ) {
    return "unchanged";
  }
  if (status !== "InService") {
    throw new Error(
      `SageMaker endpoint ${endpointName} is ${status}${endpoint.FailureReason ? ` (${endpoint.FailureReason})` : ""} and cannot be updated back to ${previousConfig}; it needs attention`,
    );
  }
  try {
    await sm.send(
      new UpdateEndpointCommand({
        EndpointName: endpointName,
        EndpointConfigName: previousConfig,
        DeploymentConfig: {
          BlueGreenUpdatePolicy: {
            TrafficRoutingConfiguration: { Type: "ALL_AT_ONCE", WaitIntervalInSeconds: 0 },
            TerminationWaitInSeconds: 0,
          },
        },
      }),
    );
    return "requested";
  } catch (err) {
    if (awsErrorName(err) === "ValidationException" && /in-progress|in progress/i.test(errorMessage(err))) {
      return "busy";
    }
    throw withContext(`updating SageMaker endpoint ${endpointName} back to ${previousConfig}`, err);
  }
}
