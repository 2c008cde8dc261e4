// `npm test`: every test, in the order that keeps the wall time down.
//
// 1. The local AWS comes up (`local up`: moto's virtualenv, Trivy, the Debian base image,
//    the `local` environment with its baseline release) *while* the tests that need none
//    of it run: unit, service and infra. Both halves take about two minutes.
// 2. The integration tests, against that local AWS. They run after the first pass on
//    purpose: the workflow chain runs the accuracy-gate action's install step on this
//    checkout, as a runner would, which the service tests must not see mid-way.
// 3. The local AWS extension's own pytest suite.
//
// Any failure fails the run, with the first pass's failure reported before local up's.
import { spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync } from "node:fs";

const run = (command, args, options = {}) =>
  new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "inherit", ...options });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on("error", (err) => {
      console.error(`${command}: ${err.message}`);
      resolve(1);
    });
  });

const vitest = "node_modules/vitest/vitest.mjs";
// local up prints a lot; its output goes to a log, shown when it fails.
mkdirSync(".local/logs", { recursive: true });
const upLog = ".local/logs/test-local-up.log";
const out = openSync(upLog, "w");
const localUp = run(process.execPath, ["dist/cli/index.js", "local", "up"], { stdio: ["ignore", out, out] });

const firstPass = await run(process.execPath, [
  vitest,
  "run",
  "--project",
  "unit",
  "--project",
  "service",
  "--project",
  "infra",
]);
const upStatus = await localUp;
if (firstPass !== 0) process.exit(firstPass);
if (upStatus !== 0) {
  const tail = readFileSync(upLog, "utf8").split("\n").slice(-40).join("\n");
  console.error(`${tail}\nastrolens-release local up failed (the whole log: ${upLog})`);
  process.exit(upStatus);
}
const integration = await run(process.execPath, [vitest, "run", "--project", "integration"]);
if (integration !== 0) process.exit(integration);
process.exit(await run("npm", ["run", "--silent", "test:local-aws"]));
