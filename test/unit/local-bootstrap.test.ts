import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { prepareTemplate, type Template, zipFolder } from "../../src/local/bootstrap.js";

const template: Template = {
  Resources: {
    Topic: { Type: "AWS::SNS::Topic", Properties: { TopicName: "t" } },
    Lb: { Type: "AWS::ElasticLoadBalancingV2::LoadBalancer", Properties: { Name: "lb" } },
    Alarm: {
      Type: "AWS::CloudWatch::Alarm",
      Properties: {
        AlarmName: "a-5xx",
        Threshold: 1,
        Dimensions: [{ Name: "LoadBalancer", Value: { "Fn::GetAtt": ["Lb", "LoadBalancerFullName"] } }],
        AlarmActions: [{ Ref: "Topic" }],
      },
    },
  },
  Outputs: {
    TopicArn: { Value: { Ref: "Topic" } },
    AlarmName: { Value: { Ref: "Alarm" } },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax
    AlarmSub: { Value: { "Fn::Sub": "${Alarm.Arn}" } },
  },
};

describe("prepareTemplate", () => {
  it("moves the alarms out and turns each intrinsic into an output moto resolves", () => {
    const { template: prepared, sdkResources } = prepareTemplate(template);
    expect(Object.keys(prepared.Resources)).toEqual(["Topic", "Lb"]);
    expect(sdkResources).toHaveLength(1);
    const [alarm] = sdkResources;
    expect(alarm?.logicalId).toBe("Alarm");
    const props = alarm?.properties as {
      Dimensions: [{ Value: Record<string, string> }];
      AlarmActions: unknown[];
    };
    const dimensionKey = Object.values(props.Dimensions[0].Value)[0] as string;
    const actionKey = Object.values(props.AlarmActions[0] as Record<string, string>)[0] as string;
    expect(prepared.Outputs?.[dimensionKey]?.Value).toEqual({ "Fn::GetAtt": ["Lb", "LoadBalancerFullName"] });
    expect(prepared.Outputs?.[actionKey]?.Value).toEqual({ Ref: "Topic" });
  });

  it("gives what still names a moved alarm the values CloudFormation would (Ref, Fn::Sub of its ARN)", () => {
    const { template: prepared } = prepareTemplate(template);
    expect(prepared.Outputs?.TopicArn).toEqual({ Value: { Ref: "Topic" } });
    expect(prepared.Outputs?.AlarmName).toEqual({ Value: "a-5xx" });
    expect(prepared.Outputs?.AlarmSub).toEqual({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax
      Value: { "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:a-5xx" },
    });
  });

  it("leaves the caller's template untouched", () => {
    const copy = structuredClone(template);
    prepareTemplate(template);
    expect(template).toEqual(copy);
  });

  it("refuses an alarm with a Condition it cannot evaluate, naming it", () => {
    const conditional: Template = {
      Resources: { A: { Type: "AWS::CloudWatch::Alarm", Condition: "IsProd", Properties: {} } },
    };
    expect(() => prepareTemplate(conditional)).toThrow(/AWS::CloudWatch::Alarm A has a Condition/);
  });
});

describe("zipFolder", () => {
  it("zips a folder with paths relative to it, the same bytes every time", () => {
    const dir = mkdtempSync(join(tmpdir(), "zip-"));
    mkdirSync(join(dir, "lib"));
    writeFileSync(join(dir, "index.mjs"), "export const handler = 1;\n");
    writeFileSync(join(dir, "lib", "a.txt"), "a");
    const zip = zipFolder(dir);
    expect(Buffer.compare(zip, zipFolder(dir))).toBe(0);
    const files = unzipSync(zip);
    expect(Object.keys(files).sort()).toEqual(["index.mjs", "lib/a.txt"]);
    expect(Buffer.from(files["index.mjs"] as Uint8Array).toString()).toBe("export const handler = 1;\n");
  });
});
