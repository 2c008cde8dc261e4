import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  Aws,
  CfnCondition,
  CfnParameter,
  CfnResource,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  type StackProps,
  Tags,
} from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecr from "aws-cdk-lib/aws-ecr";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sagemaker from "aws-cdk-lib/aws-sagemaker";
import * as sns from "aws-cdk-lib/aws-sns";
import type { Construct, IConstruct } from "constructs";
import {
  type EnvironmentResources,
  environmentResources,
  LEDGER_KEY,
  releaseAlarms,
} from "../../src/environment.ts";
import { ConfigurationError } from "../../src/errors.ts";
import { deployPermissions, type PassableRoles } from "./deploy-permissions.ts";
import { ReleaseMonitoring, SAGEMAKER_VARIANT } from "./monitoring.ts";
import type { EnvironmentSettings } from "./settings.ts";
import { acknowledgeSynthWarning, waive } from "./waivers.ts";

/** The issuer of GitHub Actions' OIDC tokens, and the audience configure-aws-credentials asks for. */
export const GITHUB_OIDC_HOST = "token.actions.githubusercontent.com";
export const GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com";

/** Listener ports: production traffic, and the test listener only the smoke test reaches. */
export const PRODUCTION_PORT = 80;
export const TEST_PORT = 8080;

/** The name of the parameter that gives the first image (see README: "The first image"). */
export const IMAGE_DIGEST_PARAMETER = "ImageDigest";

export interface AstroLensStackProps extends StackProps {
  settings: EnvironmentSettings;
  /** The smoke-test Lambda's bundle: a folder holding `index.mjs` that exports `handler`. */
  smokeTestCodeDir: string;
}

/** The roles the toolkit passes to AWS, named from the contract's prefix so a policy can name them. */
export function passableRoleNames(names: EnvironmentResources): PassableRoles {
  return {
    taskRoleName: `${names.stackName}-task`,
    executionRoleName: `${names.stackName}-task-execution`,
    ecsInfrastructureRoleName: `${names.stackName}-ecs-infrastructure`,
    hookRoleName: `${names.stackName}-smoke-hook`,
    sagemakerRoleName: `${names.stackName}-sagemaker`,
  };
}

/**
 * One environment: everything a release needs, each resource under the physical name the
 * naming contract gives it.
 *
 * The serving resources (task definition, ECS service, SageMaker model, endpoint
 * configuration and endpoint) exist only once an image does: they carry the `HasImage`
 * condition on the `ImageDigest` parameter. The repository is in this stack, so the first
 * deploy cannot already name an image in it.
 */
export class AstroLensStack extends Stack {
  readonly names: EnvironmentResources;
  private readonly settings: EnvironmentSettings;

