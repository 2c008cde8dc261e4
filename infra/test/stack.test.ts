import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Match, type Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ENVIRONMENTS, environmentResources, LEDGER_KEY, releaseAlarms } from "../../src/environment.ts";
import { ConfigurationError } from "../../src/errors.ts";
import { localAssetBucket } from "../lib/app.ts";
import { ANOMALY_METRIC, ANOMALY_NAMESPACE, SAGEMAKER_VARIANT } from "../lib/monitoring.ts";
import { resolveSettings } from "../lib/settings.ts";
import { IMAGE_DIGEST_PARAMETER, PRODUCTION_PORT, TEST_PORT } from "../lib/stack.ts";
import { REPO_ROOT, type Synthesized, synthesizeAll } from "./fixtures.ts";
import type { TemplateJson } from "./iam-evaluator.ts";

let synth: Synthesized;
beforeAll(() => {
  synth = synthesizeAll();
});

/** The one resource of `type`, failing unless there is exactly one. */
function only(
  template: Template,
  type: string,
): { id: string; properties: Record<string, unknown>; raw: Record<string, unknown> } {
  const found = Object.entries(template.findResources(type));
  expect(found, `${type} count`).toHaveLength(1);
  const [id, raw] = found[0] as [string, Record<string, unknown>];
  return { id, properties: raw.Properties as Record<string, unknown>, raw };
}

/**
 * Every resource type a stack holds, and how many. A resource added without a test
 * changes this table and fails here first.
 */
const EXPECTED_RESOURCES: Record<string, number> = {
  "AWS::ECR::Repository": 1,
  "AWS::EC2::VPC": 1,
  "AWS::EC2::Subnet": 2,
  "AWS::EC2::RouteTable": 2,
  "AWS::EC2::SubnetRouteTableAssociation": 2,
  "AWS::EC2::Route": 2,
  "AWS::EC2::InternetGateway": 1,
  "AWS::EC2::VPCGatewayAttachment": 1,
  "AWS::EC2::FlowLog": 1,
  "AWS::EC2::SecurityGroup": 3,
  "AWS::EC2::SecurityGroupIngress": 2,
  "AWS::EC2::SecurityGroupEgress": 2,
  "AWS::ElasticLoadBalancingV2::LoadBalancer": 1,
  "AWS::ElasticLoadBalancingV2::Listener": 2,
  "AWS::ElasticLoadBalancingV2::ListenerRule": 2,
  "AWS::ElasticLoadBalancingV2::TargetGroup": 2,
  "AWS::ECS::Cluster": 1,
  "AWS::ECS::TaskDefinition": 1,
  "AWS::ECS::Service": 1,
  "AWS::SageMaker::Model": 1,
  "AWS::SageMaker::EndpointConfig": 1,
  "AWS::SageMaker::Endpoint": 1,
  "AWS::CloudWatch::Alarm": 5,
  "AWS::CloudWatch::Dashboard": 1,
  "AWS::Lambda::Function": 1,
  "AWS::Logs::LogGroup": 3,
  "AWS::DynamoDB::Table": 1,
  "AWS::SNS::Topic": 1,
  "AWS::SNS::TopicPolicy": 1,
  "AWS::IAM::OIDCProvider": 1,
  // deploy, smoke test, task, task execution, ECS infrastructure, smoke hook, SageMaker, flow logs
  "AWS::IAM::Role": 8,
  // default policies: task execution, SageMaker, flow logs, smoke hook
  "AWS::IAM::Policy": 4,
};

