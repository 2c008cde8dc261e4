import { describe, expect, it } from "vitest";
import {
  evaluate,
  type PolicyDocument,
  resolveIntrinsics,
  type TemplateJson,
  wildcardMatch,
} from "./iam-evaluator.ts";

// The evaluator decides the IAM tests; these pin down its own behaviour, so it can fail.
describe("the IAM evaluator", () => {
  const document = (statements: PolicyDocument["Statement"]): PolicyDocument => ({ Statement: statements });

  it("matches * and ? in actions case-insensitively and in resources case-sensitively", () => {
    expect(wildcardMatch("ecr:Describe*", "ecr:describeimages", true)).toBe(true);
    expect(wildcardMatch("ecr:Describe?mages", "ecr:DescribeImages", true)).toBe(true);
    expect(wildcardMatch("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/key", false)).toBe(false);
    expect(wildcardMatch("arn:aws:ecs:r:1:service/c/s", "arn:aws:ecs:r:1:service/c/s2", false)).toBe(false);
    expect(wildcardMatch("a.b", "axb", false)).toBe(false);
  });

  it("allows only what a statement allows, and lets an explicit deny win", () => {
    const policies = [
      document([{ Effect: "Allow", Action: "sns:*", Resource: "arn:aws:sns:r:1:topic" }]),
      document([{ Effect: "Deny", Action: "sns:Subscribe", Resource: "*" }]),
    ];
    expect(evaluate(policies, { action: "sns:Publish", resource: "arn:aws:sns:r:1:topic" })).toBe("allowed");
    expect(evaluate(policies, { action: "sns:Subscribe", resource: "arn:aws:sns:r:1:topic" })).toBe(
      "explicitly denied",
    );
    expect(evaluate(policies, { action: "sns:Publish", resource: "arn:aws:sns:r:1:other" })).toBe(
      "implicitly denied",
    );
    expect(evaluate(policies, { action: "sqs:SendMessage", resource: "arn:aws:sns:r:1:topic" })).toBe(
      "implicitly denied",
    );
  });

  it("requires every condition key, failing when the request lacks it", () => {
    const policies = [
      document([
        {
          Effect: "Allow",
          Action: "iam:PassRole",
          Resource: "arn:aws:iam::1:role/r",
          Condition: { StringEquals: { "iam:PassedToService": ["ecs-tasks.amazonaws.com"] } },
        },
      ]),
    ];
    const request = { action: "iam:PassRole", resource: "arn:aws:iam::1:role/r" };
    expect(
      evaluate(policies, { ...request, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } }),
    ).toBe("allowed");
    expect(
      evaluate(policies, { ...request, context: { "iam:passedtoservice": "ecs-tasks.amazonaws.com" } }),
    ).toBe("allowed");
    expect(
      evaluate(policies, { ...request, context: { "iam:PassedToService": "lambda.amazonaws.com" } }),
    ).toBe("implicitly denied");
    expect(evaluate(policies, request)).toBe("implicitly denied");
  });

  it("refuses what it does not model instead of guessing", () => {
    const notAction = [document([{ Effect: "Allow", NotAction: "iam:*", Resource: "*" }])];
    expect(() => evaluate(notAction, { action: "s3:GetObject", resource: "*" })).toThrow(/NotAction/);
    const operator = [
      document([
        {
          Effect: "Allow",
          Action: "s3:*",
          Resource: "*",
          Condition: { IpAddress: { "aws:SourceIp": "1.2.3.4" } },
        },
      ]),
    ];
    expect(() => evaluate(operator, { action: "s3:GetObject", resource: "*" })).toThrow(
      /IpAddress is not modelled/,
    );
    const template: TemplateJson = { Resources: { Bucket: { Type: "AWS::S3::Bucket", Properties: {} } } };
    const pseudo = { partition: "aws", region: "eu-west-1", account: "111122223333" };
    expect(() => resolveIntrinsics({ "Fn::GetAtt": ["Bucket", "Arn"] }, template, pseudo)).toThrow(
      /no ARN rule/,
    );
    expect(() => resolveIntrinsics({ "Fn::Sub": "x" }, template, pseudo)).toThrow(/cannot resolve/);
    expect(
      resolveIntrinsics({ "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, ":x"]] }, template, pseudo),
    ).toBe("arn:aws:x");
  });
});