  constructor(scope: Construct, id: string, props: AstroLensStackProps) {
    super(scope, id, props);
    const { settings } = props;
    this.settings = settings;
    const names = environmentResources(settings.environment);
    this.names = names;
    const roleNames = passableRoleNames(names);
    Tags.of(this).add("astrolens:environment", settings.environment);
    const removalPolicy = settings.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    const imageDigest = new CfnParameter(this, IMAGE_DIGEST_PARAMETER, {
      type: "String",
      default: "",
      allowedPattern: "^(sha256:[0-9a-f]{64})?$",
      constraintDescription: "an image digest, sha256: followed by 64 lower-case hex digits, or empty",
      description:
        "Digest of the first image in this environment's repository. Empty: no service or endpoint yet " +
        "(push an image, then deploy again with it). Later releases register their own task-definition " +
        "revisions and endpoint configurations; this value is only the starting point.",
    });
    const hasImage = new CfnCondition(this, "HasImage", {
      expression: Fn.conditionNot(Fn.conditionEquals(imageDigest.valueAsString, "")),
    });

    // ---- Registry ----------------------------------------------------------------------
    const repository = new ecr.Repository(this, "Repository", {
      repositoryName: names.ecrRepository,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      imageScanOnPush: true,
      // The AWS-managed aws/ecr key: encrypted with KMS, and pulls need no key policy.
      encryption: ecr.RepositoryEncryption.KMS,
      removalPolicy,
      // Outside production a deleted stack takes its images along (CloudFormation's own
      // EmptyOnDelete, no custom resource); production keeps the repository and its images.
      ...(settings.retainData ? {} : { emptyOnDelete: true }),
      lifecycleRules: [
        {
          rulePriority: 1,
          description: "Drop untagged images (interrupted pushes) after a week",
          tagStatus: ecr.TagStatus.UNTAGGED,
          maxImageAge: Duration.days(7),
        },
        {
          rulePriority: 2,
          description: "Keep the newest 100 images: far more than any rollback reaches back to",
          tagStatus: ecr.TagStatus.ANY,
          maxImageCount: 100,
        },
      ],
    });

    // ---- Network -----------------------------------------------------------------------
    // No NAT gateway: tasks sit in public subnets with public IPs (assignPublicIp) and
    // reach ECR, S3 and CloudWatch Logs through the internet gateway. A NAT gateway per
    // zone, or interface endpoints for ecr.api, ecr.dkr, logs (plus an S3 gateway), would
    // cost more than the tasks for a service this size; inbound stays closed, since the
    // tasks' security group admits only the load balancer on the container port.
    const vpc = new ec2.Vpc(this, "Vpc", {
      vpcName: names.stackName,
      ipAddresses: ec2.IpAddresses.cidr(settings.vpcCidr),
      availabilityZones: settings.availabilityZones,
      natGateways: 0,
      subnetConfiguration: [
        // Public IPs only where asked for (the Fargate tasks), not on every launch.
        { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
      ],
      // Restricting the default security group takes a custom-resource Lambda (an extra
      // asset, and nothing moto's CloudFormation can run); nothing here uses that group.
      restrictDefaultSecurityGroup: false,
    });
    for (const subnet of vpc.publicSubnets) {
      acknowledgeSynthWarning(
        subnet,
        "W3010",
        "zones are written out (settings.availabilityZones) so that synth needs no lookup, credentials or network",
      );
    }
    const flowLogGroup = this.logGroup(
      "FlowLogs",
      `/astrolens/${settings.environment}/vpc-flow-logs`,
      settings,
    );
    vpc.addFlowLog("RejectedTraffic", {
      // Rejected flows only: what a debugging session needs (a blocked port), at a fraction of ALL's volume.
      trafficType: ec2.FlowLogTrafficType.REJECT,
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
    });
    const publicSubnets = { subnetType: ec2.SubnetType.PUBLIC };

    const loadBalancerGroup = new ec2.SecurityGroup(this, "LoadBalancerSecurityGroup", {
      vpc,
      description: `${names.loadBalancer} load balancer: production listener from clients, test listener from the smoke test`,
      allowAllOutbound: false,
    });
    const serviceGroup = new ec2.SecurityGroup(this, "ServiceSecurityGroup", {
      vpc,
      description: `${names.service} tasks: the container port from the load balancer only`,
      allowAllOutbound: false,
    });
    // HTTPS out only: ECR, S3 (layers) and CloudWatch Logs. DNS goes to the VPC resolver, which no group filters.
    serviceGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      "ECR, S3 and CloudWatch Logs over HTTPS",
    );
    const smokeGroup = new ec2.SecurityGroup(this, "SmokeTestSecurityGroup", {
      vpc,
      description: `${names.smokeFunction}: to the test listener only`,
      allowAllOutbound: false,
    });
    // These two groups' only egress rules point at other groups, which the CDK writes as
    // separate resources; a group created with no inline egress gets AWS's allow-all
    // default, which a separate rule does not remove. An inline rule that matches nothing
    // keeps the default away, as the CDK does itself for groups without any rule.
    for (const group of [loadBalancerGroup, smokeGroup]) {
      (group.node.defaultChild as ec2.CfnSecurityGroup).addPropertyOverride("SecurityGroupEgress", [
        {
          CidrIp: "255.255.255.255/32",
          Description: "Disallow all traffic",
          IpProtocol: "icmp",
          FromPort: 252,
          ToPort: 86,
        },
      ]);
    }
    for (const cidr of settings.clientCidrs) {
      loadBalancerGroup.addIngressRule(
        ec2.Peer.ipv4(cidr),
        ec2.Port.tcp(PRODUCTION_PORT),
        `clients in ${cidr}`,
      );
    }
    loadBalancerGroup.addIngressRule(
      smokeGroup,
      ec2.Port.tcp(TEST_PORT),
      "the smoke test, to the test listener",
    );
    smokeGroup.addEgressRule(loadBalancerGroup, ec2.Port.tcp(TEST_PORT), "the test listener");

    // ---- Load balancer -----------------------------------------------------------------
    // Internal: the production listener serves clients inside the VPC (or peered with it),
    // and the test listener must never be reachable from outside.
    const loadBalancer = new elbv2.ApplicationLoadBalancer(this, "LoadBalancer", {
      loadBalancerName: names.loadBalancer,
      vpc,
      vpcSubnets: publicSubnets,
      internetFacing: false,
      securityGroup: loadBalancerGroup,
      dropInvalidHeaderFields: true,
      deletionProtection: settings.retainData,
    });
    waive(loadBalancer, {
      tool: "checkov",
      id: "CKV_AWS_91",
      reason:
        "access logs need an S3 bucket with the region's ELB account in its policy; the request metrics alarm instead",
    });

    const targetGroup = (id: string, name: string) =>
      new elbv2.ApplicationTargetGroup(this, id, {
        targetGroupName: name,
        vpc,
        port: names.containerPort,
        protocol: elbv2.ApplicationProtocol.HTTP,
        targetType: elbv2.TargetType.IP,
        // Longer than the service's drain (2 s grace, then in-flight requests, under 25 s).
        deregistrationDelay: Duration.seconds(30),
        healthCheck: {
          path: "/healthz",
          healthyHttpCodes: "200",
          interval: Duration.seconds(10),
          timeout: Duration.seconds(5),
          healthyThresholdCount: 2,
          unhealthyThresholdCount: 3,
        },
      });
    const blue = targetGroup("BlueTargetGroup", names.blueTargetGroup);
    const green = targetGroup("GreenTargetGroup", names.greenTargetGroup);

    // Each listener forwards through one rule with both target groups: ECS moves the
    // weights between them. The rule holds only a forward action (ECS fails a deployment
    // on a rule that mixes forward with other actions); anything else gets a 404.
    const listener = (id: string, port: number) => {
      const created = loadBalancer.addListener(id, {
        port,
        protocol: elbv2.ApplicationProtocol.HTTP,
        open: false,
        defaultAction: elbv2.ListenerAction.fixedResponse(404, {
          contentType: "text/plain",
          messageBody: "no route",
        }),
      });
      for (const check of ["CKV_AWS_2", "CKV_AWS_103"]) {
        waive(created, {
          tool: "checkov",
          id: check,
          reason:
            "internal load balancer without a domain or certificate: HTTP stays inside the VPC (README: TLS)",
        });
      }
      return new elbv2.ApplicationListenerRule(this, `${id}Rule`, {
        listener: created,
        priority: 1,
        conditions: [elbv2.ListenerCondition.pathPatterns(["/*"])],
        action: elbv2.ListenerAction.weightedForward([
          { targetGroup: blue, weight: 100 },
          { targetGroup: green, weight: 0 },
        ]),
      });
    };
    const productionRule = listener("ProductionListener", PRODUCTION_PORT);
    const testRule = listener("TestListener", TEST_PORT);

    // ---- Alarms and dashboard ----------------------------------------------------------
    new ReleaseMonitoring(this, "Monitoring", { names, loadBalancer, settings: settings.alarms });

    // ---- Smoke test --------------------------------------------------------------------
    const smokeEntry = join(props.smokeTestCodeDir, "index.mjs");
    if (!existsSync(smokeEntry)) {
      throw new ConfigurationError(
        `the smoke-test Lambda bundle ${smokeEntry} is missing: build infra/lambda/smoke-test (its dist/index.mjs) before synthesizing`,
      );
    }
    const smokeLogGroup = this.logGroup("SmokeTestLogs", `/aws/lambda/${names.smokeFunction}`, settings);
    const smokeRole = new iam.Role(this, "SmokeTestRole", {
      roleName: `${names.stackName}-smoke-test`,
      description: `${names.smokeFunction}: logs, and network interfaces in the VPC`,
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      // AWS's policy for Lambda in a VPC: the ENI calls have no resource-level permissions.
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName("service-role/AWSLambdaVPCAccessExecutionRole"),
      ],
    });
    const smokeFunction = new lambda.Function(this, "SmokeTest", {
      functionName: names.smokeFunction,
      description:
        "Smoke test of the green side: /ping, known images through /invocations, contract and latency",
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.X86_64,
      handler: "index.handler",
      code: lambda.Code.fromAsset(props.smokeTestCodeDir),
      timeout: Duration.seconds(settings.smokeTest.timeoutSeconds),
      memorySize: settings.smokeTest.memoryMiB,
      role: smokeRole,
      logGroup: smokeLogGroup,
      // In the VPC to reach the internal test listener; it calls nothing else.
      vpc,
      vpcSubnets: publicSubnets,
      allowPublicSubnet: true,
      securityGroups: [smokeGroup],
      environment: {
        SMOKE_TARGET_URL: `http://${loadBalancer.loadBalancerDnsName}:${TEST_PORT}`,
      },
    });
    const lambdaWaivers: Array<[string, string]> = [
      [
        "CKV_AWS_116",
        "invoked synchronously (the ECS hook, the toolkit): a dead-letter queue only serves async calls",
      ],
      [
        "CKV_AWS_115",
        "reserved concurrency would take from small accounts' shared pool; calls come one per release",
      ],
      ["CKV_AWS_173", "its one variable is the internal test listener's URL, no secret"],
    ];
    for (const [id, reason] of lambdaWaivers) waive(smokeFunction, { tool: "checkov", id, reason });
    waive(smokeFunction, {
      tool: "cfn-lint",
      id: "W3005",
      reason: "the DependsOn on its role is the CDK's own; it repeats the GetAtt's ordering, harmlessly",
    });

