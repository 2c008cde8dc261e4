/**
 * A small, honest IAM policy evaluator for the synthesized templates: enough of IAM's
 * identity-policy logic to ask "may this role make this call on this ARN?" of the
 * policy documents CloudFormation will create — and loud about anything it does not model
 * (NotAction, NotResource, unknown condition operators, references it cannot resolve),
 * so a test can never pass because the evaluator skipped something.
 *
 * Modelled: Action and Resource matching with `*` and `?` (actions case-insensitively,
 * resources case-sensitively), explicit Deny over Allow over the implicit deny, and the
 * condition operators StringEquals, StringLike, StringNotEquals, ArnEquals, ArnLike and Bool
 * (a key absent from the request fails the condition, as in IAM).
 * Not modelled: permission boundaries, SCPs, resource policies, session policies.
 */

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action?: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
  NotAction?: unknown;
  NotResource?: unknown;
  Principal?: unknown;
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement[];
}

export interface Request {
  action: string;
  /** The ARN the call is authorized on, or "*" for actions without a resource type. */
  resource: string;
  /** Condition keys of the request, e.g. {"iam:PassedToService": "ecs-tasks.amazonaws.com"}. */
  context?: Record<string, string>;
}

export type Decision = "allowed" | "explicitly denied" | "implicitly denied";

