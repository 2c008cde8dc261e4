import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
  type Stack,
  UpdateStackCommand,
} from "@aws-sdk/client-cloudformation";
import {
  CloudWatchClient,
  PutMetricAlarmCommand,
  type PutMetricAlarmCommandInput,
} from "@aws-sdk/client-cloudwatch";
import { CreateBucketCommand, HeadBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { zipSync } from "fflate";
import { type AwsOptions, awsErrorName, createClient } from "../aws/clients.js";
import { ConfigurationError, withContext } from "../errors.js";
import type { Logger } from "../gh/logger.js";

/**
 * The local AWS takes the shape of a real environment: the CDK app's synthesized
 * template is created through moto's CloudFormation, and the resource types moto's
 * CloudFormation skips without a word (`AWS::CloudWatch::Alarm` above all) are created
 * through the SDK from the same template, so a local release deploys into the same
 * names, alarms and wiring as production.
 */

/** The CloudFormation template shape we read (JSON, as `cdk synth` writes it). */
export interface Template {
  Parameters?: Record<string, { Default?: unknown }>;
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; Condition?: string }>;
  Outputs?: Record<string, { Value: unknown; Description?: string; Export?: unknown }>;
  [key: string]: unknown;
}

/** The CDK cloud assembly's asset manifest (`<stack>.assets.json`), the parts we use. */
export interface AssetManifest {
  files?: Record<
    string,
    {
      source: { path: string; packaging?: "file" | "zip" };
      destinations: Record<string, { bucketName: string; objectKey: string }>;
    }
  >;
  dockerImages?: Record<string, unknown>;
}

/**
 * Types moto's CloudFormation does not implement but the SDK (moto's API) does: the
 * bootstrap creates them itself. Properties of CloudFormation's Alarm are named as
 * PutMetricAlarm's parameters, so they pass through once their intrinsics are resolved.
 */
const CREATED_THROUGH_SDK: Record<string, "alarm"> = { "AWS::CloudWatch::Alarm": "alarm" };

/** A tag on the stack: the template's hash, so a second bootstrap of the same template is a no-op. */
const TEMPLATE_HASH_TAG = "astrolens:template-sha256";
/** Outputs the bootstrap adds to carry values that moto must resolve for SDK-created resources. */
const RESOLVED_OUTPUT_PREFIX = "AstroLensLocalResolved";

export interface BootstrapResult {
  stackName: string;
  /** created, updated, or unchanged (same template hash). */
  action: "created" | "updated" | "unchanged";
  /** Physical ids of the stack's resources, by logical id. */
  resources: Record<string, { type: string; physicalId: string; via: "cloudformation" | "sdk" }>;
  /** Resources of types neither moto's CloudFormation nor the bootstrap creates. */
  notModelled: Array<{ logicalId: string; type: string }>;
  outputs: Record<string, string>;
}

export interface BootstrapOptions {
  stackName: string;
  template: Template;
  /** Where the template's assets are: the cloud assembly folder and its asset manifest. */
  assembly?: { dir: string; manifest: AssetManifest };
  parameters?: Record<string, string>;
  aws?: AwsOptions;
  logger: Logger;
}

