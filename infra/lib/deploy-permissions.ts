import type { EnvironmentResources } from "../../src/environment.ts";

/**
 * What the GitHub deploy role may do: exactly the calls the toolkit makes, on this
 * environment's resources. One statement per purpose, each saying why. Every ARN is built
 * from the naming contract, so the IAM tests can evaluate the policy against the ARNs the
 * toolkit will really call, and a reviewer can read it without resolving references.
 */
export interface PermissionStatement {
  sid: string;
  /** Why the toolkit needs it (kept beside the statement, and checked non-empty by a test). */
  why: string;
  actions: string[];
  resources: string[];
  /** IAM condition block, operator -> key -> value(s). */
  conditions?: Record<string, Record<string, string | string[]>>;
}

/**
 * Actions AWS only authorizes on `Resource: "*"`: they have no resource type in the
 * Service Authorization Reference, so a narrower ARN would simply deny them. Each is
 * allowed on `*` for this reason and no other; the tests name every one of them.
 */
export const WILDCARD_RESOURCE_ACTIONS: Readonly<Record<string, string>> = {
  "ecr:GetAuthorizationToken": "the registry login token is account-wide; ECR has no resource to scope it to",
  "ecs:RegisterTaskDefinition":
    "a task definition has no ARN until it is registered; ECS authorizes the call on * only",
  "ecs:DescribeTaskDefinition": "ECS defines no resource type for DescribeTaskDefinition",
  "ecs:ListTaskDefinitions": "a list call: ECS authorizes it on * only",
  "elasticloadbalancing:DescribeListeners": "ELB's Describe calls take no resource-level permissions",
  "elasticloadbalancing:DescribeLoadBalancers": "ELB's Describe calls take no resource-level permissions",
  "cloudwatch:DescribeAlarms": "DescribeAlarms is a list call; CloudWatch authorizes it on * only",
};

/** The roles the toolkit hands to AWS services, and which service may receive each. */
export interface PassableRoles {
  taskRoleName: string;
  executionRoleName: string;
  ecsInfrastructureRoleName: string;
  hookRoleName: string;
  sagemakerRoleName: string;
}

/** The pseudo parameters as strings: tokens in the stack, real values in tests. */
export interface ArnContext {
  partition: string;
  region: string;
  account: string;
}

