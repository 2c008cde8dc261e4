// Rebuilds dist/ and fails when the committed bundles differ from what the source
// builds: the actions run the committed bundles, so stale ones would ship old code.
import { execFileSync } from "node:child_process";

execFileSync("node", ["scripts/build.mjs"], { stdio: "inherit" });
const changed = execFileSync("git", ["status", "--porcelain", "--", "dist", "service/dist"], {
  encoding: "utf8",
}).trim();
if (changed) {
  console.error(`dist/ is stale; run \`npm run build\` and commit the result:\n${changed}`);
  process.exit(1);
}
console.log("dist/ is up to date");
