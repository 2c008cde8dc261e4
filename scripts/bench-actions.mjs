// Benchmarks the bundled actions (dist/<name>/index.js, not dist/cli): each bundle's size,
// and its cold start: the time from spawning `node dist/<name>/index.js` (inputs in INPUT_*
// variables, as the runner passes them) to its FIRST external request.
//
// - push-image and promote-image call AWS first: AWS_ENDPOINT_URL points at a small HTTP
//   server in this process, which notes when the first request arrives, answers with an
//   AWS error, and the child is killed.
// - build-image and scan-image run a tool first: a temp folder first on PATH holds bash
//   shims named docker, buildah, skopeo and trivy that send one HTTP request to the same
//   server over bash's /dev/tcp and exit 1.
// - The baseline is Node's own start-up to a request: `node -e` sending one http request.
// - The shim's own start-up (bash to its request) is measured too: it is included in the
//   build-image and scan-image figures.
//
// Runs are interleaved (one of each target per round, after one unmeasured warm-up each),
// so drift in the machine's load spreads over all targets. BENCH_RUNS sets the rounds
// (default 15). No local AWS, registry or tool is needed; nothing leaves 127.0.0.1.
//
// Usage: npm run build && npm run bench:actions
import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const SIZE_AIM_BYTES = 2_000_000;
const START_AIM_MS = 150;
const RUN_TIMEOUT_MS = 15_000;
const SHIMS = ["docker", "buildah", "skopeo", "trivy"];
const DUMMY_DIGEST = `sha256:${"0".repeat(64)}`;

const runs = Number.parseInt(process.env.BENCH_RUNS ?? "15", 10);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`BENCH_RUNS must be a positive whole number, got ${JSON.stringify(process.env.BENCH_RUNS)}`);
  process.exit(2);
}
const root = process.cwd();
if (!existsSync(join(root, "dist"))) {
  console.error("no dist/ here: run `npm run build` in the repository root first");
  process.exit(2);
}
const bundles = readdirSync(join(root, "dist"))
  .filter((name) => name !== "cli" && existsSync(join(root, "dist", name, "index.js")))
  .sort();
if (bundles.length === 0) {
  console.error("no action bundles in dist/: run `npm run build` first");
  process.exit(2);
}

// --- the server every first request goes to ---------------------------------------------

/** The run waiting for its first request: its token (in the URL path) and resolver. */
let waiting;
const server = createServer((req, res) => {
  const arrived = performance.now();
  if (waiting && req.url?.includes(`/${waiting.token}/`)) {
    const run = waiting;
    waiting = undefined;
    const target = req.headers["x-amz-target"];
    const what = req.url.slice(run.token.length + 1) || "/";
    run.resolve({ arrived, request: typeof target === "string" ? `AWS ${target.split(".").pop()}` : what });
  }
  // An error the SDK does not retry; the shims ignore it.
  res.writeHead(400, { "content-type": "application/x-amz-json-1.1" });
  res.end(JSON.stringify({ __type: "AccessDeniedException", message: "astrolens bench: no AWS here" }));
});
server.on("connection", (socket) => socket.on("error", () => {}));
server.on("clientError", (_err, socket) => socket.destroy());
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;

// --- the fixtures: shims, a dummy archive, a dummy image dir, runner files ---------------

const work = mkdtempSync(join(tmpdir(), "astrolens-bench-"));
const shimDir = join(work, "bin");
mkdirSync(shimDir);
const bash = ["/bin/bash", "/usr/bin/bash"].find((path) => existsSync(path));
if (!bash) {
  console.error("bash is needed for the tool shims (they use its /dev/tcp)");
  process.exit(2);
}
for (const tool of SHIMS) {
  const shim = join(shimDir, tool);
  writeFileSync(
    shim,
    `#!${bash}\nexec 3<>"/dev/tcp/127.0.0.1/$BENCH_PORT"\nprintf 'GET /%s/shim/${tool} HTTP/1.0\\r\\n\\r\\n' "$BENCH_TOKEN" >&3\nexit 1\n`,
  );
  chmodSync(shim, 0o755);
}
const archive = join(work, "image.tar");
writeFileSync(archive, "not really an image: the trivy shim never reads it\n");
const trivyCache = join(work, "trivy-cache");
mkdirSync(join(trivyCache, "db"), { recursive: true });
writeFileSync(join(trivyCache, "db", "metadata.json"), '{"Version":2}\n');
const imageDir = join(work, "image");
mkdirSync(imageDir);
writeFileSync(
  join(imageDir, "manifest.json"),
  JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", size: 2, digest: DUMMY_DIGEST },
    layers: [],
  }),
);

/** The inputs each bundle gets: enough to pass validation and reach its first request. */
const INPUTS = {
  "build-image": { "output-dir": join(work, "build") },
  "scan-image": {
    archive,
    digest: DUMMY_DIGEST,
    "cache-dir": trivyCache,
    offline: "true",
    "trivy-path": join(shimDir, "trivy"),
    "output-dir": join(work, "scan"),
  },
  "push-image": { "image-dir": imageDir, repository: "bench/push", tags: "t1", "scan-verdict": "pass" },
  "promote-image": {
    "source-image": `127.0.0.1:${port}/bench/source@${DUMMY_DIGEST}`,
    "destination-repository": "bench/promoted",
    tags: "prod",
  },
};

