import { beforeAll, describe, expect, it } from "vitest";
import { ENVIRONMENTS, environmentResources } from "../../src/environment.ts";
import { deployPermissions, WILDCARD_RESOURCE_ACTIONS } from "../lib/deploy-permissions.ts";
import { DEFAULT_GITHUB_REPOSITORY, resolveSettings } from "../lib/settings.ts";
import { passableRoleNames } from "../lib/stack.ts";
import { type Synthesized, synthesizeAll } from "./fixtures.ts";
import {
  evaluate,
  type PolicyDocument,
  type PseudoParameters,
  type Request,
  type RolePolicies,
  rolePolicies,
} from "./iam-evaluator.ts";

let synth: Synthesized;
beforeAll(() => {
  synth = synthesizeAll();
});

/**
 * Roles other than the deploy role may use `Resource: "*"` only for these actions, each
 * because AWS has no resource to scope it to.
 */
const SERVICE_ROLE_WILDCARDS: Record<string, string> = {
  "ecr:GetAuthorizationToken":
    "the task execution and SageMaker roles log in to pull the image (account-wide token)",
  "cloudwatch:PutMetricData":
    "SageMaker's container metrics; no resource type exists, the namespace is conditioned",
};

/** AWS managed policies we attach, and why (their documents are AWS's, not in the template). */
const MANAGED_POLICIES: Record<string, string> = {
  "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole":
    "the smoke test runs in the VPC: Lambda creates its network interfaces with these calls, which take no resource",
  "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers":
    "ECS's documented policy for moving listener-rule weights in a blue/green deployment",
};

const asList = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