/** Creates (or updates, or leaves alone) one environment's stack in the local AWS. */
export async function bootstrapStack(options: BootstrapOptions): Promise<BootstrapResult> {
  const { stackName, logger } = options;
  const cfn = createClient(CloudFormationClient, options.aws);
  const { template, sdkResources } = prepareTemplate(options.template);
  const body = JSON.stringify(template);
  const hash = createHash("sha256")
    .update(body)
    .update(JSON.stringify(options.parameters ?? {}))
    .digest("hex");

  const existing = await describeStack(cfn, stackName);
  let action: BootstrapResult["action"];
  if (existing?.Tags?.some((t) => t.Key === TEMPLATE_HASH_TAG && t.Value === hash)) {
    action = "unchanged";
    logger.info(`stack ${stackName}: unchanged (template ${hash.slice(0, 12)})`);
  } else {
    if (options.assembly) await publishAssets(options.assembly, options.aws, logger);
    const input = {
      StackName: stackName,
      TemplateBody: body,
      Parameters: Object.entries(options.parameters ?? {}).map(([ParameterKey, ParameterValue]) => ({
        ParameterKey,
        ParameterValue,
      })),
      Capabilities: ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"] as const,
      Tags: [{ Key: TEMPLATE_HASH_TAG, Value: hash }],
    };
    try {
      if (existing) {
        await cfn.send(new UpdateStackCommand({ ...input, Capabilities: [...input.Capabilities] }));
        action = "updated";
      } else {
        await cfn.send(new CreateStackCommand({ ...input, Capabilities: [...input.Capabilities] }));
        action = "created";
      }
    } catch (err) {
      throw withContext(`cannot ${existing ? "update" : "create"} stack ${stackName} in the local AWS`, err);
    }
    const stack = await describeStack(cfn, stackName);
    const status = stack?.StackStatus ?? "missing";
    if (!status.endsWith("_COMPLETE") || status.includes("ROLLBACK")) {
      throw new Error(`stack ${stackName} ended ${status}: ${stack?.StackStatusReason ?? "no reason given"}`);
    }
    logger.info(`stack ${stackName}: ${action} through CloudFormation`);
  }

  const stack = (await describeStack(cfn, stackName)) as Stack;
  const outputs: Record<string, string> = {};
  for (const output of stack.Outputs ?? []) {
    if (output.OutputKey && output.OutputValue !== undefined) outputs[output.OutputKey] = output.OutputValue;
  }

  const resources: BootstrapResult["resources"] = {};
  const listed = await cfn.send(new DescribeStackResourcesCommand({ StackName: stackName }));
  for (const r of listed.StackResources ?? []) {
    if (r.LogicalResourceId && r.PhysicalResourceId && r.ResourceType) {
      resources[r.LogicalResourceId] = {
        type: r.ResourceType,
        physicalId: r.PhysicalResourceId,
        via: "cloudformation",
      };
    }
  }

  // The SDK-created resources are (re)applied on every run: PutMetricAlarm is an upsert,
  // so a second bootstrap, or one after `local down` lost moto's state, converges.
  const cloudwatch = createClient(CloudWatchClient, options.aws);
  for (const { logicalId, type, properties } of sdkResources) {
    const resolved = substituteResolved(properties, outputs) as Record<string, unknown>;
    if (CREATED_THROUGH_SDK[type] === "alarm") {
      const alarm = resolved as unknown as PutMetricAlarmCommandInput;
      if (!alarm.AlarmName) {
        throw new ConfigurationError(
          `alarm ${logicalId} in stack ${stackName} has no AlarmName: give every alarm a physical name in the CDK app`,
        );
      }
      await cloudwatch.send(new PutMetricAlarmCommand(alarm));
      resources[logicalId] = { type, physicalId: alarm.AlarmName, via: "sdk" };
    }
  }

  const notModelled = Object.entries(options.template.Resources)
    .filter(([logicalId, r]) => !resources[logicalId] && !r.Type.startsWith("AWS::CDK::"))
    .map(([logicalId, r]) => ({ logicalId, type: r.Type }));
  for (const { logicalId, type } of notModelled) {
    logger.warning(`stack ${stackName}: ${type} ${logicalId} is not modelled by the local AWS (skipped)`);
  }
  for (const key of Object.keys(outputs)) if (key.startsWith(RESOLVED_OUTPUT_PREFIX)) delete outputs[key];
  return { stackName, action, resources, notModelled, outputs };
}

interface SdkResource {
  logicalId: string;
  type: string;
  properties: unknown;
}

/**
 * Takes the SDK-created resources out of the template and, for every intrinsic
 * function in their properties (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, ...), adds
 * an output holding it: moto's CloudFormation evaluates outputs, so the values come back
 * from DescribeStacks, resolved exactly as CloudFormation would, without a second
 * evaluator written here. The properties keep a placeholder naming the output.
 */
