import { randomBytes } from "node:crypto";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  ScanCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteClusterCommand,
  DeleteServiceCommand,
  DescribeServicesCommand,
  ListServiceDeploymentsCommand,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
} from "@aws-sdk/client-ecs";
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DeleteEndpointCommand,
  DeleteEndpointConfigCommand,
  DeleteModelCommand,
  DescribeEndpointCommand,
  ListModelsCommand,
} from "@aws-sdk/client-sagemaker";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createClient } from "../../src/aws/clients.js";
import { deploy } from "../../src/deploy/entry.js";
import { environmentResources } from "../../src/environment.js";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import {
  baselineImage,
  clients,
  ENVIRONMENT,
  ledger,
  liveTargets,
  loadLocalEnv,
  releaseOptions,
  resources,
  V2_MANIFEST,
  waitForIdle,
} from "../fixtures/deploy/local-release.js";

/**
 * Bad input, nothing changed: each release below is refused by the preflight — the
 * image, alarms, service and endpoint checked against the local AWS before the lock is
 * taken or anything is registered — with a message that names the input or resource
 * and says how to fix it; then the environment is read back unchanged.
 */

const logger = createMemoryLogger();
let baseline: string;

/** What a refused release must leave exactly as it was in the local environment. */
async function snapshotLocal() {
  const { ecs } = clients();
  const deployments = await ecs.send(
    new ListServiceDeploymentsCommand({
      cluster: resources.cluster,
      service: resources.service,
      maxResults: 100,
    }),
  );
  return {
    live: await liveTargets(),
    lock: await ledger().readLock(ENVIRONMENT),
    releases: (await ledger().listRecords(ENVIRONMENT, 100)).map((r) => `${r.releaseId} ${r.outcome}`),
    deployments: (deployments.serviceDeployments ?? []).length,
  };
}

async function refused(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return (err as Error).message;
  }
  throw new Error("expected the release to be refused with a ConfigurationError");
}

beforeAll(async () => {
  loadLocalEnv();
  baseline = await baselineImage();
});

describe("bad input to the local environment", () => {
  beforeEach(async () => {
    // Another engineer's release holds the lock first, and is refused for that instead.
    await waitForIdle(logger);
  }, 300_000);

  it("a digest not in the registry: refused, naming the image, nothing changed", async () => {
    const before = await snapshotLocal();
    const missing = `${baseline.slice(0, baseline.indexOf("@"))}@sha256:${randomBytes(32).toString("hex")}`;
    const message = await refused(
      deploy({ ...(await releaseOptions(logger)), image: missing, modelManifest: V2_MANIFEST }),
    );
    expect(message).toContain("nothing was changed");
    expect(message).toContain(`input "image": ${missing} does not exist in ECR`);
    expect(message).toContain("pass the digest push-image or promote-image reported");
    expect(await snapshotLocal()).toEqual(before);
  });

  it("an unknown alarm name: refused, naming the alarm; with a bad digest too, both at once", async () => {
    const before = await snapshotLocal();
    const unknown = "astrolens-local-no-such-alarm";
    const message = await refused(
      deploy({
        ...(await releaseOptions(logger)),
        image: baseline,
        modelManifest: V2_MANIFEST,
        alarms: [resources.alarms.albTarget5xxRate, unknown],
      }),
    );
    expect(message).toContain(`input "alarms": CloudWatch has no alarm named ${unknown}`);
    expect(message).not.toContain(resources.alarms.albTarget5xxRate.concat(","));

    const missing = `${baseline.slice(0, baseline.indexOf("@"))}@sha256:${randomBytes(32).toString("hex")}`;
    const both = await refused(
      deploy({
        ...(await releaseOptions(logger)),
        image: missing,
        modelManifest: V2_MANIFEST,
        alarms: [unknown],
      }),
    );
    expect(both).toContain('input "image"');
    expect(both).toContain(`no alarm named ${unknown}`);
    expect(await snapshotLocal()).toEqual(before);
  });
});

/**
 * Two more environments in the local AWS, each wrong in one way: `itest-noep` has its
 * ledger, cluster and an ECS-controlled service but no SageMaker endpoint; `itest-cd`
 * has everything but its service is on the CODE_DEPLOY controller. The release alarms
 * and smoke test are the local environment's (passed as inputs).
 */
