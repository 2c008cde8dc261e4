import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { CloudWatchClient, DescribeAlarmsCommand } from "@aws-sdk/client-cloudwatch";
import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DescribeRepositoriesCommand, ECRClient } from "@aws-sdk/client-ecr";
import { DescribeClustersCommand, DescribeServicesCommand, ECSClient } from "@aws-sdk/client-ecs";
import { GetFunctionCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { DescribeEndpointCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { ListTopicsCommand, SNSClient } from "@aws-sdk/client-sns";
import { type AwsOptions, awsErrorName, createClient } from "../aws/clients.js";
import { type EnvironmentResources, releaseAlarms } from "../environment.js";
import { errorMessage } from "../errors.js";

/** One resource a release needs, as the AWS APIs see it now. */
export interface InventoryItem {
  kind: string;
  name: string;
  present: boolean;
  /** Its state when present (service status, endpoint status, alarm state, ...), or why it is missing. */
  detail: string;
}

/**
 * Asks AWS (or the local AWS) for every resource of an environment by the names the
 * naming contract gives; reads only. A missing resource is reported, not thrown, so
 * `status` shows the whole picture at once.
 */
export async function inspectEnvironment(
  resources: EnvironmentResources,
  aws: AwsOptions = {},
): Promise<InventoryItem[]> {
  const checks: Array<Promise<InventoryItem[]>> = [
    one("stack", resources.stackName, async () => {
      const out = await createClient(CloudFormationClient, aws).send(
        new DescribeStacksCommand({ StackName: resources.stackName }),
      );
      return out.Stacks?.[0]?.StackStatus;
    }),
    one("ecr repository", resources.ecrRepository, async () => {
      const out = await createClient(ECRClient, aws).send(
        new DescribeRepositoriesCommand({ repositoryNames: [resources.ecrRepository] }),
      );
      const repo = out.repositories?.[0];
      return repo ? `tags ${repo.imageTagMutability ?? "?"}` : undefined;
    }),
    one("ecs cluster", resources.cluster, async () => {
      const out = await createClient(ECSClient, aws).send(
        new DescribeClustersCommand({ clusters: [resources.cluster] }),
      );
      const cluster = out.clusters?.find((c) => c.status !== "INACTIVE");
      return cluster?.status;
    }),
    one("ecs service", resources.service, async () => {
      const out = await createClient(ECSClient, aws).send(
        new DescribeServicesCommand({ cluster: resources.cluster, services: [resources.service] }),
      );
      const service = out.services?.find((s) => s.status !== "INACTIVE");
      if (!service) return undefined;
      const strategy = service.deploymentConfiguration?.strategy ?? "ROLLING";
      return `${service.status}, ${strategy}, ${service.taskDefinition?.split("/").pop() ?? "no task definition"}`;
    }),
    one("sagemaker endpoint", resources.endpoint, async () => {
      const out = await createClient(SageMakerClient, aws).send(
        new DescribeEndpointCommand({ EndpointName: resources.endpoint }),
      );
      return `${out.EndpointStatus}, ${out.EndpointConfigName}`;
    }),
    one("smoke-test lambda", resources.smokeFunction, async () => {
      const out = await createClient(LambdaClient, aws).send(
        new GetFunctionCommand({ FunctionName: resources.smokeFunction }),
      );
      return `${out.Configuration?.Runtime ?? "?"}, ${out.Configuration?.State ?? "Active"}`;
    }),
    one("ledger table", resources.ledgerTable, async () => {
      const out = await createClient(DynamoDBClient, aws).send(
        new DescribeTableCommand({ TableName: resources.ledgerTable }),
      );
      return out.Table?.TableStatus;
    }),
    one("sns topic", resources.topic, async () => {
      const sns = createClient(SNSClient, aws);
      let token: string | undefined;
      do {
        const page = await sns.send(new ListTopicsCommand({ NextToken: token }));
        const arn = page.Topics?.map((t) => t.TopicArn ?? "").find((a) => a.endsWith(`:${resources.topic}`));
        if (arn) return arn;
        token = page.NextToken;
      } while (token);
      return undefined;
    }),
    alarms(resources, aws),
  ];
  return (await Promise.all(checks)).flat();
}

async function alarms(resources: EnvironmentResources, aws: AwsOptions): Promise<InventoryItem[]> {
  const names = releaseAlarms(resources);
  try {
    const out = await createClient(CloudWatchClient, aws).send(
      new DescribeAlarmsCommand({ AlarmNames: names }),
    );
    const found = new Map(
      [...(out.MetricAlarms ?? []), ...(out.CompositeAlarms ?? [])].map((a) => [a.AlarmName, a]),
    );
    return names.map((name) => {
      const alarm = found.get(name);
      return alarm
        ? { kind: "alarm", name, present: true, detail: alarm.StateValue ?? "?" }
        : { kind: "alarm", name, present: false, detail: "not found" };
    });
  } catch (err) {
    return names.map((name) => ({ kind: "alarm", name, present: false, detail: errorMessage(err) }));
  }
}

/** Errors that mean "no such resource" across the services asked. */
const NOT_FOUND = new Set([
  "ValidationError", // CloudFormation: stack does not exist; SageMaker: Could not find endpoint
  "ValidationException",
  "RepositoryNotFoundException",
  "ResourceNotFoundException",
  "ClusterNotFoundException",
  "ServiceNotFoundException",
]);

async function one(
  kind: string,
  name: string,
  probe: () => Promise<string | undefined>,
): Promise<InventoryItem[]> {
  try {
    const detail = await probe();
    return [{ kind, name, present: detail !== undefined, detail: detail ?? "not found" }];
  } catch (err) {
    const missing = NOT_FOUND.has(awsErrorName(err) ?? "");
    return [
      { kind, name, present: false, detail: missing ? "not found" : `cannot tell: ${errorMessage(err)}` },
    ];
  }
}

/** The inventory as an aligned text table for terminals. */
export function formatInventory(items: InventoryItem[]): string {
  const width = (pick: (i: InventoryItem) => string) => Math.max(...items.map((i) => pick(i).length));
  const kindWidth = width((i) => i.kind);
  const nameWidth = width((i) => i.name);
  return items
    .map(
      (i) =>
        `${i.present ? "ok " : "-- "}${i.kind.padEnd(kindWidth)}  ${i.name.padEnd(nameWidth)}  ${i.detail}`,
    )
    .join("\n");
}
