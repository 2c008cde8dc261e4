import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { DescribeImagesCommand, ECRClient } from "@aws-sdk/client-ecr";
import { DescribeServicesCommand, ECSClient } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { createClient } from "../../src/aws/clients.js";
import { environmentResources, releaseAlarms } from "../../src/environment.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import { inspectEnvironment } from "../../src/infra/inventory.js";
import type { Template } from "../../src/local/bootstrap.js";
import { BASELINE_TAG, bootstrapLocalEnvironment } from "../../src/local/environment.js";
import { localPaths } from "../../src/local/paths.js";

const run = promisify(execFile);
const resources = environmentResources("local");
const template = (): Template =>
  JSON.parse(
    readFileSync(
      join(localPaths().state, "cdk.out", "local", `${resources.stackName}.template.json`),
      "utf8",
    ),
  ) as Template;

/** The physical names the synthesized template gives resources of one type. */
function namesInTemplate(type: string, property: string): string[] {
  return Object.values(template().Resources)
    .filter((r) => r.Type === type)
    .map((r) => r.Properties?.[property])
    .filter((name): name is string => typeof name === "string");
}

describe("the local environment, bootstrapped from the CDK app by `local up`", () => {
  it("holds every resource a release needs, by the names the synthesized template gives", async () => {
    const inventory = await inspectEnvironment(resources);
    const missing = inventory.filter((item) => !item.present);
    expect(missing).toEqual([]);

    const byKind = (kind: string) => inventory.filter((i) => i.kind === kind).map((i) => i.name);
    expect(byKind("ecs cluster")).toEqual(namesInTemplate("AWS::ECS::Cluster", "ClusterName"));
    expect(byKind("ecs service")).toEqual(namesInTemplate("AWS::ECS::Service", "ServiceName"));
    expect(byKind("sagemaker endpoint")).toEqual(namesInTemplate("AWS::SageMaker::Endpoint", "EndpointName"));
    expect(byKind("smoke-test lambda")).toEqual(namesInTemplate("AWS::Lambda::Function", "FunctionName"));
    expect(byKind("ledger table")).toEqual(namesInTemplate("AWS::DynamoDB::Table", "TableName"));
    expect(byKind("sns topic")).toHaveLength(1);
    expect(namesInTemplate("AWS::SNS::Topic", "TopicName")).toEqual([resources.topic]);
    expect(byKind("alarm").sort()).toEqual(namesInTemplate("AWS::CloudWatch::Alarm", "AlarmName").sort());
    expect(byKind("alarm").sort()).toEqual(releaseAlarms(resources).sort());
  });

  it("runs the baseline release: the service's task definition uses the baseline image by digest", async () => {
    const ecr = createClient(ECRClient);
    const baseline = await ecr.send(
      new DescribeImagesCommand({
        repositoryName: resources.ecrRepository,
        imageIds: [{ imageTag: BASELINE_TAG }],
      }),
    );
    const digest = baseline.imageDetails?.[0]?.imageDigest;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const ecs = createClient(ECSClient);
    const { services } = await ecs.send(
      new DescribeServicesCommand({ cluster: resources.cluster, services: [resources.service] }),
    );
    const service = services?.[0];
    expect(service?.deploymentController?.type).toBe("ECS");
    expect(service?.deploymentConfiguration?.strategy).toBe("BLUE_GREEN");
    expect(service?.deploymentConfiguration?.alarms?.alarmNames?.sort()).toEqual(
      releaseAlarms(resources).sort(),
    );
  });

  it("is listed by `astrolens-release status --env local`, each resource with its live state", async () => {
    const cli = join(localPaths().root, "dist", "cli", "index.js");
    const { stdout } = await run(process.execPath, [cli, "status", "--env", "local", "--json"]);
    const status = JSON.parse(stdout) as {
      resources: { kind: string; name: string; present: boolean }[];
      release: { ecs: { service: string }; sagemaker: { endpoint: string; status?: string } };
    };
    expect(status.resources.every((r) => r.present)).toBe(true);
    expect(status.resources.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        resources.cluster,
        resources.service,
        resources.endpoint,
        resources.smokeFunction,
        resources.ledgerTable,
        resources.topic,
        ...releaseAlarms(resources),
      ]),
    );
    expect(status.release.ecs.service).toBe(resources.service);
    expect(status.release.sagemaker.status).toBe("InService");
  });

  it("is harmless to bootstrap again: the stack is left unchanged and nothing goes missing", async () => {
    const logger = createMemoryLogger();
    const result = await bootstrapLocalEnvironment(localPaths(), {}, logger);
    expect(result.action).toBe("unchanged");
    expect(logger.lines.some((line) => line.includes("unchanged since the last synth"))).toBe(true);
    expect((await inspectEnvironment(resources)).filter((item) => !item.present)).toEqual([]);
  });
});
