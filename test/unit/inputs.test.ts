import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigurationError } from "../../src/errors.js";
import { envInputReader, type InputReader, parseInputs, splitList } from "../../src/gh/inputs.js";
import { booleanInput } from "../../src/gh/schema.js";

const schema = z.object({
  repository: z.string(),
  "fail-on": z.string().default("CRITICAL,HIGH"),
  "dry-run": booleanInput(false),
  "fail-build": booleanInput(true),
});

/** An input reader over a fixed map; names that are absent read as "" like the runner. */
function reader(values: Record<string, string>): InputReader {
  return (name) => values[name] ?? "";
}

function parseError(values: Record<string, string>): ConfigurationError {
  try {
    parseInputs(schema, reader(values));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected parseInputs to throw");
}

describe("parseInputs", () => {
  it("applies defaults for inputs that were not given and transforms booleans", () => {
    expect(parseInputs(schema, reader({ repository: "astrolens/inference" }))).toEqual({
      repository: "astrolens/inference",
      "fail-on": "CRITICAL,HIGH",
      "dry-run": false,
      "fail-build": true,
    });
  });

  it("trims values and treats whitespace-only values as not given", () => {
    const parsed = parseInputs(
      schema,
      reader({ repository: "  astrolens/inference\n", "fail-on": "   ", "dry-run": " true " }),
    );
    expect(parsed).toEqual({
      repository: "astrolens/inference",
      "fail-on": "CRITICAL,HIGH",
      "dry-run": true,
      "fail-build": true,
    });
  });

  it("asks the reader for every key of the schema, by its kebab-case name", () => {
    const asked: string[] = [];
    parseInputs(schema, (name) => {
      asked.push(name);
      return name === "repository" ? "r1" : "";
    });
    expect(asked).toEqual(["repository", "fail-on", "dry-run", "fail-build"]);
  });

  it("names the input and shows the value given when a value is bad", () => {
    const err = parseError({ repository: "astrolens/inference", "dry-run": "yes" });
    expect(err.message).toBe('input "dry-run": expected "true" or "false" (got "yes")');
  });

  it('says "it was not given" for a missing required input', () => {
    const err = parseError({});
    expect(err.message).toMatch(/^input "repository": .+ \(it was not given\)$/);
  });

  it("reports every bad input at once, separated by semicolons", () => {
    const err = parseError({ "fail-build": "1" });
    const parts = err.message.split("; ");
    expect(parts).toHaveLength(2);
    expect(parts[0]).toMatch(/^input "repository": .+ \(it was not given\)$/);
    expect(parts[1]).toBe('input "fail-build": expected "true" or "false" (got "1")');
  });
});

describe("booleanInput", () => {
  it('accepts only "true" and "false"', () => {
    expect(booleanInput(false).parse("true")).toBe(true);
    expect(booleanInput(true).parse("false")).toBe(false);
  });

  it("uses the fallback when the value is absent", () => {
    expect(booleanInput(true).parse(undefined)).toBe(true);
    expect(booleanInput(false).parse(undefined)).toBe(false);
  });

  it('rejects "yes" with the expected values in the message', () => {
    const result = booleanInput(false).safeParse("yes");
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('expected "true" or "false"');
  });

  it('rejects "True" (the runner passes inputs verbatim)', () => {
    expect(booleanInput(false).safeParse("True").success).toBe(false);
  });
});

describe("splitList", () => {
  it("splits on commas and new lines, trimming and dropping empty items", () => {
    expect(splitList("latest, v1.2.3\n  abc123 ,\n\n,")).toEqual(["latest", "v1.2.3", "abc123"]);
  });

  it("handles Windows line endings", () => {
    expect(splitList("a\r\nb")).toEqual(["a", "b"]);
  });

  it("returns an empty list for undefined, empty and blank values", () => {
    expect(splitList(undefined)).toEqual([]);
    expect(splitList("")).toEqual([]);
    expect(splitList(" , \n ")).toEqual([]);
  });
});

describe("envInputReader", () => {
  it("reads INPUT_<NAME> upper-cased, keeping dashes as the runner does", () => {
    const read = envInputReader({ "INPUT_FAIL-ON": "CRITICAL", INPUT_REPOSITORY: "astrolens/inference" });
    expect(read("fail-on")).toBe("CRITICAL");
    expect(read("repository")).toBe("astrolens/inference");
  });

  it("does not read an underscored variant of a dashed name", () => {
    expect(envInputReader({ INPUT_FAIL_ON: "CRITICAL" })("fail-on")).toBe("");
  });

  it("replaces spaces with underscores", () => {
    expect(envInputReader({ INPUT_MY_INPUT: "x" })("my input")).toBe("x");
  });

  it('returns "" for an input that is not set', () => {
    expect(envInputReader({})("tags")).toBe("");
  });

  it("feeds parseInputs", () => {
    const parsed = parseInputs(
      schema,
      envInputReader({
        INPUT_REPOSITORY: "astrolens/inference",
        "INPUT_FAIL-ON": "HIGH",
        "INPUT_DRY-RUN": "true",
      }),
    );
    expect(parsed).toEqual({
      repository: "astrolens/inference",
      "fail-on": "HIGH",
      "dry-run": true,
      "fail-build": true,
    });
  });
});