const runnerFiles = {};
for (const name of ["GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_STATE"]) {
  runnerFiles[name] = join(work, name.toLowerCase());
  writeFileSync(runnerFiles[name], "");
}
mkdirSync(join(work, "runner-temp"));

/** A clean environment like a runner step's: no NODE_OPTIONS or stray INPUT_* from this shell. */
function childEnv(token, inputs = {}) {
  const env = {
    PATH: `${shimDir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: process.env.HOME ?? work,
    TMPDIR: work,
    ...runnerFiles,
    RUNNER_TEMP: join(work, "runner-temp"),
    GITHUB_ACTIONS: "true",
    CI: "true",
    AWS_ENDPOINT_URL: `http://127.0.0.1:${port}/${token}/`,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    AWS_EC2_METADATA_DISABLED: "true",
    BENCH_PORT: String(port),
    BENCH_TOKEN: token,
  };
  for (const [name, value] of Object.entries(inputs)) {
    env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] = value;
  }
  return env;
}

// --- one measurement ---------------------------------------------------------------------

let runCounter = 0;

/**
 * Spawns `command args` and resolves with the ms from just before the spawn to the first
 * request carrying this run's token; the child (and the process group it leads) is then
 * killed and awaited, so nothing of it can reach the next run.
 */
async function measure(command, args, inputs) {
  const token = `run-${++runCounter}`;
  let stderr = "";
  const arrival = new Promise((resolve) => {
    waiting = { token, resolve };
  });
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: root,
    env: childEnv(token, inputs),
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  child.stderr.setEncoding("utf8").on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  let timer;
  const outcome = await Promise.race([
    arrival,
    // A child that exits right after its request (the shims do) may be reaped before the
    // request is read: give the request a moment before calling the run a failure.
    exited.then(({ code, signal }) =>
      Promise.race([
        arrival,
        new Promise((resolve) => setTimeout(() => resolve({ exited: code ?? signal }), 1000)),
      ]),
    ),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ timedOut: true }), RUN_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  waiting = undefined;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
  await exited;
  if (outcome.arrived === undefined) {
    const why = outcome.timedOut ? `no request within ${RUN_TIMEOUT_MS} ms` : `exited (${outcome.exited})`;
    throw new Error(
      `${[command, ...args].join(" ")} ${why} before any request:\n${stderr.trim().slice(-2000)}`,
    );
  }
  return { ms: outcome.arrived - started, request: outcome.request };
}

// --- the targets and the rounds ----------------------------------------------------------

const baselineScript = `require("node:http").get("http://127.0.0.1:"+process.env.BENCH_PORT+"/"+process.env.BENCH_TOKEN+"/baseline").on("error",()=>{})`;
const targets = [
  { name: "baseline: node -e http.get", command: process.execPath, args: ["-e", baselineScript] },
  { name: "baseline: tool shim (bash)", command: join(shimDir, "trivy"), args: [], shim: true },
  ...bundles.map((name) => ({
    name,
    bundle: join(root, "dist", name, "index.js"),
    command: process.execPath,
    args: [join("dist", name, "index.js")],
    inputs: INPUTS[name] ?? {},
  })),
];
for (const target of targets) target.samples = [];

let failed = false;
try {
  for (const target of targets) {
    const warm = await measure(target.command, target.args, target.inputs);
    target.firstRequest = warm.request;
  }
  for (let round = 0; round < runs; round++) {
    for (const target of targets) {
      target.samples.push((await measure(target.command, target.args, target.inputs)).ms);
    }
  }
} catch (err) {
  console.error(`bench-actions: ${err.message}`);
  failed = true;
} finally {
  server.close();
  rmSync(work, { recursive: true, force: true });
}
if (failed) process.exit(1);

// --- the table ---------------------------------------------------------------------------

function quantile(sorted, q) {
  // Nearest rank; the median of an even count averages the two middle samples.
  if (q === 0.5 && sorted.length % 2 === 0) {
    return (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  }
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}
for (const target of targets) {
  const sorted = [...target.samples].sort((a, b) => a - b);
  target.median = quantile(sorted, 0.5);
  target.p90 = quantile(sorted, 0.9);
}
const baseline = targets[0].median;

const header = ["bundle", "size", "median ms", "p90 ms", "x baseline", "first request", "aims"];
const rows = targets.map((target) => {
  const size = target.bundle ? statSync(target.bundle).size : undefined;
  const aims = target.bundle
    ? [
        `size ${size < SIZE_AIM_BYTES ? "ok" : "OVER"}`,
        `start ${target.median < START_AIM_MS ? "ok" : "OVER"}`,
      ].join(", ")
    : "-";
  return [
    target.name,
    size === undefined ? "-" : `${(size / 1e6).toFixed(2)} MB (${size} B)`,
    target.median.toFixed(1),
    target.p90.toFixed(1),
    `${(target.median / baseline).toFixed(2)}x`,
    target.firstRequest,
    aims,
  ];
});
const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i].length)));
const line = (cells) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
console.log(
  `Cold start: spawn of node ${process.version} to the first external request; ${runs} runs per target (BENCH_RUNS), interleaved.`,
);
console.log(
  `Aims: bundle < ${SIZE_AIM_BYTES / 1e6} MB, median cold start < ${START_AIM_MS} ms. build-image and scan-image include the shim's own start (see its baseline row).`,
);
console.log(line(header));
console.log(line(widths.map((width) => "-".repeat(width))));
for (const row of rows) console.log(line(row));