describe("bad environments", () => {
  const noEndpoint = environmentResources("itest-noep");
  const codeDeploy = environmentResources("itest-cd");

  async function teardown(env: ReturnType<typeof environmentResources>) {
    const { ecs: e, sm } = clients();
    const dynamo = createClient(DynamoDBClient);
    const quietly = (p: Promise<unknown>) => p.catch(() => undefined);
    await quietly(
      e.send(new DeleteServiceCommand({ cluster: env.cluster, service: env.service, force: true })),
    );
    await quietly(e.send(new DeleteClusterCommand({ cluster: env.cluster })));
    await quietly(sm.send(new DeleteEndpointCommand({ EndpointName: env.endpoint })));
    await quietly(
      sm.send(new DeleteEndpointConfigCommand({ EndpointConfigName: `${env.endpoint}-initial` })),
    );
    await quietly(sm.send(new DeleteModelCommand({ ModelName: `${env.endpoint}-initial` })));
    await quietly(dynamo.send(new DeleteTableCommand({ TableName: env.ledgerTable })));
  }

  async function create(
    env: ReturnType<typeof environmentResources>,
    controller: "ECS" | "CODE_DEPLOY",
    endpoint: boolean,
  ) {
    const { ecs: e, sm } = clients();
    const dynamo = createClient(DynamoDBClient);
    await dynamo.send(
      new CreateTableCommand({
        TableName: env.ledgerTable,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "environment", AttributeType: "S" },
          { AttributeName: "releaseId", AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: "environment", KeyType: "HASH" },
          { AttributeName: "releaseId", KeyType: "RANGE" },
        ],
      }),
    );
    await waitUntilTableExists({ client: dynamo, maxWaitTime: 30 }, { TableName: env.ledgerTable });
    await e.send(new CreateClusterCommand({ clusterName: env.cluster }));
    const td = await e.send(
      new RegisterTaskDefinitionCommand({
        family: env.taskFamily,
        containerDefinitions: [
          { name: env.containerName, image: baseline, memory: 512, portMappings: [{ containerPort: 8080 }] },
        ],
      }),
    );
    await e.send(
      new CreateServiceCommand({
        cluster: env.cluster,
        serviceName: env.service,
        taskDefinition: td.taskDefinition?.taskDefinitionArn,
        desiredCount: 1,
        deploymentController: { type: controller },
      }),
    );
    if (endpoint) {
      const name = `${env.endpoint}-initial`;
      await sm.send(
        new CreateModelCommand({
          ModelName: name,
          ExecutionRoleArn: "arn:aws:iam::123456789012:role/itest-sagemaker",
          PrimaryContainer: { Image: baseline },
        }),
      );
      await sm.send(
        new CreateEndpointConfigCommand({
          EndpointConfigName: name,
          ProductionVariants: [
            {
              VariantName: "AllTraffic",
              ModelName: name,
              InitialInstanceCount: 1,
              InstanceType: "ml.m5.large",
            },
          ],
        }),
      );
      await sm.send(new CreateEndpointCommand({ EndpointName: env.endpoint, EndpointConfigName: name }));
    }
  }

  /** What a refused release must leave as it was in one of these environments. */
  async function snapshot(env: ReturnType<typeof environmentResources>) {
    const { ecs: e, sm } = clients();
    const service = (
      await e.send(new DescribeServicesCommand({ cluster: env.cluster, services: [env.service] }))
    ).services?.[0];
    const revisions = await e.send(new ListTaskDefinitionsCommand({ familyPrefix: env.taskFamily }));
    const items = await createClient(DynamoDBClient).send(new ScanCommand({ TableName: env.ledgerTable }));
    const endpoint = await sm
      .send(new DescribeEndpointCommand({ EndpointName: env.endpoint }))
      .then((d) => `${d.EndpointStatus} ${d.EndpointConfigName}`)
      .catch(() => "none");
    const models = await sm.send(new ListModelsCommand({ NameContains: `${env.endpoint}-` }));
    return {
      taskDefinition: service?.taskDefinition,
      controller: service?.deploymentController?.type,
      revisions: revisions.taskDefinitionArns,
      ledgerItems: items.Count,
      endpoint,
      models: (models.Models ?? []).map((m) => m.ModelName).sort(),
    };
  }

  beforeAll(async () => {
    for (const env of [noEndpoint, codeDeploy]) await teardown(env);
    await create(noEndpoint, "ECS", false);
    await create(codeDeploy, "CODE_DEPLOY", true);
  }, 120_000);

  afterAll(async () => {
    for (const env of [noEndpoint, codeDeploy]) await teardown(env);
  }, 120_000);

  const inputs = async (environment: string) => ({
    environment,
    image: baseline,
    modelManifest: V2_MANIFEST,
    alarms: Object.values(resources.alarms),
    smokeFunction: resources.smokeFunction,
    testUrl: (await releaseOptions(logger)).testUrl,
    logger,
  });

  it("a missing endpoint: refused, naming the endpoint and how to create it, nothing changed", async () => {
    const before = await snapshot(noEndpoint);
    const message = await refused(deploy(await inputs(noEndpoint.environment)));
    expect(message).toContain("nothing was changed");
    expect(message).toContain(
      `SageMaker endpoint ${noEndpoint.endpoint} does not exist: deploy the environment's stack first`,
    );
    // The only problem found: the service, alarms, image and smoke test are all fine.
    expect(message).not.toMatch(/ECS|alarm|input "image"|smoke/);
    expect(await snapshot(noEndpoint)).toEqual(before);
  });

  it("a service on the CODE_DEPLOY controller: refused, saying how to move it to ECS's blue/green, nothing changed", async () => {
    const before = await snapshot(codeDeploy);
    expect(before.controller).toBe("CODE_DEPLOY");
    expect(before.endpoint).toMatch(/^InService /);
    const message = await refused(deploy(await inputs(codeDeploy.environment)));
    expect(message).toContain("nothing was changed");
    expect(message).toContain(`ECS service ${codeDeploy.service} uses the CODE_DEPLOY deployment controller`);
    expect(message).toContain("switch the service to deploymentController {type: ECS}");
    expect(message).not.toMatch(/SageMaker endpoint|alarm named|input "image"/);
    expect(await snapshot(codeDeploy)).toEqual(before);
  });
});