export function prepareTemplate(original: Template): { template: Template; sdkResources: SdkResource[] } {
  const template: Template = structuredClone(original);
  const sdkResources: SdkResource[] = [];
  const outputs = { ...(template.Outputs ?? {}) };
  let counter = 0;
  const extract = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(extract);
    if (value && typeof value === "object") {
      const keys = Object.keys(value);
      if (keys.length === 1 && (keys[0] === "Ref" || keys[0]?.startsWith("Fn::"))) {
        const key = `${RESOLVED_OUTPUT_PREFIX}${counter++}`;
        outputs[key] = { Value: value };
        return { [PLACEHOLDER]: key };
      }
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, extract(v)]));
    }
    return value;
  };
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (!CREATED_THROUGH_SDK[resource.Type]) continue;
    if (resource.Condition) {
      throw new ConfigurationError(
        `${resource.Type} ${logicalId} has a Condition, which the local bootstrap cannot evaluate: remove it from the local stack`,
      );
    }
    sdkResources.push({ logicalId, type: resource.Type, properties: extract(resource.Properties ?? {}) });
    delete template.Resources[logicalId];
  }
  // What is left may still name a moved resource (a dashboard lists the alarms' ARNs):
  // those references become the literal values CloudFormation would have given.
  const moved = new Map(sdkResources.map((r) => [r.logicalId, alarmAttributes(r)]));
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    template.Resources[logicalId] = rewriteReferences(resource, moved) as Template["Resources"][string];
  }
  for (const [key, output] of Object.entries(outputs))
    outputs[key] = rewriteReferences(output, moved) as typeof output;
  if (Object.keys(outputs).length > 0) template.Outputs = outputs;
  return { template, sdkResources };
}

const PLACEHOLDER = "astrolens::resolved";

function substituteResolved(value: unknown, outputs: Record<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => substituteResolved(v, outputs));
  if (value && typeof value === "object") {
    const key = (value as Record<string, unknown>)[PLACEHOLDER];
    if (typeof key === "string") {
      const resolved = outputs[key];
      if (resolved === undefined) throw new Error(`the local AWS did not resolve output ${key}`);
      return resolved;
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteResolved(v, outputs)]));
  }
  return value;
}

/** What `Ref` and `Fn::GetAtt … Arn` give for an alarm, as CloudFormation documents them. */
function alarmAttributes(resource: SdkResource): Record<string, string> {
  const name = (resource.properties as { AlarmName?: unknown }).AlarmName;
  if (typeof name !== "string") {
    throw new ConfigurationError(
      `alarm ${resource.logicalId} needs a literal AlarmName for the local bootstrap: give it a physical name in the CDK app`,
    );
  }
  // An Fn::Sub template: moto fills in the pseudo parameters.
  const arn = `arn:\${AWS::Partition}:cloudwatch:\${AWS::Region}:\${AWS::AccountId}:alarm:${name}`;
  return { Ref: name, Arn: arn };
}

