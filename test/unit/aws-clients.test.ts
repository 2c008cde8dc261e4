import { readFileSync } from "node:fs";
import { ECRClient, ImageNotFoundException } from "@aws-sdk/client-ecr";
import { describe, expect, it } from "vitest";
import { awsClientConfig, awsErrorName, createClient } from "../../src/aws/clients.js";
import { ConfigurationError } from "../../src/errors.js";

const PACKAGE = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  name: string;
  version: string;
};

describe("awsClientConfig", () => {
  it("prefers the region option over AWS_REGION and AWS_DEFAULT_REGION", () => {
    const env = { AWS_REGION: "eu-west-1", AWS_DEFAULT_REGION: "ap-south-1" };
    expect(awsClientConfig({ region: "us-west-2", env }).region).toBe("us-west-2");
  });

  it("uses AWS_REGION over AWS_DEFAULT_REGION", () => {
    const env = { AWS_REGION: "eu-west-1", AWS_DEFAULT_REGION: "ap-south-1" };
    expect(awsClientConfig({ env }).region).toBe("eu-west-1");
  });

  it("falls back to AWS_DEFAULT_REGION", () => {
    expect(awsClientConfig({ env: { AWS_DEFAULT_REGION: "ap-south-1" } }).region).toBe("ap-south-1");
  });

  it("treats an empty region option as not given", () => {
    expect(awsClientConfig({ region: "", env: { AWS_REGION: "eu-west-1" } }).region).toBe("eu-west-1");
  });

  it('throws a ConfigurationError naming "aws-region" when no region is set', () => {
    const call = () => awsClientConfig({ env: {} });
    expect(call).toThrow(ConfigurationError);
    expect(call).toThrow('set the "aws-region" input or AWS_REGION');
  });

  it("sets the endpoint from AWS_ENDPOINT_URL, with fewer attempts for the local AWS", () => {
    const config = awsClientConfig({
      env: { AWS_REGION: "us-east-1", AWS_ENDPOINT_URL: "http://127.0.0.1:4566" },
    });
    expect(config.endpoint).toBe("http://127.0.0.1:4566");
    expect(config.maxAttempts).toBe(2);
  });

  it("leaves the endpoint out entirely when AWS_ENDPOINT_URL is unset or empty", () => {
    for (const env of [{ AWS_REGION: "us-east-1" }, { AWS_REGION: "us-east-1", AWS_ENDPOINT_URL: "" }]) {
      const config = awsClientConfig({ env });
      expect("endpoint" in config).toBe(false);
      expect(config.maxAttempts).toBe(5);
    }
  });

  it("keeps an explicit maxAttempts", () => {
    expect(awsClientConfig({ maxAttempts: 9, env: { AWS_REGION: "us-east-1" } }).maxAttempts).toBe(9);
  });

  it("uses adaptive retries and our package name and version in the user agent", () => {
    const config = awsClientConfig({ env: { AWS_REGION: "us-east-1" } });
    expect(config.retryMode).toBe("adaptive");
    expect(PACKAGE.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(config.customUserAgent).toEqual([[PACKAGE.name, PACKAGE.version]]);
  });

  it("reads process.env when no env is passed", () => {
    const saved = process.env.AWS_REGION;
    process.env.AWS_REGION = "sa-east-1";
    try {
      expect(awsClientConfig().region).toBe("sa-east-1");
    } finally {
      if (saved === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = saved;
    }
  });
});

describe("createClient", () => {
  it("builds a client with the config", async () => {
    const client = createClient(ECRClient, { region: "eu-central-1", env: {} });
    await expect(client.config.region()).resolves.toBe("eu-central-1");
    client.destroy();
  });
});

describe("awsErrorName", () => {
  it("returns the name of an SDK service exception", () => {
    const err = new ImageNotFoundException({ message: "no such image", $metadata: {} });
    expect(awsErrorName(err)).toBe("ImageNotFoundException");
  });

  it("returns the name of any error carrying $metadata", () => {
    expect(awsErrorName(Object.assign(new Error("x"), { name: "ThrottlingException", $metadata: {} }))).toBe(
      "ThrottlingException",
    );
  });

  it("returns undefined for plain errors and non-objects", () => {
    expect(awsErrorName(new Error("boom"))).toBeUndefined();
    expect(awsErrorName("RepositoryNotFoundException")).toBeUndefined();
    expect(awsErrorName(undefined)).toBeUndefined();
    expect(awsErrorName(null)).toBeUndefined();
  });
});