const asList = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** IAM's wildcard match: `*` any run of characters, `?` exactly one. */
export function wildcardMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const escaped = pattern
    .split("")
    .map((char) => (char === "*" ? ".*" : char === "?" ? "." : char.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${escaped}$`, ignoreCase ? "si" : "s").test(value);
}

function conditionHolds(condition: PolicyStatement["Condition"], context: Record<string, string>): boolean {
  if (!condition) return true;
  const lowerContext = new Map(Object.entries(context).map(([key, value]) => [key.toLowerCase(), value]));
  return Object.entries(condition).every(([operator, entries]) =>
    Object.entries(entries).every(([key, expected]) => {
      const actual = lowerContext.get(key.toLowerCase());
      const values = asList(expected).map(String);
      switch (operator) {
        case "StringEquals":
        case "ArnEquals":
          return actual !== undefined && values.includes(actual);
        case "StringNotEquals":
          return actual !== undefined && !values.includes(actual);
        case "StringLike":
        case "ArnLike":
          return actual !== undefined && values.some((pattern) => wildcardMatch(pattern, actual, false));
        case "Bool":
          return actual !== undefined && values.includes(actual.toLowerCase());
        default:
          throw new Error(`iam evaluator: condition operator ${operator} is not modelled`);
      }
    }),
  );
}

function statementApplies(statement: PolicyStatement, request: Request): boolean {
  if (statement.NotAction !== undefined || statement.NotResource !== undefined) {
    throw new Error(
      `iam evaluator: statement ${statement.Sid ?? "(no Sid)"} uses NotAction/NotResource, not modelled`,
    );
  }
  const actions = asList(statement.Action);
  const resources = asList(statement.Resource);
  if (actions.length === 0 || resources.length === 0) {
    throw new Error(`iam evaluator: statement ${statement.Sid ?? "(no Sid)"} has no Action or no Resource`);
  }
  return (
    actions.some((action) => wildcardMatch(action, request.action, true)) &&
    resources.some((resource) => wildcardMatch(resource, request.resource, false)) &&
    conditionHolds(statement.Condition, request.context ?? {})
  );
}

/** What IAM decides for `request` under these identity policies. */
export function evaluate(documents: PolicyDocument[], request: Request): Decision {
  const statements = documents.flatMap((document) => document.Statement);
  const applying = statements.filter((statement) => statementApplies(statement, request));
  if (applying.some((statement) => statement.Effect === "Deny")) return "explicitly denied";
  if (applying.some((statement) => statement.Effect === "Allow")) return "allowed";
  return "implicitly denied";
}

// ---- Reading policies out of a synthesized template -----------------------------------

export interface TemplateJson {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; Condition?: string }>;
}

export interface PseudoParameters {
  partition: string;
  region: string;
  account: string;
}

/**
 * Resolves the intrinsic functions the IAM documents use into plain strings: pseudo
 * parameters, Fn::Join, and Ref / Fn::GetAtt …Arn of the few resource types whose ARN
 * follows from their physical name. Anything else throws.
 */
export function resolveIntrinsics(value: unknown, template: TemplateJson, pseudo: PseudoParameters): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, template, pseudo));
  if (value === null || typeof value !== "object") return value;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length === 1 && keys[0] === "Ref") return resolveRef(String(object.Ref), template, pseudo);
  if (keys.length === 1 && keys[0] === "Fn::Join") {
    const [separator, parts] = object["Fn::Join"] as [string, unknown[]];
    return parts.map((part) => String(resolveIntrinsics(part, template, pseudo))).join(separator);
  }
  if (keys.length === 1 && keys[0] === "Fn::GetAtt") {
    const [logicalId, attribute] = object["Fn::GetAtt"] as [string, string];
    if (attribute !== "Arn")
      throw new Error(`iam evaluator: cannot resolve Fn::GetAtt ${logicalId}.${attribute}`);
    return arnOf(logicalId, template, pseudo);
  }
  if (keys.some((key) => key.startsWith("Fn::"))) {
    throw new Error(`iam evaluator: cannot resolve ${JSON.stringify(object).slice(0, 120)}`);
  }
  return Object.fromEntries(keys.map((key) => [key, resolveIntrinsics(object[key], template, pseudo)]));
}

function resolveRef(name: string, template: TemplateJson, pseudo: PseudoParameters): string {
  if (name === "AWS::Partition") return pseudo.partition;
  if (name === "AWS::Region") return pseudo.region;
  if (name === "AWS::AccountId") return pseudo.account;
  const resource = template.Resources[name];
  // Ref of these types is their ARN (an SNS topic, an OIDC provider).
  if (resource?.Type === "AWS::SNS::Topic" || resource?.Type === "AWS::IAM::OIDCProvider") {
    return arnOf(name, template, pseudo);
  }
  throw new Error(`iam evaluator: cannot resolve Ref ${name}`);
}

function arnOf(
  logicalId: string,
  template: TemplateJson,
  { partition, region, account }: PseudoParameters,
): string {
  const resource = template.Resources[logicalId];
  if (!resource) throw new Error(`iam evaluator: no resource ${logicalId}`);
  const properties = resource.Properties ?? {};
  const named = (property: string): string => {
    const name = properties[property];
    if (typeof name !== "string") throw new Error(`iam evaluator: ${logicalId} has no literal ${property}`);
    return name;
  };
  switch (resource.Type) {
    case "AWS::ECR::Repository":
      return `arn:${partition}:ecr:${region}:${account}:repository/${named("RepositoryName")}`;
    case "AWS::Logs::LogGroup":
      return `arn:${partition}:logs:${region}:${account}:log-group:${named("LogGroupName")}:*`;
    case "AWS::Lambda::Function":
      return `arn:${partition}:lambda:${region}:${account}:function:${named("FunctionName")}`;
    case "AWS::IAM::Role":
      return `arn:${partition}:iam::${account}:role/${named("RoleName")}`;
    case "AWS::SNS::Topic":
      return `arn:${partition}:sns:${region}:${account}:${named("TopicName")}`;
    case "AWS::DynamoDB::Table":
      return `arn:${partition}:dynamodb:${region}:${account}:table/${named("TableName")}`;
    case "AWS::IAM::OIDCProvider":
      return `arn:${partition}:iam::${account}:oidc-provider/${named("Url").replace(/^https:\/\//, "")}`;
    default:
      throw new Error(`iam evaluator: no ARN rule for ${resource.Type} (${logicalId})`);
  }
}

export interface RolePolicies {
  logicalId: string;
  roleName: string | undefined;
  trust: PolicyDocument;
  /** Inline policies and AWS::IAM::Policy resources attached to the role, intrinsics resolved. */
  documents: PolicyDocument[];
  /** Managed policy ARNs (not evaluated: their documents are not in the template). */
  managedPolicyArns: string[];
}

/** Every role in the template with the policy documents that apply to it. */
export function rolePolicies(template: TemplateJson, pseudo: PseudoParameters): RolePolicies[] {
  const resolve = <T>(value: unknown) => resolveIntrinsics(value, template, pseudo) as T;
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === "AWS::IAM::Role")
    .map(([logicalId, resource]) => {
      const properties = resource.Properties ?? {};
      const inline = asList(properties.Policies as Array<{ PolicyDocument: unknown }> | undefined).map(
        (policy) => resolve<PolicyDocument>(policy.PolicyDocument),
      );
      const attached = Object.values(template.Resources)
        .filter(
          (other) =>
            other.Type === "AWS::IAM::Policy" &&
            asList(other.Properties?.Roles as unknown[] | undefined).some(
              (role) => (role as { Ref?: string }).Ref === logicalId,
            ),
        )
        .map((policy) => resolve<PolicyDocument>(policy.Properties?.PolicyDocument));
      return {
        logicalId,
        roleName: typeof properties.RoleName === "string" ? properties.RoleName : undefined,
        trust: resolve<PolicyDocument>(properties.AssumeRolePolicyDocument),
        documents: [...inline, ...attached],
        managedPolicyArns: asList(properties.ManagedPolicyArns as unknown[] | undefined).map((arn) =>
          String(resolve(arn)),
        ),
      };
    });
}