/** Replaces `Ref`, `Fn::GetAtt` and `Fn::Sub` references to moved resources by their values. */
function rewriteReferences(value: unknown, moved: Map<string, Record<string, string>>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteReferences(v, moved));
  if (!value || typeof value !== "object") return value;
  const record = value as Record<string, unknown>;
  const attribute = (logicalId: string, name: string): string | undefined => {
    const attributes = moved.get(logicalId);
    if (!attributes) return undefined;
    const found = attributes[name];
    if (found === undefined) {
      throw new ConfigurationError(
        `the local bootstrap cannot resolve ${logicalId}.${name}: only Ref and Arn are known`,
      );
    }
    return found;
  };
  if (typeof record.Ref === "string") {
    const resolved = attribute(record.Ref, "Ref");
    if (resolved !== undefined) return resolved;
  }
  const getAtt = record["Fn::GetAtt"];
  if (getAtt !== undefined) {
    const [logicalId, name] = Array.isArray(getAtt) ? getAtt.map(String) : String(getAtt).split(".");
    const resolved = attribute(logicalId ?? "", name ?? "");
    if (resolved !== undefined) return resolved.includes("${") ? { "Fn::Sub": resolved } : resolved;
  }
  const sub = record["Fn::Sub"];
  if (sub !== undefined) {
    const text = Array.isArray(sub) ? String(sub[0]) : String(sub);
    const replaced = text.replace(
      /\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9]+))?\}/g,
      (whole, id: string, name?: string) => {
        return attribute(id, name ?? "Ref") ?? whole;
      },
    );
    return { "Fn::Sub": Array.isArray(sub) ? [replaced, ...sub.slice(1)] : replaced };
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, rewriteReferences(v, moved)]));
}

async function describeStack(cfn: CloudFormationClient, stackName: string): Promise<Stack | undefined> {
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return out.Stacks?.find((s) => s.StackStatus !== "DELETE_COMPLETE");
  } catch (err) {
    // CloudFormation answers a missing stack with a ValidationError ("does not exist").
    if (awsErrorName(err) === "ValidationError") return undefined;
    throw withContext(`cannot describe stack ${stackName}`, err);
  }
}

/**
 * Uploads the template's file assets (the smoke-test Lambda's code) where the template
 * expects them, as `cdk deploy` would: a folder becomes a zip, a file goes as it is.
 */
export async function publishAssets(
  assembly: { dir: string; manifest: AssetManifest },
  aws: AwsOptions | undefined,
  logger: Logger,
): Promise<void> {
  if (assembly.manifest.dockerImages && Object.keys(assembly.manifest.dockerImages).length > 0) {
    throw new ConfigurationError(
      "the stack has Docker image assets, which the local bootstrap cannot build: reference images by ECR URI",
    );
  }
  const files = Object.entries(assembly.manifest.files ?? {});
  if (files.length === 0) return;
  const s3 = createClient(S3Client, aws);
  const account = await accountId(aws);
  const region = (await s3.config.region()) as string;
  for (const [id, asset] of files) {
    const source = join(assembly.dir, asset.source.path);
    const body = asset.source.packaging === "zip" ? zipFolder(source) : readFileSync(source);
    for (const destination of Object.values(asset.destinations)) {
      const bucket = placeholders(destination.bucketName, account, region);
      const key = placeholders(destination.objectKey, account, region);
      await ensureBucket(s3, bucket);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      logger.debug(`asset ${id}: s3://${bucket}/${key} (${body.length} bytes)`);
    }
  }
  logger.info(`published ${files.length} asset(s) to the local S3`);
}

/** CloudFormation's `${AWS::…}` pseudo parameters in asset destinations. */
function placeholders(text: string, account: string, region: string): string {
  const values: Record<string, string> = { AccountId: account, Region: region, Partition: "aws" };
  return text.replace(/\$\{AWS::(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}

async function accountId(aws: AwsOptions | undefined): Promise<string> {
  const sts = createClient(STSClient, aws);
  const identity = await sts.send(new GetCallerIdentityCommand({}));
  if (!identity.Account) throw new Error("STS GetCallerIdentity returned no account");
  return identity.Account;
}

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (awsErrorName(err) !== "NotFound" && awsErrorName(err) !== "NoSuchBucket") throw err;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}

/** A folder as a zip, entries sorted and dated 1980 so the same files give the same bytes. */
export function zipFolder(dir: string): Buffer {
  const entries: Record<string, [Uint8Array, { mtime: Date }]> = {};
  const walk = (folder: string) => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else entries[relative(dir, path)] = [readFileSync(path), { mtime: new Date("1980-01-01T00:00:00Z") }];
    }
  };
  walk(dir);
  return Buffer.from(zipSync(entries, { level: 9 }));
}
