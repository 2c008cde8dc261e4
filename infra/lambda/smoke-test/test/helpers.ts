/** Shared by the smoke-test Lambda's tests: the real v2 contract and real captured responses. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { InvocationResponse } from "../../../../service/src/contract.js";
import type { Exchange } from "../src/checks.js";
import { contractFromManifestText, type SmokeContract } from "../src/contract.js";
import { type KnownImage, knownImages } from "../src/images.js";
import type { LatencyBudget } from "../src/types.js";

export const REPO_DIR = fileURLToPath(new URL("../../../../", import.meta.url));
export const MANIFEST_V2_PATH = `${REPO_DIR}service/models/v2/manifest.json`;
export const MANIFEST_V2_TEXT = readFileSync(MANIFEST_V2_PATH, "utf8");

/** The smoke contract of the candidate model in the repository. */
export const contractV2: SmokeContract = contractFromManifestText(MANIFEST_V2_TEXT);

export const budget: LatencyBudget = { perRequest: 2_000, total: 10_000 };

interface Captured {
  ping: unknown;
  invocations: Record<string, InvocationResponse>;
}

/** What the real service (v2) answered to the known images (see the file's `capturedFrom`). */
const captured = JSON.parse(
  readFileSync(new URL("./fixtures/v2-responses.json", import.meta.url), "utf8"),
) as Captured;

export function image(name: string): KnownImage {
  const found = knownImages.find((i) => i.name === name);
  if (found === undefined) throw new Error(`no known image ${name}`);
  return found;
}

/** A fresh copy of the captured response to `name`, to break in one place. */
export function capturedResponse(name: string): InvocationResponse {
  const response = captured.invocations[name];
  if (response === undefined) throw new Error(`no captured response for ${name}`);
  return structuredClone(response);
}

export function capturedPing(): { status: string; model: InvocationResponse["model"] } {
  return structuredClone(captured.ping) as { status: string; model: InvocationResponse["model"] };
}

/** A 200 with `body` as JSON, as the runner would have seen it. */
export function reply(body: unknown, ms = 12, status = 200): Exchange {
  return {
    kind: "reply",
    status,
    contentType: "application/json",
    body: typeof body === "string" ? body : JSON.stringify(body),
    ms,
  };
}

/**
 * AWS's Lambda hook response (AWS-BEHAVIOUR.md A3): exactly these keys. `.strict()`: a key
 * AWS does not define is a contract break, not an extension.
 */
export const awsHookResponseSchema = z
  .object({
    hookStatus: z.enum(["SUCCEEDED", "FAILED", "IN_PROGRESS"]),
    callBackDelay: z.number().int().nonnegative().optional(),
    hookDetails: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