    // ---- Roles the deploy passes to AWS ------------------------------------------------
    const taskRole = new iam.Role(this, "TaskRole", {
      roleName: roleNames.taskRoleName,
      description: `${names.service} tasks: the service calls no AWS API (metrics go out as EMF log lines)`,
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
    });
    const executionRole = new iam.Role(this, "TaskExecutionRole", {
      roleName: roleNames.executionRoleName,
      description: `${names.service}: pull the image, write the container's logs`,
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
    });
    repository.grantPull(executionRole);
    const ecsInfrastructureRole = new iam.Role(this, "EcsInfrastructureRole", {
      roleName: roleNames.ecsInfrastructureRoleName,
      description: `${names.service}: ECS moves listener-rule weights between the blue and green target groups`,
      assumedBy: new iam.ServicePrincipal("ecs.amazonaws.com"),
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName("AmazonECSInfrastructureRolePolicyForLoadBalancers"),
      ],
    });
    const hookRole = new iam.Role(this, "SmokeHookRole", {
      roleName: roleNames.hookRoleName,
      description: `${names.service}: ECS invokes the smoke test at POST_TEST_TRAFFIC_SHIFT`,
      assumedBy: new iam.ServicePrincipal("ecs.amazonaws.com"),
    });
    // The L2 hook target only uses a role it is given; the grant is ours to make.
    smokeFunction.grantInvoke(hookRole);
    const sagemakerRole = new iam.Role(this, "SageMakerRole", {
      roleName: roleNames.sagemakerRoleName,
      description: `${names.endpoint}: pull the image, write the container's logs`,
      assumedBy: new iam.ServicePrincipal("sagemaker.amazonaws.com"),
    });
    repository.grantPull(sagemakerRole);
    sagemakerRole.addToPolicy(
      new iam.PolicyStatement({
        sid: "EndpointLogs",
        actions: [
          "logs:CreateLogGroup",
          "logs:CreateLogStream",
          "logs:PutLogEvents",
          "logs:DescribeLogStreams",
        ],
        resources: [
          `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/${names.endpoint}`,
          `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/${names.endpoint}:*`,
        ],
      }),
    );
    sagemakerRole.addToPolicy(
      new iam.PolicyStatement({
        sid: "EndpointMetrics",
        actions: ["cloudwatch:PutMetricData"],
        resources: ["*"],
        conditions: { StringEquals: { "cloudwatch:namespace": "/aws/sagemaker/Endpoints" } },
      }),
    );

    // ---- ECS: cluster, task definition, blue/green service ----------------------------
    const cluster = new ecs.Cluster(this, "Cluster", {
      clusterName: names.cluster,
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const serviceLogGroup = this.logGroup(
      "ServiceLogs",
      `/astrolens/${settings.environment}/inference`,
      settings,
    );
    const taskDefinition = new ecs.FargateTaskDefinition(this, "TaskDefinition", {
      family: names.taskFamily,
      cpu: settings.service.cpu,
      memoryLimitMiB: settings.service.memoryMiB,
      taskRole,
      executionRole,
      // The image keeps only onnxruntime's linux-x64 binaries.
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    taskDefinition.addContainer("Inference", {
      containerName: names.containerName,
      image: ecs.ContainerImage.fromRegistry(repository.repositoryUriForDigest(imageDigest.valueAsString)),
      portMappings: [{ containerPort: names.containerPort, name: "http" }],
      environment: { ASTROLENS_SERVICE_NAME: names.service },
      logging: ecs.LogDrivers.awsLogs({ logGroup: serviceLogGroup, streamPrefix: names.containerName }),
      // The server writes nothing to disk.
      readonlyRootFilesystem: true,
      // SIGTERM: 2 s grace, then in-flight requests finish; the service exits within 25 s.
      stopTimeout: Duration.seconds(30),
      essential: true,
    });
    this.onlyWithImage(taskDefinition, hasImage);

    const service = new ecs.FargateService(this, "Service", {
      serviceName: names.service,
      cluster,
      taskDefinition,
      // The service follows the family's latest revision: the toolkit registers a revision
      // per release, and a stack update never points the service back at CDK's revision.
      taskDefinitionRevision: ecs.TaskDefinitionRevision.LATEST,
      desiredCount: settings.service.desiredCount,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      assignPublicIp: true,
      vpcSubnets: publicSubnets,
      securityGroups: [serviceGroup],
      healthCheckGracePeriod: Duration.seconds(60),
      deploymentController: { type: ecs.DeploymentControllerType.ECS },
      // Green tasks that cannot start fail the deployment in minutes rather than hours.
      circuitBreaker: { enable: true, rollback: true },
      deploymentStrategy: ecs.DeploymentStrategy.BLUE_GREEN,
      bakeTime: Duration.minutes(settings.blueGreen.bakeMinutes),
      deploymentAlarms: { alarmNames: releaseAlarms(names), behavior: ecs.AlarmBehavior.ROLLBACK_ON_ALARM },
      lifecycleHooks: [
        new ecs.DeploymentLifecycleLambdaTarget(smokeFunction, "SmokeTestHook", {
          role: hookRole,
          lifecycleStages: [ecs.DeploymentLifecycleStage.POST_TEST_TRAFFIC_SHIFT],
        }),
      ],
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      enableECSManagedTags: true,
    });
    service
      .loadBalancerTarget({
        containerName: names.containerName,
        containerPort: names.containerPort,
        alternateTarget: new ecs.AlternateTarget("Green", {
          alternateTargetGroup: green,
          productionListener: ecs.ListenerRuleConfiguration.applicationListenerRule(productionRule),
          testListener: ecs.ListenerRuleConfiguration.applicationListenerRule(testRule),
          role: ecsInfrastructureRole,
        }),
      })
      .attachToApplicationTargetGroup(blue);
    this.onlyWithImage(service, hasImage);
    // The L2 hook target leaves out the timeout; without it ECS waits 24 hours for a hook
    // that never answers. Past the timeout, roll back: no verdict is not a pass.
    (service.node.defaultChild as ecs.CfnService).addPropertyOverride(
      "DeploymentConfiguration.LifecycleHooks.0.TimeoutConfiguration",
      { TimeoutInMinutes: settings.blueGreen.hookTimeoutMinutes, Action: "ROLLBACK" },
    );
    waive(service, {
      tool: "cfn-lint",
      id: "W3005",
      reason:
        "the CDK makes the service depend on the listener rules it also references; the repetition is harmless",
    });

    // ---- SageMaker: the same image as a real-time endpoint ----------------------------
    const modelSettings = {
      variant: SAGEMAKER_VARIANT,
      instanceType: settings.sagemaker.instanceType,
      count: settings.sagemaker.initialInstanceCount,
      environment: { ASTROLENS_SERVICE_NAME: names.service },
    };
    // Model and configuration are immutable: a changed setting needs new names, so the
    // name carries a hash of the settings (≤ 63 characters either way).
    const initialName = `${names.stackName}-initial-${createHash("sha256").update(JSON.stringify(modelSettings)).digest("hex").slice(0, 8)}`;
    const model = new sagemaker.CfnModel(this, "InitialModel", {
      modelName: initialName,
      executionRoleArn: sagemakerRole.roleArn,
      // The models travel inside the image: the container needs no network.
      enableNetworkIsolation: true,
      primaryContainer: {
        image: repository.repositoryUriForDigest(imageDigest.valueAsString),
        mode: "SingleModel",
        // The same Service dimension as the ECS tasks: one anomaly-rate alarm watches the
        // model wherever it serves.
        environment: modelSettings.environment,
      },
    });
    const endpointConfig = new sagemaker.CfnEndpointConfig(this, "InitialEndpointConfig", {
      endpointConfigName: initialName,
      productionVariants: [
        {
          variantName: SAGEMAKER_VARIANT,
          modelName: model.attrModelName,
          instanceType: settings.sagemaker.instanceType,
          initialInstanceCount: settings.sagemaker.initialInstanceCount,
          initialVariantWeight: 1,
        },
      ],
    });
    const endpoint = new sagemaker.CfnEndpoint(this, "Endpoint", {
      endpointName: names.endpoint,
      endpointConfigName: endpointConfig.attrEndpointConfigName,
      // Should CloudFormation ever move the endpoint, it does so as the toolkit does:
      // blue/green, watching the SageMaker alarms, rolling back on them.
      deploymentConfig: {
        blueGreenUpdatePolicy: {
          trafficRoutingConfiguration: { type: "ALL_AT_ONCE", waitIntervalInSeconds: 0 },
          terminationWaitInSeconds: Math.min(3600, settings.blueGreen.bakeMinutes * 60),
        },
        autoRollbackConfiguration: {
          alarms: [
            { alarmName: names.alarms.sagemakerInvocation5xx },
            { alarmName: names.alarms.sagemakerModelLatency },
          ],
        },
      },
    });
    for (const resource of [model, endpointConfig, endpoint]) resource.cfnOptions.condition = hasImage;

    // ---- Release ledger and outcomes ---------------------------------------------------
    const ledger = new dynamodb.Table(this, "Ledger", {
      tableName: names.ledgerTable,
      partitionKey: { name: LEDGER_KEY.partition, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_KEY.sort, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: settings.retainData,
      removalPolicy,
    });
    waive(ledger, {
      tool: "checkov",
      id: "CKV_AWS_119",
      reason:
        "encrypted with the AWS-managed aws/dynamodb key; the ledger holds release metadata, no customer data",
    });

    new sns.Topic(this, "ReleaseOutcomes", {
      topicName: names.topic,
      displayName: `AstroLens ${settings.environment} releases`,
      // The AWS-managed key: anyone allowed sns:Publish may use it, no key policy to keep.
      masterKey: kms.Alias.fromAliasName(this, "SnsManagedKey", "alias/aws/sns"),
      enforceSSL: true,
    });

    // ---- GitHub OIDC and the deploy role -----------------------------------------------
    const providerArn = settings.github.createOidcProvider
      ? new iam.OidcProviderNative(this, "GitHubOidcProvider", {
          url: `https://${GITHUB_OIDC_HOST}`,
          clientIds: [GITHUB_OIDC_AUDIENCE],
          // IAM trusts GitHub's certificate authority itself; the thumbprints only satisfy
          // older API validation (GitHub's two published intermediates).
          thumbprints: [
            "6938fd4d98bab03faadb97b34396831e3780aea1",
            "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
          ],
          removalPolicy,
        }).oidcProviderArn
      : `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:oidc-provider/${GITHUB_OIDC_HOST}`;
    const subjects = [
      ...settings.github.branches.map(
        (branch) => `repo:${settings.github.repository}:ref:refs/heads/${branch}`,
      ),
      ...settings.github.environments.map(
        (environment) => `repo:${settings.github.repository}:environment:${environment}`,
      ),
    ];
    const permissions = deployPermissions(
      names,
      roleNames,
      { partition: Aws.PARTITION, region: Aws.REGION, account: Aws.ACCOUNT_ID },
      settings.promotesFrom.map(environmentResources),
    );
    new iam.Role(this, "DeployRole", {
      roleName: names.deployRole,
      description: `GitHub Actions in ${settings.github.repository} release to ${settings.environment}`,
      // Exact subjects, no wildcards: a fork, a pull request or another branch cannot assume it.
      assumedBy: new iam.WebIdentityPrincipal(providerArn, {
        StringEquals: {
          [`${GITHUB_OIDC_HOST}:aud`]: GITHUB_OIDC_AUDIENCE,
          [`${GITHUB_OIDC_HOST}:sub`]: subjects,
        },
      }),
      // A release bakes and may wait for SageMaker's blue/green: allow 2 hours per session.
      maxSessionDuration: Duration.hours(2),
      inlinePolicies: {
        release: new iam.PolicyDocument({
          statements: permissions.map(
            (statement) =>
              new iam.PolicyStatement({
                sid: statement.sid,
                actions: statement.actions,
                resources: statement.resources,
                ...(statement.conditions ? { conditions: statement.conditions } : {}),
              }),
          ),
        }),
      },
    });
  }

  /**
   * The zones from the settings. Without this override, a stack with a concrete account
   * and region asks AWS for the region's zones during synth (a context lookup).
   */
  override get availabilityZones(): string[] {
    return [...this.settings.availabilityZones];
  }

  /** A log group with the environment's retention, deleted with the stack unless the data is kept. */
  private logGroup(id: string, name: string, settings: EnvironmentSettings): logs.LogGroup {
    if (!Object.values(logs.RetentionDays).includes(settings.logRetentionDays)) {
      throw new ConfigurationError(
        `logRetentionDays for "${settings.environment}" must be a retention CloudWatch Logs offers (e.g. 7, 30, 365), got ${settings.logRetentionDays}`,
      );
    }
    const group = new logs.LogGroup(this, id, {
      logGroupName: name,
      retention: settings.logRetentionDays as logs.RetentionDays,
      removalPolicy: settings.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    waive(group, {
      tool: "checkov",
      id: "CKV_AWS_158",
      reason:
        "CloudWatch Logs encrypts every group at rest; a customer key would need a key policy per log group",
    });
    return group;
  }

  /** Puts a resource under the `HasImage` condition. */
  private onlyWithImage(construct: IConstruct, condition: CfnCondition): void {
    const resource = construct.node.defaultChild;
    if (!(resource instanceof CfnResource))
      throw new Error(`${construct.node.path} has no CloudFormation resource`);
    resource.cfnOptions.condition = condition;
  }
}
