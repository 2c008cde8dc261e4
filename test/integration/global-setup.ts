import { createConsoleLogger } from "../../src/gh/logger.js";
import { localUp } from "../../src/local/stack.js";

/**
 * Brings the local AWS up once for all integration tests (a no-op when it already
 * runs) and hands its settings to the test workers through the environment. A
 * missing dependency fails here, loudly: integration tests are never skipped.
 */
export default async function setup(): Promise<void> {
  const vars = await localUp(createConsoleLogger());
  Object.assign(process.env, vars);
}
