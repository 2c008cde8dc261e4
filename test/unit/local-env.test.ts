import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { formatEnvFile, parseEnvFile, readLocalEnv } from "../../src/local/env-file.js";

const dir = mkdtempSync(join(tmpdir(), "astrolens-env-test-"));

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const VARS = {
  AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "test",
  REGISTRY_URL: "http://localhost:5000/v2/?x=a=b",
};

describe("formatEnvFile and parseEnvFile", () => {
  it("writes a comment, one KEY=value line per variable and a final new line", () => {
    expect(formatEnvFile({ A: "1", B_2: "two" })).toBe(
      "# Written by `astrolens-release local up`: the local AWS and registry.\nA=1\nB_2=two\n",
    );
  });

  it("round-trips, keeping = inside values", () => {
    expect(parseEnvFile(formatEnvFile(VARS))).toEqual(VARS);
  });

  it("ignores comments, blank lines and lines that are not KEY=value", () => {
    expect(parseEnvFile("# comment\n\nnot a var\nlower=x\n  AWS_REGION=eu-west-1\n")).toEqual({
      AWS_REGION: "eu-west-1",
    });
  });

  it("strips one pair of surrounding double quotes and keeps empty values", () => {
    expect(parseEnvFile('A="quoted value"\nB=\n')).toEqual({ A: "quoted value", B: "" });
  });
});

describe("readLocalEnv", () => {
  it("reads the variables of an existing file", () => {
    const path = join(dir, "env");
    writeFileSync(path, formatEnvFile(VARS));
    expect(readLocalEnv(path)).toEqual(VARS);
  });

  it("says to run `astrolens-release local up` when the file is missing", () => {
    const path = join(dir, "missing", "env");
    const call = () => readLocalEnv(path);
    expect(call).toThrow(ConfigurationError);
    expect(call).toThrow(
      `the local AWS is not set up (${path} is missing): run \`astrolens-release local up\``,
    );
  });
});
