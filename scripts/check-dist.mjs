// Rebuilds dist/ and fails when the committed bundles differ from what the source
// builds: the actions run the committed bundles, so stale ones would ship old code.
import { execFileSync } from "node:child_process";

execFileSync("node", ["scripts/build.mjs"], { stdio: "inherit" });
const bundles = ["dist", "service/dist", "infra/lambda/smoke-test/dist"];
const changed = execFileSync("git", ["status", "--porcelain", "--", ...bundles], {
  encoding: "utf8",
}).trim();
if (changed) {
  console.error(`${bundles.join(", ")}: stale; run \`npm run build\` and commit the result:\n${changed}`);
  process.exit(1);
}
console.log(`${bundles.join(", ")}: up to date`);
