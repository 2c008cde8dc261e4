// Bundles each action (its entrypoint actions/<name>/index.ts, which runs main.ts's run())
// and the CLI (src/cli/index.ts) into
// dist/<name>/index.js, the inference service (service/src/main.ts) into
// service/dist/server.js and the smoke-test Lambda into infra/lambda/smoke-test/dist/,
// with esbuild. Entries are found by convention, so a new action needs no change here.
// The bundles are committed; CI fails when they are stale.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
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

// A composite action (action.yml `using: composite`) runs the inference runtime, which
// is native: its bundle goes under service/dist/, where service/node_modules resolves.
const actions = readdirSync("actions").filter((name) => existsSync(join("actions", name, "index.ts")));
const entry = (name) => join("actions", name, "index.ts");
const needsRuntime = (name) =>
  /using:\s*composite/.test(readFileSync(join("actions", name, "action.yml"), "utf8"));
const actionEntries = Object.fromEntries([
  ...actions.filter((name) => !needsRuntime(name)).map((name) => [`${name}/index`, entry(name)]),
  ["cli/index", "src/cli/index.ts"],
]);
const serviceEntries = Object.fromEntries([
  ["server", "service/src/main.ts"],
  // The gate as a library, for the CLI, which loads it only when asked to gate.
  ["gate/index", "service/src/gate/run.ts"],
  ...actions.filter(needsRuntime).map((name) => [`${name}/index`, entry(name)]),
]);
rmSync("dist", { recursive: true, force: true });
await build({ ...common, entryPoints: actionEntries, outdir: "dist" });
const built = Object.keys(actionEntries);

// The service and the runtime-bound actions: their native modules (sharp,
// onnxruntime-node) stay external and come from service/node_modules (the image installs
// them from service/package-lock.json).
rmSync("service/dist", { recursive: true, force: true });
await build({
  ...common,
  entryPoints: serviceEntries,
  outdir: "service/dist",
  external: ["sharp", "onnxruntime-node"],
});
built.push(...Object.keys(serviceEntries).map((entry) => `service/${entry}`));

// The smoke-test Lambda: one ESM file holding everything it imports, the AWS SDK included,
// so it runs the SDK it was tested with rather than whichever one the Lambda runtime ships.
// `.mjs`, so Node 20 and the nodejs22.x runtime load it as ESM without a package.json.
rmSync("infra/lambda/smoke-test/dist", { recursive: true, force: true });
await build({
  ...common,
  entryPoints: ["infra/lambda/smoke-test/src/handler.ts"],
  outfile: "infra/lambda/smoke-test/dist/index.mjs",
});
built.push("infra/lambda/smoke-test/dist/index.mjs");
console.log(`built ${built.length} bundles: ${built.join(", ")}`);
