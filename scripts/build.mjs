// Bundles each action (actions/<name>/main.ts) and the CLI (src/cli/index.ts) into
// dist/<name>/index.js, and the inference service (service/src/main.ts) into
// service/dist/server.js, with esbuild. Entries are found by convention, so a new
// action needs no change here. The bundles are committed; CI fails when they are stale.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  // Node 20 and 24 both run this; the actions declare node24.
  target: "node20",
  format: "esm",
  // Prefer the ESM builds (the AWS SDK ships both): they tree-shake, and start faster.
  mainFields: ["module", "main"],
  minify: true,
  legalComments: "none",
  // Some bundled CommonJS calls require(); give ESM a require for them.
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  logLevel: "warning",
};

const actionEntries = Object.fromEntries([
  ...readdirSync("actions")
    .filter((name) => existsSync(join("actions", name, "main.ts")))
    .map((name) => [`${name}/index`, join("actions", name, "main.ts")]),
  ["cli/index", "src/cli/index.ts"],
]);
rmSync("dist", { recursive: true, force: true });
await build({ ...common, entryPoints: actionEntries, outdir: "dist" });
const built = Object.keys(actionEntries);

// The service's native modules (sharp, onnxruntime-node) stay external: the image
// installs them from service/package-lock.json.
if (existsSync("service/src/main.ts")) {
  rmSync("service/dist", { recursive: true, force: true });
  await build({
    ...common,
    entryPoints: { server: "service/src/main.ts" },
    outdir: "service/dist",
    external: ["sharp", "onnxruntime-node"],
  });
  built.push("service/server");
}
console.log(`built ${built.length} bundles: ${built.join(", ")}`);