/** The statements of the deploy role's policy for one environment. */
export function deployPermissions(
  names: EnvironmentResources,
  roles: PassableRoles,
  { partition, region, account }: ArnContext,
  /** Environments whose repositories this one promotes images from (read only). */
  promotesFrom: EnvironmentResources[] = [],
): PermissionStatement[] {
  const arn = (service: string, resource: string) =>
    `arn:${partition}:${service}:${region}:${account}:${resource}`;
  const roleArn = (name: string) => `arn:${partition}:iam::${account}:role/${name}`;
  const repository = arn("ecr", `repository/${names.ecrRepository}`);
  const service = arn("ecs", `service/${names.cluster}/${names.service}`);
  // `astrolens-<env>-` rather than `astrolens-<env>*`: with the hyphen, an environment
  // called "prod" could never reach "production"'s models.
  const sagemakerPrefix = `${names.stackName}-`;

  return [
    {
      sid: "EcrLogin",
      why: "push-image and promote-image log skopeo in to the registry",
      actions: ["ecr:GetAuthorizationToken"],
      resources: ["*"],
    },
    {
      sid: "EcrPushImage",
      why: "push-image uploads the layers and manifest of a scanned image (skopeo copy)",
      actions: [
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
      ],
      resources: [repository],
    },
    {
      sid: "EcrReadImage",
      why: "push-image checks the repository and the digest ECR reports; promote-image reads the image back",
      actions: [
        "ecr:DescribeRepositories",
        "ecr:DescribeImages",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ],
      resources: [repository],
    },
    ...(promotesFrom.length > 0
      ? [
          {
            sid: "EcrPullPromotionSource",
            why: "promote-image copies an image already released there, byte for byte, into this environment's repository",
            actions: [
              "ecr:DescribeImages",
              "ecr:BatchGetImage",
              "ecr:GetDownloadUrlForLayer",
              "ecr:BatchCheckLayerAvailability",
            ],
            resources: promotesFrom.map((source) => arn("ecr", `repository/${source.ecrRepository}`)),
          },
        ]
      : []),
    {
      sid: "EcsTaskDefinitions",
      why: "deploy copies the latest revision of the family, reuses an identical one, or registers one with the release's digest",
      actions: ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
      resources: ["*"],
    },
    {
      sid: "EcsTagTaskDefinitions",
      why: "a revision is registered with its release-key tag; ECS authorizes tags given at creation as ecs:TagResource",
      actions: ["ecs:TagResource"],
      resources: [arn("ecs", `task-definition/${names.taskFamily}:*`)],
      conditions: { StringEquals: { "ecs:CreateAction": "RegisterTaskDefinition" } },
    },
    {
      sid: "EcsService",
      why: "deploy reads the service, starts the blue/green deployment and lists its deployments",
      actions: ["ecs:DescribeServices", "ecs:UpdateService", "ecs:ListServiceDeployments"],
      resources: [service],
    },
    {
      sid: "EcsServiceDeployments",
      why: "watch follows the deployment's stages; rollback stops it (ROLLBACK) when the other target fails",
      actions: ["ecs:DescribeServiceDeployments", "ecs:StopServiceDeployment"],
      resources: [arn("ecs", `service-deployment/${names.cluster}/${names.service}/*`)],
    },
    {
      sid: "FindTestListener",
      why: "deploy finds the test listener's URL from the service's test listener rule (src/deploy/ecs.ts)",
      actions: ["elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancers"],
      resources: ["*"],
    },
    {
      sid: "PassTaskRoles",
      why: "RegisterTaskDefinition names the task and execution roles; only ECS tasks may receive them",
      actions: ["iam:PassRole"],
      resources: [roleArn(roles.taskRoleName), roleArn(roles.executionRoleName)],
      conditions: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
    },
    {
      sid: "PassEcsDeploymentRoles",
      why: "UpdateService carries the blue/green load-balancer role and the lifecycle-hook role; only ECS may receive them",
      actions: ["iam:PassRole"],
      resources: [roleArn(roles.ecsInfrastructureRoleName), roleArn(roles.hookRoleName)],
      conditions: { StringEquals: { "iam:PassedToService": "ecs.amazonaws.com" } },
    },
    {
      sid: "PassSageMakerRole",
      why: "CreateModel names the model's execution role; only SageMaker may receive it",
      actions: ["iam:PassRole"],
      resources: [roleArn(roles.sagemakerRoleName)],
      conditions: { StringEquals: { "iam:PassedToService": "sagemaker.amazonaws.com" } },
    },
    {
      sid: "SageMakerReleaseConfig",
      why: "deploy creates a model and endpoint configuration per image digest and model hash, and reads the current ones",
      actions: [
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DescribeModel",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:DescribeEndpoint",
      ],
      resources: [
        arn("sagemaker", `model/${sagemakerPrefix}*`),
        arn("sagemaker", `endpoint-config/${sagemakerPrefix}*`),
        arn("sagemaker", `endpoint/${sagemakerPrefix}*`),
      ],
    },
    {
      sid: "SageMakerTagOnCreate",
      why: "models and endpoint configurations are created with their release-key tag, which SageMaker authorizes as AddTags",
      actions: ["sagemaker:AddTags"],
      resources: [
        arn("sagemaker", `model/${sagemakerPrefix}*`),
        arn("sagemaker", `endpoint-config/${sagemakerPrefix}*`),
      ],
    },
    {
      sid: "SageMakerUpdateEndpoint",
      why: "deploy and rollback move the endpoint to a configuration (blue/green with auto-rollback alarms)",
      actions: ["sagemaker:UpdateEndpoint"],
      resources: [
        arn("sagemaker", `endpoint/${names.endpoint}`),
        arn("sagemaker", `endpoint-config/${sagemakerPrefix}*`),
      ],
    },
    {
      sid: "SageMakerInvoke",
      why: "the release sends the smoke images to the endpoint once it is InService on the new configuration",
      actions: ["sagemaker:InvokeEndpoint"],
      resources: [arn("sagemaker", `endpoint/${names.endpoint}`)],
    },
    {
      sid: "CloudWatchDescribeAlarms",
      why: "watch reads the release alarms' states through the bake",
      actions: ["cloudwatch:DescribeAlarms"],
      resources: ["*"],
    },
    {
      sid: "CloudWatchAlarmHistory",
      why: "a failed release explains itself with the alarm's state-change reason",
      actions: ["cloudwatch:DescribeAlarmHistory"],
      resources: Object.values(names.alarms).map((alarm) => arn("cloudwatch", `alarm:${alarm}`)),
    },
    {
      sid: "InvokeSmokeTest",
      why: "the release looks the smoke test up (its ARN for the hook) and runs it directly, e.g. against the endpoint",
      actions: ["lambda:GetFunction", "lambda:InvokeFunction"],
      resources: [arn("lambda", `function:${names.smokeFunction}`)],
    },
    {
      sid: "ReleaseLedger",
      why: "one ledger item per release, and the per-environment lock item (conditional writes)",
      actions: [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:DeleteItem",
      ],
      resources: [arn("dynamodb", `table/${names.ledgerTable}`)],
    },
    {
      sid: "ReleaseOutcomes",
      why: "the release publishes its outcome; a rollback alerts",
      actions: ["sns:Publish"],
      resources: [arn("sns", names.topic)],
    },
    {
      sid: "StackOutputs",
      why: "status and deploy read this environment's stack (outputs and state)",
      actions: ["cloudformation:DescribeStacks"],
      resources: [arn("cloudformation", `stack/${names.stackName}/*`)],
    },
  ];
}
