import { createServer } from "node:net";
import { ECRClient } from "@aws-sdk/client-ecr";
import { createClient } from "../../src/aws/clients.js";
import { readLocalEnv } from "../../src/local/env-file.js";
import { localPaths } from "../../src/local/paths.js";

/** The local stack's settings, loaded into this worker's environment. */
export function loadLocalEnv(): Record<string, string> {
  const vars = readLocalEnv(localPaths().envFile);
  Object.assign(process.env, vars);
  return vars;
}

/** An ECR client against the local AWS; one attempt, so an unimplemented call shows at once. */
export function localEcr(): ECRClient {
  loadLocalEnv();
  return createClient(ECRClient, { maxAttempts: 1 });
}

/** A repository name no other test uses, so tests never see each other's images. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === "string") throw new Error("no free port");
  return address.port;
}