describe.each(ENVIRONMENTS)("IAM in the %s stack", (environment) => {
  const names = environmentResources(environment);
  const settings = resolveSettings(environment);
  // Staging and production synthesize account-agnostic: any account stands in for AWS::AccountId.
  const pseudo: PseudoParameters = {
    partition: "aws",
    region: settings.region,
    account: settings.account ?? "111122223333",
  };
  const { partition, region, account } = pseudo;
  const arn = (service: string, resource: string) =>
    `arn:${partition}:${service}:${region}:${account}:${resource}`;
  const roleArn = (name: string) => `arn:${partition}:iam::${account}:role/${name}`;
  const roles = passableRoleNames(names);
  const other = environmentResources(environment === "production" ? "staging" : "production");

  let all: RolePolicies[];
  let deploy: RolePolicies;
  const allowed = (request: Request) => evaluate(deploy.documents, request);
  beforeAll(() => {
    all = rolePolicies(synth.json[environment], pseudo);
    const found = all.find((role) => role.roleName === names.deployRole);
    if (!found) throw new Error(`no role ${names.deployRole}`);
    deploy = found;
  });

  const statements = (role: RolePolicies) => role.documents.flatMap((document) => document.Statement);

  it("grants no wildcard action anywhere", () => {
    for (const role of all) {
      for (const statement of statements(role)) {
        for (const action of asList(statement.Action)) {
          expect(action, `${role.logicalId} ${statement.Sid ?? ""}`).not.toMatch(/[*?]/);
        }
      }
    }
  });

  it("uses Resource * only for the named actions AWS cannot scope", () => {
    const wildcardActions = (role: RolePolicies) =>
      [
        ...new Set(
          statements(role)
            .filter((statement) => asList(statement.Resource).includes("*"))
            .flatMap((statement) => asList(statement.Action)),
        ),
      ].sort();
    // The deploy role: exactly these, each with its reason in deploy-permissions.ts.
    expect(wildcardActions(deploy)).toEqual([
      "cloudwatch:DescribeAlarms",
      "ecr:GetAuthorizationToken",
      "ecs:DescribeTaskDefinition",
      "ecs:ListTaskDefinitions",
      "ecs:RegisterTaskDefinition",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeLoadBalancers",
    ]);
    expect(Object.keys(WILDCARD_RESOURCE_ACTIONS).sort()).toEqual(wildcardActions(deploy));
    for (const reason of Object.values(WILDCARD_RESOURCE_ACTIONS)) expect(reason.length).toBeGreaterThan(20);
    for (const role of all.filter((candidate) => candidate !== deploy)) {
      for (const action of wildcardActions(role)) {
        expect(
          Object.keys(SERVICE_ROLE_WILDCARDS),
          `${role.roleName ?? role.logicalId}: ${action} on *`,
        ).toContain(action);
      }
    }
    // PutMetricData on * only under its namespace condition.
    const metrics = all
      .flatMap(statements)
      .filter((statement) => asList(statement.Action).includes("cloudwatch:PutMetricData"));
    expect(metrics).toEqual([
      expect.objectContaining({
        Condition: { StringEquals: { "cloudwatch:namespace": "/aws/sagemaker/Endpoints" } },
      }),
    ]);
  });

  it("attaches only the two named AWS managed policies, and none to the deploy role", () => {
    expect(deploy.managedPolicyArns).toEqual([]);
    const attached = all
      .flatMap((role) => role.managedPolicyArns.map((policy) => `${role.roleName}: ${policy}`))
      .sort();
    expect(attached).toEqual(
      [
        `${names.stackName}-ecs-infrastructure: arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers`,
        `${names.stackName}-smoke-test: arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole`,
      ].sort(),
    );
    expect(Object.keys(MANAGED_POLICIES).sort()).toEqual(
      attached.map((entry) => entry.split(": ")[1]).sort(),
    );
  });

  it("writes the deploy policy as one statement per purpose, each with its reason", () => {
    const expected = deployPermissions(names, roles, pseudo, settings.promotesFrom.map(environmentResources));
    expect(statements(deploy).map((statement) => statement.Sid)).toEqual(
      expected.map((statement) => statement.sid),
    );
    expect(new Set(expected.map((statement) => statement.sid)).size).toBe(expected.length);
    for (const statement of expected) expect(statement.why.length, statement.sid).toBeGreaterThan(20);
    for (const statement of statements(deploy)) expect(statement.Effect).toBe("Allow");
  });

  it("trusts only GitHub's OIDC tokens for this repository's chosen branches and environments, exactly", () => {
    const trust = deploy.trust.Statement;
    expect(trust).toHaveLength(1);
    const [statement] = trust as [PolicyDocument["Statement"][number] & { Principal: { Federated: string } }];
    expect(statement.Effect).toBe("Allow");
    expect(statement.Action).toBe("sts:AssumeRoleWithWebIdentity");
    expect(statement.Principal.Federated).toBe(
      `arn:aws:iam::${account}:oidc-provider/token.actions.githubusercontent.com`,
    );
    const subjects = [
      ...settings.github.branches.map(
        (branch) => `repo:${DEFAULT_GITHUB_REPOSITORY}:ref:refs/heads/${branch}`,
      ),
      ...settings.github.environments.map((name) => `repo:${DEFAULT_GITHUB_REPOSITORY}:environment:${name}`),
    ];
    // StringEquals only: no StringLike, so no pattern can widen the subjects.
    expect(statement.Condition).toEqual({
      StringEquals: {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": subjects,
      },
    });
    expect(subjects.every((subject) => !/[*?]/.test(subject))).toBe(true);
    const expectedSubjects: Record<string, string[]> = {
      local: ["repo:astrolens/astrolens-release:ref:refs/heads/main"],
      staging: [
        "repo:astrolens/astrolens-release:ref:refs/heads/main",
        "repo:astrolens/astrolens-release:environment:staging",
      ],
      // Production: only jobs in the protected "production" GitHub environment, never a plain push.
      production: ["repo:astrolens/astrolens-release:environment:production"],
    };
    expect(subjects).toEqual(expectedSubjects[environment]);

    // The same document, evaluated: which GitHub tokens does it admit?
    const admits = (sub: string, aud = "sts.amazonaws.com") =>
      evaluate([{ Statement: trust.map((entry) => ({ ...entry, Principal: undefined, Resource: "*" })) }], {
        action: "sts:AssumeRoleWithWebIdentity",
        resource: "*",
        context: {
          "token.actions.githubusercontent.com:sub": sub,
          "token.actions.githubusercontent.com:aud": aud,
        },
      }) === "allowed";
    for (const subject of subjects) expect(admits(subject), subject).toBe(true);
    const repo = DEFAULT_GITHUB_REPOSITORY;
    for (const stranger of [
      `repo:${repo}:pull_request`,
      `repo:${repo}:ref:refs/heads/feature`,
      `repo:${repo}:ref:refs/tags/v1`,
      `repo:${repo}:environment:sandbox`,
      `repo:someone/astrolens-release:ref:refs/heads/main`,
      `repo:${repo}:ref:refs/heads/main-evil`,
    ]) {
      expect(admits(stranger), stranger).toBe(false);
    }
    expect(admits(subjects[0] as string, "sigstore")).toBe(false);
  });

  it("lets each service role be assumed by its service only", () => {
    const principals = Object.fromEntries(
      all
        .filter((role) => role.roleName && role !== deploy)
        .map((role) => [role.roleName, role.trust.Statement.map((statement) => statement.Principal)]),
    );
    expect(principals).toEqual({
      [roles.taskRoleName]: [{ Service: "ecs-tasks.amazonaws.com" }],
      [roles.executionRoleName]: [{ Service: "ecs-tasks.amazonaws.com" }],
      [roles.ecsInfrastructureRoleName]: [{ Service: "ecs.amazonaws.com" }],
      [roles.hookRoleName]: [{ Service: "ecs.amazonaws.com" }],
      [roles.sagemakerRoleName]: [{ Service: "sagemaker.amazonaws.com" }],
      [`${names.stackName}-smoke-test`]: [{ Service: "lambda.amazonaws.com" }],
    });
  });

  describe("the deploy role can make every call the toolkit makes", () => {
    const repository = arn("ecr", `repository/${names.ecrRepository}`);
    const service = arn("ecs", `service/${names.cluster}/${names.service}`);
    const deployment = arn("ecs", `service-deployment/${names.cluster}/${names.service}/b4Yq9pQd2x`);
    const model = `${names.stackName}-0123456789ab-5f3c2a1d`;
    const calls: Request[] = [
      { action: "ecr:GetAuthorizationToken", resource: "*" },
      ...[
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:DescribeImages",
        "ecr:DescribeRepositories",
      ].map((action) => ({ action, resource: repository })),
      { action: "ecs:RegisterTaskDefinition", resource: "*" },
      { action: "ecs:DescribeTaskDefinition", resource: "*" },
      { action: "ecs:ListTaskDefinitions", resource: "*" },
      { action: "elasticloadbalancing:DescribeListeners", resource: "*" },
      { action: "elasticloadbalancing:DescribeLoadBalancers", resource: "*" },
      {
        action: "ecs:TagResource",
        resource: arn("ecs", `task-definition/${names.taskFamily}:7`),
        context: { "ecs:CreateAction": "RegisterTaskDefinition" },
      },
      { action: "sagemaker:AddTags", resource: arn("sagemaker", `model/${model}`) },
      { action: "sagemaker:AddTags", resource: arn("sagemaker", `endpoint-config/${model}`) },
      { action: "ecs:DescribeServices", resource: service },
      { action: "ecs:UpdateService", resource: service },
      { action: "ecs:ListServiceDeployments", resource: service },
      { action: "ecs:DescribeServiceDeployments", resource: deployment },
      { action: "ecs:StopServiceDeployment", resource: deployment },
      ...[roles.taskRoleName, roles.executionRoleName].map((role) => ({
        action: "iam:PassRole",
        resource: roleArn(role),
        context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" },
      })),
      ...[roles.ecsInfrastructureRoleName, roles.hookRoleName].map((role) => ({
        action: "iam:PassRole",
        resource: roleArn(role),
        context: { "iam:PassedToService": "ecs.amazonaws.com" },
      })),
      {
        action: "iam:PassRole",
        resource: roleArn(roles.sagemakerRoleName),
        context: { "iam:PassedToService": "sagemaker.amazonaws.com" },
      },
      { action: "sagemaker:CreateModel", resource: arn("sagemaker", `model/${model}`) },
      { action: "sagemaker:DescribeModel", resource: arn("sagemaker", `model/${model}`) },
      { action: "sagemaker:CreateEndpointConfig", resource: arn("sagemaker", `endpoint-config/${model}`) },
      { action: "sagemaker:DescribeEndpointConfig", resource: arn("sagemaker", `endpoint-config/${model}`) },
      { action: "sagemaker:DescribeEndpoint", resource: arn("sagemaker", `endpoint/${names.endpoint}`) },
      { action: "sagemaker:UpdateEndpoint", resource: arn("sagemaker", `endpoint/${names.endpoint}`) },
      { action: "sagemaker:UpdateEndpoint", resource: arn("sagemaker", `endpoint-config/${model}`) },
      { action: "sagemaker:InvokeEndpoint", resource: arn("sagemaker", `endpoint/${names.endpoint}`) },
      { action: "cloudwatch:DescribeAlarms", resource: "*" },
      ...Object.values(names.alarms).map((alarm) => ({
        action: "cloudwatch:DescribeAlarmHistory",
        resource: arn("cloudwatch", `alarm:${alarm}`),
      })),
      { action: "lambda:InvokeFunction", resource: arn("lambda", `function:${names.smokeFunction}`) },
      { action: "lambda:GetFunction", resource: arn("lambda", `function:${names.smokeFunction}`) },
      ...["GetItem", "PutItem", "UpdateItem", "Query", "DeleteItem"].map((verb) => ({
        action: `dynamodb:${verb}`,
        resource: arn("dynamodb", `table/${names.ledgerTable}`),
      })),
      { action: "sns:Publish", resource: arn("sns", names.topic) },
      {
        action: "cloudformation:DescribeStacks",
        resource: arn("cloudformation", `stack/${names.stackName}/5c3f3e60-8a1b-11ef-9c4d-0a1b2c3d4e5f`),
      },
    ];
    it.each(calls.map((call) => [`${call.action} on ${call.resource}`, call] as const))("%s", (_, call) => {
      expect(allowed(call)).toBe("allowed");
    });
  });

  it(`pulls only from the environments it promotes from (${settings.promotesFrom.join(", ") || "none"})`, () => {
    for (const source of ENVIRONMENTS.filter((e) => e !== environment)) {
      const repository = arn("ecr", `repository/${environmentResources(source).ecrRepository}`);
      const expected = settings.promotesFrom.includes(source) ? "allowed" : "implicitly denied";
      for (const action of ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]) {
        expect(allowed({ action, resource: repository }), `${action} on ${source}`).toBe(expected);
      }
    }
  });

  describe("the deploy role cannot do what it should not", () => {
    const repository = arn("ecr", `repository/${names.ecrRepository}`);
    const service = arn("ecs", `service/${names.cluster}/${names.service}`);
    const refused: Array<[string, Request]> = [
      ["delete the repository", { action: "ecr:DeleteRepository", resource: repository }],
      ["create repositories (the stack owns them)", { action: "ecr:CreateRepository", resource: repository }],
      ["delete images", { action: "ecr:BatchDeleteImage", resource: repository }],
      ["change the repository policy", { action: "ecr:SetRepositoryPolicy", resource: repository }],
      ["change the lifecycle policy", { action: "ecr:PutLifecyclePolicy", resource: repository }],
      [
        "push to another environment's repository",
        { action: "ecr:PutImage", resource: arn("ecr", `repository/${other.ecrRepository}`) },
      ],
      [
        "upload layers to another environment's repository, even one it promotes from",
        { action: "ecr:InitiateLayerUpload", resource: arn("ecr", `repository/${other.ecrRepository}`) },
      ],
      [
        "pass an unrelated role",
        {
          action: "iam:PassRole",
          resource: roleArn("admin"),
          context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" },
        },
      ],
      [
        "pass the task role to Lambda",
        {
          action: "iam:PassRole",
          resource: roleArn(roles.taskRoleName),
          context: { "iam:PassedToService": "lambda.amazonaws.com" },
        },
      ],
      [
        "pass the SageMaker role to ECS tasks",
        {
          action: "iam:PassRole",
          resource: roleArn(roles.sagemakerRoleName),
          context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" },
        },
      ],
      [
        "pass a role with no receiving service named",
        { action: "iam:PassRole", resource: roleArn(roles.taskRoleName) },
      ],
      [
        "pass its own role",
        {
          action: "iam:PassRole",
          resource: roleArn(names.deployRole),
          context: { "iam:PassedToService": "ecs.amazonaws.com" },
        },
      ],
      ["create roles", { action: "iam:CreateRole", resource: roleArn("anything") }],
      [
        "update a service on another cluster",
        { action: "ecs:UpdateService", resource: arn("ecs", `service/other/${names.service}`) },
      ],
      [
        "update another environment's service",
        { action: "ecs:UpdateService", resource: arn("ecs", `service/${other.cluster}/${other.service}`) },
      ],
      ["delete the service", { action: "ecs:DeleteService", resource: service }],
      ["create services", { action: "ecs:CreateService", resource: service }],
      ["run tasks", { action: "ecs:RunTask", resource: "*" }],
      [
        "retag an existing task definition",
        { action: "ecs:TagResource", resource: arn("ecs", `task-definition/${names.taskFamily}:7`) },
      ],
      [
        "tag another family's revisions",
        {
          action: "ecs:TagResource",
          resource: arn("ecs", `task-definition/${other.taskFamily}:7`),
          context: { "ecs:CreateAction": "RegisterTaskDefinition" },
        },
      ],
      [
        "tag the endpoint",
        { action: "sagemaker:AddTags", resource: arn("sagemaker", `endpoint/${names.endpoint}`) },
      ],
      [
        "move listener weights itself",
        {
          action: "elasticloadbalancing:ModifyRule",
          resource: arn("elasticloadbalancing", "listener-rule/app/x/y/z/w"),
        },
      ],
      ["deregister task definitions", { action: "ecs:DeregisterTaskDefinition", resource: "*" }],
      [
        "stop another environment's deployment",
        {
          action: "ecs:StopServiceDeployment",
          resource: arn("ecs", `service-deployment/${other.cluster}/${other.service}/x`),
        },
      ],
      [
        "delete the endpoint",
        { action: "sagemaker:DeleteEndpoint", resource: arn("sagemaker", `endpoint/${names.endpoint}`) },
      ],
      [
        "update another environment's endpoint",
        { action: "sagemaker:UpdateEndpoint", resource: arn("sagemaker", `endpoint/${other.endpoint}`) },
      ],
      [
        "create a model outside its prefix",
        { action: "sagemaker:CreateModel", resource: arn("sagemaker", `model/${names.stackName}x-model`) },
      ],
      [
        "invoke another endpoint",
        { action: "sagemaker:InvokeEndpoint", resource: arn("sagemaker", `endpoint/${other.endpoint}`) },
      ],
      [
        "silence an alarm",
        {
          action: "cloudwatch:SetAlarmState",
          resource: arn("cloudwatch", `alarm:${names.alarms.anomalyRate}`),
        },
      ],
      [
        "delete alarms",
        {
          action: "cloudwatch:DeleteAlarms",
          resource: arn("cloudwatch", `alarm:${names.alarms.anomalyRate}`),
        },
      ],
      [
        "rewrite an alarm",
        {
          action: "cloudwatch:PutMetricAlarm",
          resource: arn("cloudwatch", `alarm:${names.alarms.anomalyRate}`),
        },
      ],
      [
        "replace the smoke test's code",
        { action: "lambda:UpdateFunctionCode", resource: arn("lambda", `function:${names.smokeFunction}`) },
      ],
      [
        "invoke other functions",
        { action: "lambda:InvokeFunction", resource: arn("lambda", `function:${other.smokeFunction}`) },
      ],
      [
        "delete the ledger",
        { action: "dynamodb:DeleteTable", resource: arn("dynamodb", `table/${names.ledgerTable}`) },
      ],
      [
        "scan the ledger",
        { action: "dynamodb:Scan", resource: arn("dynamodb", `table/${names.ledgerTable}`) },
      ],
      [
        "write another environment's ledger",
        { action: "dynamodb:PutItem", resource: arn("dynamodb", `table/${other.ledgerTable}`) },
      ],
      ["publish elsewhere", { action: "sns:Publish", resource: arn("sns", other.topic) }],
      ["subscribe to the topic", { action: "sns:Subscribe", resource: arn("sns", names.topic) }],
      [
        "delete the stack",
        {
          action: "cloudformation:DeleteStack",
          resource: arn("cloudformation", `stack/${names.stackName}/x`),
        },
      ],
      [
        "update the stack",
        {
          action: "cloudformation:UpdateStack",
          resource: arn("cloudformation", `stack/${names.stackName}/x`),
        },
      ],
      [
        "read another stack",
        {
          action: "cloudformation:DescribeStacks",
          resource: arn("cloudformation", `stack/${other.stackName}/x`),
        },
      ],
    ];
    it.each(refused)("cannot %s", (_, request) => {
      expect(allowed(request)).toBe("implicitly denied");
    });
  });

  it("lets ECS's hook role invoke the smoke test and nothing else", () => {
    const hook = all.find((role) => role.roleName === roles.hookRoleName) as RolePolicies;
    const fn = arn("lambda", `function:${names.smokeFunction}`);
    expect(evaluate(hook.documents, { action: "lambda:InvokeFunction", resource: fn })).toBe("allowed");
    expect(evaluate(hook.documents, { action: "lambda:InvokeFunction", resource: `${fn}:live` })).toBe(
      "allowed",
    );
    expect(
      evaluate(hook.documents, {
        action: "lambda:InvokeFunction",
        resource: arn("lambda", `function:${other.smokeFunction}`),
      }),
    ).toBe("implicitly denied");
    expect(evaluate(hook.documents, { action: "lambda:UpdateFunctionCode", resource: fn })).toBe(
      "implicitly denied",
    );
  });

  it("lets the task execution and SageMaker roles pull this repository's images only", () => {
    for (const name of [roles.executionRoleName, roles.sagemakerRoleName]) {
      const role = all.find((candidate) => candidate.roleName === name) as RolePolicies;
      const repository = arn("ecr", `repository/${names.ecrRepository}`);
      expect(evaluate(role.documents, { action: "ecr:BatchGetImage", resource: repository })).toBe("allowed");
      expect(evaluate(role.documents, { action: "ecr:PutImage", resource: repository })).toBe(
        "implicitly denied",
      );
      expect(
        evaluate(role.documents, {
          action: "ecr:BatchGetImage",
          resource: arn("ecr", `repository/${other.ecrRepository}`),
        }),
      ).toBe("implicitly denied");
    }
    const task = all.find((candidate) => candidate.roleName === roles.taskRoleName) as RolePolicies;
    expect(task.documents).toEqual([]);
  });
});