describe.each(ENVIRONMENTS)("the %s stack", (environment) => {
  const names = environmentResources(environment);
  let template: Template;
  let json: TemplateJson;
  beforeAll(() => {
    template = synth.templates[environment];
    json = synth.json[environment];
  });

  it("holds exactly the expected resources, and no custom resource or extra Lambda", () => {
    const counts: Record<string, number> = {};
    for (const resource of Object.values(json.Resources))
      counts[resource.Type] = (counts[resource.Type] ?? 0) + 1;
    expect(counts).toEqual(EXPECTED_RESOURCES);
    expect(Object.values(json.Resources).filter((resource) => resource.Type.startsWith("Custom::"))).toEqual(
      [],
    );
  });

  it("is named by the contract", () => {
    expect(synth.stacks[environment].stackName).toBe(names.stackName);
  });

  it("ECR: the contract's repository, immutable tags, scan on push, KMS, a lifecycle policy", () => {
    const { properties } = only(template, "AWS::ECR::Repository");
    expect(properties).toMatchObject({
      RepositoryName: names.ecrRepository,
      ImageTagMutability: "IMMUTABLE",
      ImageScanningConfiguration: { ScanOnPush: true },
      EncryptionConfiguration: { EncryptionType: "KMS" },
    });
    const production = environment === "production";
    expect(properties.EmptyOnDelete).toBe(production ? undefined : true);
    expect(only(template, "AWS::ECR::Repository").raw.DeletionPolicy).toBe(production ? "Retain" : "Delete");
    const policy = JSON.parse(
      (properties.LifecyclePolicy as { LifecyclePolicyText: string }).LifecyclePolicyText,
    ) as {
      rules: Array<{ selection: Record<string, unknown>; action: { type: string } }>;
    };
    expect(policy.rules.map((rule) => rule.selection)).toEqual([
      { tagStatus: "untagged", countType: "sinceImagePushed", countNumber: 7, countUnit: "days" },
      { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 100 },
    ]);
  });

  it("VPC: two public subnets in the settings' written-out zones, no NAT gateway, no automatic public IPs", () => {
    const settings = resolveSettings(environment);
    template.resourceCountIs("AWS::EC2::NatGateway", 0);
    template.hasResourceProperties("AWS::EC2::VPC", { CidrBlock: settings.vpcCidr });
    const subnets = Object.values(template.findResources("AWS::EC2::Subnet")).map(
      (subnet) => subnet.Properties as Record<string, unknown>,
    );
    expect(subnets.map((subnet) => subnet.AvailabilityZone)).toEqual(settings.availabilityZones);
    for (const subnet of subnets) expect(subnet.MapPublicIpOnLaunch).toBe(false);
    template.hasResourceProperties("AWS::EC2::Route", {
      DestinationCidrBlock: "0.0.0.0/0",
      GatewayId: Match.objectLike({ Ref: Match.stringLikeRegexp("IGW") }),
    });
    template.hasResourceProperties("AWS::EC2::FlowLog", {
      TrafficType: "REJECT",
      LogDestinationType: "cloud-watch-logs",
    });
  });

  it("security groups: clients to the production port, only the smoke test to the test port, tasks from the ALB only", () => {
    const settings = resolveSettings(environment);
    const groups = template.findResources("AWS::EC2::SecurityGroup");
    const albGroup = Object.entries(groups).find(([id]) => id.startsWith("LoadBalancerSecurityGroup"));
    expect(albGroup?.[1].Properties.SecurityGroupIngress).toEqual(
      settings.clientCidrs.map((cidr) =>
        expect.objectContaining({ CidrIp: cidr, FromPort: PRODUCTION_PORT, ToPort: PRODUCTION_PORT }),
      ),
    );
    // Every group has an inline egress rule: without one, AWS adds an allow-all default
    // that separate egress resources do not remove. The ALB's and the smoke test's match
    // nothing, so their only way out is the group-to-group rules below.
    for (const [id, group] of Object.entries(groups)) {
      expect(group.Properties.SecurityGroupEgress, `${id} inline egress`).toBeDefined();
    }
    for (const prefix of ["LoadBalancerSecurityGroup", "SmokeTestSecurityGroup"]) {
      const group = Object.entries(groups).find(([id]) => id.startsWith(prefix));
      expect(group?.[1].Properties.SecurityGroupEgress).toEqual([
        expect.objectContaining({
          CidrIp: "255.255.255.255/32",
          IpProtocol: "icmp",
          FromPort: 252,
          ToPort: 86,
        }),
      ]);
    }
    const egress = Object.values(template.findResources("AWS::EC2::SecurityGroupEgress")).map(
      (rule) => rule.Properties as Record<string, unknown>,
    );
    expect(egress).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          FromPort: names.containerPort,
          GroupId: { "Fn::GetAtt": [expect.stringMatching(/^LoadBalancerSecurityGroup/), "GroupId"] },
          DestinationSecurityGroupId: {
            "Fn::GetAtt": [expect.stringMatching(/^ServiceSecurityGroup/), "GroupId"],
          },
        }),
        expect.objectContaining({
          FromPort: TEST_PORT,
          GroupId: { "Fn::GetAtt": [expect.stringMatching(/^SmokeTestSecurityGroup/), "GroupId"] },
          DestinationSecurityGroupId: {
            "Fn::GetAtt": [expect.stringMatching(/^LoadBalancerSecurityGroup/), "GroupId"],
          },
        }),
      ]),
    );
    const serviceGroup = Object.entries(groups).find(([id]) => id.startsWith("ServiceSecurityGroup"));
    expect(serviceGroup?.[1].Properties.SecurityGroupIngress).toBeUndefined();
    expect(serviceGroup?.[1].Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: "0.0.0.0/0", FromPort: 443, ToPort: 443, IpProtocol: "tcp" }),
    ]);
    const ingress = Object.values(template.findResources("AWS::EC2::SecurityGroupIngress")).map(
      (rule) => rule.Properties as Record<string, unknown>,
    );
    expect(ingress).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          FromPort: TEST_PORT,
          SourceSecurityGroupId: {
            "Fn::GetAtt": [expect.stringMatching(/^SmokeTestSecurityGroup/), "GroupId"],
          },
        }),
        expect.objectContaining({
          FromPort: names.containerPort,
          GroupId: { "Fn::GetAtt": [expect.stringMatching(/^ServiceSecurityGroup/), "GroupId"] },
          SourceSecurityGroupId: {
            "Fn::GetAtt": [expect.stringMatching(/^LoadBalancerSecurityGroup/), "GroupId"],
          },
        }),
      ]),
    );
    expect(JSON.stringify(json)).not.toContain('"CidrIp":"0.0.0.0/0","Description":"clients');
  });

  it("ALB: internal, named by the contract, a production and a test listener, each one forward rule over blue and green", () => {
    template.hasResourceProperties("AWS::ElasticLoadBalancingV2::LoadBalancer", {
      Name: names.loadBalancer,
      Scheme: "internal",
      LoadBalancerAttributes: Match.arrayWith([
        { Key: "routing.http.drop_invalid_header_fields.enabled", Value: "true" },
      ]),
    });
    const attributes = JSON.stringify(only(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").properties);
    expect(attributes.includes('{"Key":"deletion_protection.enabled","Value":"true"}')).toBe(
      environment === "production",
    );
    const listeners = Object.values(template.findResources("AWS::ElasticLoadBalancingV2::Listener")).map(
      (listener) => listener.Properties as Record<string, unknown>,
    );
    expect(listeners.map((listener) => listener.Port).sort()).toEqual([PRODUCTION_PORT, TEST_PORT].sort());
    for (const listener of listeners) {
      expect(listener.DefaultActions).toEqual([expect.objectContaining({ Type: "fixed-response" })]);
    }
    const rules = Object.values(template.findResources("AWS::ElasticLoadBalancingV2::ListenerRule")).map(
      (rule) => rule.Properties as { Actions: Array<Record<string, unknown>>; Priority: number },
    );
    expect(rules).toHaveLength(2);
    for (const rule of rules) {
      // Only a forward action: ECS fails a deployment on a rule that mixes it with others.
      expect(rule.Actions).toHaveLength(1);
      expect(rule.Actions[0]).toMatchObject({
        Type: "forward",
        ForwardConfig: {
          TargetGroups: [
            { TargetGroupArn: { Ref: expect.stringMatching(/^BlueTargetGroup/) }, Weight: 100 },
            { TargetGroupArn: { Ref: expect.stringMatching(/^GreenTargetGroup/) }, Weight: 0 },
          ],
        },
      });
    }
  });

  it("target groups: blue and green by the contract's names, IP targets on 8080, health on /healthz", () => {
    for (const name of [names.blueTargetGroup, names.greenTargetGroup]) {
      template.hasResourceProperties("AWS::ElasticLoadBalancingV2::TargetGroup", {
        Name: name,
        Port: names.containerPort,
        Protocol: "HTTP",
        TargetType: "ip",
        HealthCheckPath: "/healthz",
        Matcher: { HttpCode: "200" },
        TargetGroupAttributes: Match.arrayWith([
          { Key: "deregistration_delay.timeout_seconds", Value: "30" },
        ]),
      });
    }
  });

  it("ECS: the cluster and a Fargate task definition of the contract's family, container and port, on the parameter's digest", () => {
    template.hasResourceProperties("AWS::ECS::Cluster", {
      ClusterName: names.cluster,
      ClusterSettings: [{ Name: "containerInsights", Value: "enabled" }],
    });
    const { properties } = only(template, "AWS::ECS::TaskDefinition");
    expect(properties).toMatchObject({
      Family: names.taskFamily,
      RequiresCompatibilities: ["FARGATE"],
      NetworkMode: "awsvpc",
      RuntimePlatform: { CpuArchitecture: "X86_64", OperatingSystemFamily: "LINUX" },
    });
    const containers = properties.ContainerDefinitions as Array<Record<string, unknown>>;
    expect(containers).toHaveLength(1);
    expect(containers[0]).toMatchObject({
      Name: names.containerName,
      PortMappings: [{ ContainerPort: names.containerPort, Protocol: "tcp" }],
      Environment: [{ Name: "ASTROLENS_SERVICE_NAME", Value: names.service }],
      ReadonlyRootFilesystem: true,
      StopTimeout: 30,
      LogConfiguration: { LogDriver: "awslogs" },
    });
    // repository URI + "@" + the ImageDigest parameter: the image by digest, never a tag.
    const image = JSON.stringify(containers[0]?.Image);
    expect(image).toContain(`"@",{"Ref":"${IMAGE_DIGEST_PARAMETER}"}`);
    expect(image).toContain("Repository");
  });

  it("ECS service: blue/green with bake time, the release alarms rolling back, the smoke test at POST_TEST_TRAFFIC_SHIFT", () => {
    const settings = resolveSettings(environment);
    const { properties, raw } = only(template, "AWS::ECS::Service");
    expect(properties).toMatchObject({
      ServiceName: names.service,
      Cluster: { Ref: expect.stringMatching(/^Cluster/) },
      // The family alone: the service runs its latest revision, so a stack update never
      // points it back at the CDK's revision once the toolkit has registered newer ones.
      TaskDefinition: names.taskFamily,
      LaunchType: "FARGATE",
      DesiredCount: settings.service.desiredCount,
      DeploymentController: { Type: "ECS" },
      DeploymentConfiguration: {
        Strategy: "BLUE_GREEN",
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        BakeTimeInMinutes: settings.blueGreen.bakeMinutes,
        Alarms: { AlarmNames: releaseAlarms(names), Enable: true, Rollback: true },
        LifecycleHooks: [
          {
            HookTargetArn: { "Fn::GetAtt": [expect.stringMatching(/^SmokeTest/), "Arn"] },
            RoleArn: { "Fn::GetAtt": [expect.stringMatching(/^SmokeHookRole/), "Arn"] },
            LifecycleStages: ["POST_TEST_TRAFFIC_SHIFT"],
            TimeoutConfiguration: {
              TimeoutInMinutes: settings.blueGreen.hookTimeoutMinutes,
              Action: "ROLLBACK",
            },
          },
        ],
      },
      NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: "ENABLED" } },
      LoadBalancers: [
        {
          ContainerName: names.containerName,
          ContainerPort: names.containerPort,
          TargetGroupArn: { Ref: expect.stringMatching(/^BlueTargetGroup/) },
          AdvancedConfiguration: {
            AlternateTargetGroupArn: { Ref: expect.stringMatching(/^GreenTargetGroup/) },
            ProductionListenerRule: { Ref: expect.stringMatching(/^ProductionListenerRule/) },
            TestListenerRule: { Ref: expect.stringMatching(/^TestListenerRule/) },
            RoleArn: { "Fn::GetAtt": [expect.stringMatching(/^EcsInfrastructureRole/), "Arn"] },
          },
        },
      ],
    });
    expect(raw.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^TaskDefinition/)]));
  });

  it("the serving resources wait for an image: they carry HasImage, and nothing unconditional refers to them", () => {
    const parameter = (json as unknown as { Parameters: Record<string, Record<string, unknown>> }).Parameters[
      IMAGE_DIGEST_PARAMETER
    ];
    expect(parameter).toMatchObject({
      Type: "String",
      Default: "",
      AllowedPattern: "^(sha256:[0-9a-f]{64})?$",
    });
    const conditional = Object.entries(json.Resources)
      .filter(([, resource]) => resource.Condition === "HasImage")
      .map(([, resource]) => resource.Type)
      .sort();
    expect(conditional).toEqual(
      [
        "AWS::ECS::Service",
        "AWS::ECS::TaskDefinition",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Model",
      ].sort(),
    );
    const conditionalIds = new Set(
      Object.entries(json.Resources)
        .filter(([, resource]) => resource.Condition === "HasImage")
        .map(([id]) => id),
    );
    for (const [id, resource] of Object.entries(json.Resources)) {
      if (resource.Condition === "HasImage") continue;
      const text = JSON.stringify(resource);
      for (const target of conditionalIds) {
        expect(text, `${id} refers to the conditional ${target}`).not.toMatch(
          new RegExp(`"(Ref|Fn::GetAtt)":\\[?"${target}"|"DependsOn":[^\\]]*"${target}"`),
        );
      }
    }
  });

  it("SageMaker: the same image by digest, network isolation, the contract's endpoint, guarded CloudFormation updates", () => {
    const settings = resolveSettings(environment);
    const model = only(template, "AWS::SageMaker::Model").properties;
    expect(model).toMatchObject({
      ModelName: expect.stringMatching(new RegExp(`^${names.stackName}-initial-[0-9a-f]{8}$`)),
      EnableNetworkIsolation: true,
      ExecutionRoleArn: { "Fn::GetAtt": [expect.stringMatching(/^SageMakerRole/), "Arn"] },
      PrimaryContainer: { Mode: "SingleModel", Environment: { ASTROLENS_SERVICE_NAME: names.service } },
    });
    expect((model.ModelName as string).length).toBeLessThanOrEqual(63);
    expect(JSON.stringify(model.PrimaryContainer)).toContain(`"@",{"Ref":"${IMAGE_DIGEST_PARAMETER}"}`);
    const config = only(template, "AWS::SageMaker::EndpointConfig").properties;
    expect(config).toMatchObject({
      EndpointConfigName: model.ModelName,
      ProductionVariants: [
        {
          VariantName: SAGEMAKER_VARIANT,
          InstanceType: settings.sagemaker.instanceType,
          InitialInstanceCount: settings.sagemaker.initialInstanceCount,
        },
      ],
    });
    template.hasResourceProperties("AWS::SageMaker::Endpoint", {
      EndpointName: names.endpoint,
      DeploymentConfig: {
        BlueGreenUpdatePolicy: {
          TrafficRoutingConfiguration: { Type: "ALL_AT_ONCE", WaitIntervalInSeconds: 0 },
        },
        AutoRollbackConfiguration: {
          Alarms: [
            { AlarmName: names.alarms.sagemakerInvocation5xx },
            { AlarmName: names.alarms.sagemakerModelLatency },
          ],
        },
      },
    });
  });

  it("alarms: the contract's five names, each not breaching on missing data", () => {
    const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")).map(
      (alarm) => alarm.Properties as Record<string, unknown>,
    );
    expect(alarms.map((alarm) => alarm.AlarmName).sort()).toEqual(releaseAlarms(names).sort());
    for (const alarm of alarms) {
      expect(alarm.TreatMissingData).toBe("notBreaching");
      expect(alarm.ActionsEnabled ?? true).toBe(true);
    }
    const byName = (name: string) =>
      alarms.find((alarm) => alarm.AlarmName === name) as Record<string, unknown>;
    const rate = byName(names.alarms.albTarget5xxRate);
    const expressions = (rate.Metrics as Array<Record<string, unknown>>).map(
      (metric) => metric.Expression ?? metric.MetricStat,
    );
    expect(expressions).toContainEqual("100 * FILL(errors, 0) / requests");
    expect(JSON.stringify(rate.Metrics)).toContain("HTTPCode_Target_5XX_Count");
    expect(JSON.stringify(rate.Metrics)).toContain("RequestCount");
    expect(byName(names.alarms.albP99Latency)).toMatchObject({
      MetricName: "TargetResponseTime",
      Namespace: "AWS/ApplicationELB",
      ExtendedStatistic: "p99",
    });
    for (const [name, metric] of [
      [names.alarms.sagemakerInvocation5xx, "Invocation5XXErrors"],
      [names.alarms.sagemakerModelLatency, "ModelLatency"],
    ] as const) {
      expect(byName(name)).toMatchObject({
        Namespace: "AWS/SageMaker",
        MetricName: metric,
        Dimensions: expect.arrayContaining([
          { Name: "EndpointName", Value: names.endpoint },
          { Name: "VariantName", Value: SAGEMAKER_VARIANT },
        ]),
      });
    }
    expect(byName(names.alarms.anomalyRate)).toMatchObject({
      Namespace: ANOMALY_NAMESPACE,
      MetricName: ANOMALY_METRIC,
      Unit: "Percent",
      Statistic: "Average",
      Dimensions: [{ Name: "Service", Value: names.service }],
    });
  });

  it("the anomaly alarm's Service dimension is the ASTROLENS_SERVICE_NAME both targets set, in the service's EMF namespace", () => {
    const emf = readFileSync(join(REPO_ROOT, "service/src/server/emf.ts"), "utf8");
    expect(emf).toContain(`emfNamespace = "${ANOMALY_NAMESPACE}"`);
    expect(emf).toContain(`Name: "${ANOMALY_METRIC}", Unit: "Percent"`);
  });

  it("dashboard: the contract's name, every release alarm on it", () => {
    const { properties } = only(template, "AWS::CloudWatch::Dashboard");
    expect(properties.DashboardName).toBe(names.dashboard);
    const body = JSON.stringify(properties.DashboardBody);
    const alarmIds = Object.entries(template.findResources("AWS::CloudWatch::Alarm")).map(([id]) => id);
    expect(alarmIds).toHaveLength(releaseAlarms(names).length);
    for (const id of alarmIds) expect(body).toContain(`{"Fn::GetAtt":["${id}","Arn"]}`);
  });

  it("smoke-test Lambda: Node.js 22, index.handler, in the VPC, SMOKE_TARGET_URL = the test listener", () => {
    const { properties } = only(template, "AWS::Lambda::Function");
    expect(properties).toMatchObject({
      FunctionName: names.smokeFunction,
      Runtime: "nodejs22.x",
      Handler: "index.handler",
      VpcConfig: {
        SecurityGroupIds: [{ "Fn::GetAtt": [expect.stringMatching(/^SmokeTestSecurityGroup/), "GroupId"] }],
      },
      LoggingConfig: { LogGroup: { Ref: expect.stringMatching(/^SmokeTestLogs/) } },
    });
    const url = (properties.Environment as { Variables: { SMOKE_TARGET_URL: unknown } }).Variables
      .SMOKE_TARGET_URL;
    expect(url).toEqual({
      "Fn::Join": [
        "",
        ["http://", { "Fn::GetAtt": [expect.stringMatching(/^LoadBalancer/), "DNSName"] }, `:${TEST_PORT}`],
      ],
    });
    template.hasResourceProperties("AWS::Logs::LogGroup", {
      LogGroupName: `/aws/lambda/${names.smokeFunction}`,
    });
  });

  it("ledger: the contract's table and key, on demand, point-in-time recovery; kept in production only", () => {
    const { properties, raw } = only(template, "AWS::DynamoDB::Table");
    expect(properties).toMatchObject({
      TableName: names.ledgerTable,
      KeySchema: [
        { AttributeName: LEDGER_KEY.partition, KeyType: "HASH" },
        { AttributeName: LEDGER_KEY.sort, KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    const production = environment === "production";
    expect(properties.DeletionProtectionEnabled).toBe(production);
    expect(raw.DeletionPolicy).toBe(production ? "Retain" : "Delete");
    expect(raw.UpdateReplacePolicy).toBe(production ? "Retain" : "Delete");
  });

  it("release-outcome topic: the contract's name, KMS-encrypted, TLS enforced", () => {
    const { properties } = only(template, "AWS::SNS::Topic");
    expect(properties.TopicName).toBe(names.topic);
    expect(JSON.stringify(properties.KmsMasterKeyId)).toMatch(/:alias\/aws\/sns"\]\]\}$/);
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  it("GitHub OIDC: the provider for token.actions.githubusercontent.com with the STS audience", () => {
    template.hasResourceProperties("AWS::IAM::OIDCProvider", {
      Url: "https://token.actions.githubusercontent.com",
      ClientIdList: ["sts.amazonaws.com"],
    });
  });

  it("keeps the production stack from being deleted by accident", () => {
    expect(synth.stacks[environment].terminationProtection).toBe(environment === "production");
  });
});

describe("synthesis", () => {
  it("needs no lookup: no missing context, and the stacks name their account and region only where settings give them", () => {
    const manifest = JSON.parse(readFileSync(join(synth.outdir, "manifest.json"), "utf8")) as {
      missing?: unknown[];
      artifacts: Record<string, { type: string; environment?: string }>;
    };
    expect(manifest.missing ?? []).toEqual([]);
    expect(manifest.artifacts["astrolens-local"]?.environment).toBe("aws://123456789012/us-east-1");
    expect(manifest.artifacts["astrolens-staging"]?.environment).toBe("aws://unknown-account/eu-west-1");
  });

  it("has one asset, the smoke-test bundle, and no Docker image asset", () => {
    for (const environment of ENVIRONMENTS) {
      const assets = JSON.parse(
        readFileSync(join(synth.outdir, `astrolens-${environment}.assets.json`), "utf8"),
      ) as {
        files: Record<string, { source: { path: string; packaging: string } }>;
        dockerImages: Record<string, unknown>;
      };
      const bundles = Object.values(assets.files).filter((file) => file.source.packaging === "zip");
      expect(bundles).toHaveLength(1);
      expect(assets.dockerImages).toEqual({});
    }
  });

  it("local synthesizes bootstrap-free into a fixed asset bucket; staging and production expect `cdk bootstrap`", () => {
    const local = synth.json.local as unknown as { Parameters: Record<string, unknown>; Rules?: unknown };
    expect(Object.keys(local.Parameters)).toEqual([IMAGE_DIGEST_PARAMETER]);
    expect(local.Rules).toBeUndefined();
    const code = only(synth.templates.local, "AWS::Lambda::Function").properties.Code as {
      S3Bucket: unknown;
    };
    expect(code.S3Bucket).toBe(localAssetBucket(resolveSettings("local")));
    const staging = synth.json.staging as unknown as { Parameters: Record<string, unknown>; Rules: unknown };
    expect(Object.keys(staging.Parameters)).toContain("BootstrapVersion");
    expect(staging.Rules).toHaveProperty("CheckBootstrapVersion");
  });

  it("is deterministic: synthesizing twice gives the same templates", () => {
    const again = synthesizeAll();
    for (const environment of ENVIRONMENTS) {
      expect(again.json[environment]).toEqual(synth.json[environment]);
    }
  });

  it("names the missing smoke-test bundle and how to build it", () => {
    expect(() => synthesizeAll({ smokeTestCodeDir: "/nonexistent/smoke-test/dist" })).toThrow(
      /smoke-test Lambda bundle \/nonexistent\/smoke-test\/dist\/index\.mjs is missing: build infra\/lambda\/smoke-test/,
    );
  });
});

describe("settings", () => {
  it("reads account, region and zones from context, then from the environment", () => {
    const context = (key: string) =>
      ({
        "astrolens:staging:account": "111122223333",
        "astrolens:staging:availabilityZones": "eu-central-1b,eu-central-1c",
        "astrolens:githubRepository": "example/fork",
      })[key];
    const settings = resolveSettings("staging", context, { ASTROLENS_STAGING_REGION: "eu-central-1" });
    expect(settings).toMatchObject({
      account: "111122223333",
      region: "eu-central-1",
      availabilityZones: ["eu-central-1b", "eu-central-1c"],
      github: { repository: "example/fork" },
    });
  });

  it("gives a stack with an account and region those values", () => {
    const custom = synthesizeAll({
      context: { "astrolens:production:account": "444455556666", "astrolens:production:region": "us-west-2" },
    });
    expect(custom.stacks.production.account).toBe("444455556666");
    expect(custom.stacks.production.region).toBe("us-west-2");
    custom.templates.production.hasResourceProperties("AWS::EC2::Subnet", { AvailabilityZone: "us-west-2a" });
  });

  it("references an existing OIDC provider when told the account already has one", () => {
    const custom = synthesizeAll({ context: { "astrolens:staging:createOidcProvider": "false" } });
    custom.templates.staging.resourceCountIs("AWS::IAM::OIDCProvider", 0);
    const trust = JSON.stringify(
      Object.values(
        custom.templates.staging.findResources("AWS::IAM::Role", {
          Properties: { RoleName: "astrolens-staging-deploy" },
        }),
      )[0],
    );
    expect(trust).toContain(":oidc-provider/token.actions.githubusercontent.com");
  });

  it.each([
    [
      { "astrolens:staging:account": "12345" },
      /astrolens:staging:account .* must be a 12-digit AWS account id, got "12345"/,
    ],
    [{ "astrolens:staging:region": "mars-1" }, /astrolens:staging:region .* must be an AWS region/],
    [{ "astrolens:staging:availabilityZones": "eu-west-1a" }, /must name two zones of eu-west-1/],
    [{ "astrolens:githubRepository": "no-slash" }, /astrolens:githubRepository must be "owner\/name"/],
    [{ "astrolens:staging:createOidcProvider": "maybe" }, /createOidcProvider must be true or false/],
  ])("refuses %j with a message naming the setting", (values, message) => {
    const context = (key: string) => (values as Record<string, string>)[key];
    expect(() => resolveSettings("staging", context)).toThrow(ConfigurationError);
    expect(() => resolveSettings("staging", context)).toThrow(message);
  });
});
