#!/usr/bin/env node
// `npm run bench:service`: the inference service's throughput and latency on this machine,
// side by side with (a) the limit, raw onnxruntime-node sessions opened as the service opens
// them, and (c) a Python peer (FastAPI + uvicorn + onnxruntime, scripts/bench/peer_app.py)
// of the kind usually put in SageMaker containers. Prints one markdown report (also written
// to .local/bench/report.md, the figures to .local/bench/results.json).
//
// A benchmark, not a test: nothing is asserted. Exits 1 only when something fails to start
// (a server, the Python venv, the payloads), after printing whatever it did measure.
//
// Load generator: node:http with keep-alive agents in this process (one agent per run:
// maxSockets = clients for the closed loop, unbounded for the open loop). It reads response
// bodies without parsing them; its own CPU use is measured and printed next to the server's,
// so a reader can see what it took from the 2 cores. Both servers get the same requests:
// JSON bodies (a 2-D array of rows) cut from a real synthetic image (scripts/bench/make_payloads.py),
// so both pay a comparable decoding cost (JSON.parse vs json.loads + numpy).
//
// Environment knobs (all optional):
//   BENCH_DURATION_S   measured seconds per HTTP point (default 3)
//   BENCH_WARMUP_S     unmeasured seconds before each HTTP point (default 1)
//   BENCH_RAW_S        seconds per raw batch size (default 1)
//   BENCH_CLIENTS      closed-loop client counts (default "1,4,16,64")
//   BENCH_BATCHES      raw batch sizes (default "1,8,32,64,128,256")
//   BENCH_SETTINGS     service settings to compare, "label:K=V,K=V;label:..." (default below);
//                      "none" skips the comparison
//   BENCH_SKIP_PYTHON  1 = no Python peer
//   BENCH_PY_INTRA_OP_THREADS  the peer's onnxruntime intra-op threads per session (default 1)
//   BENCH_PY_WORKERS   uvicorn workers (default: the number of cores)
import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import net from "node:net";
import { availableParallelism, cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// The one model constant: the candidate when it is there, else production.
const MODEL_DIR = existsSync(join(ROOT, "service/models/v2/manifest.json"))
  ? join(ROOT, "service/models/v2")
  : join(ROOT, "service/models/v1");
const OUT = join(ROOT, ".local/bench");
const VENV = join(ROOT, ".local/bench-venv");
const PY = join(VENV, "bin/python");
const REQUIREMENTS = join(ROOT, "scripts/bench/requirements.txt");

const num = (name, fallback) => {
  const raw = process.env[name]?.trim();
  const value = raw ? Number(raw) : fallback;
  return Number.isFinite(value) && value > 0 ? value : fallback;
};
const list = (name, fallback) =>
  (process.env[name]?.trim() || fallback)
    .split(",")
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);

const DURATION_MS = num("BENCH_DURATION_S", 3) * 1000;
const WARMUP_MS = num("BENCH_WARMUP_S", 1) * 1000;
const RAW_MS = num("BENCH_RAW_S", 1) * 1000;
const CLIENTS = list("BENCH_CLIENTS", "1,4,16,64");
const BATCHES = list("BENCH_BATCHES", "1,8,32,64,128,256");
const CORES = availableParallelism();
const PY_WORKERS = num("BENCH_PY_WORKERS", CORES);
const PY_THREADS = num("BENCH_PY_INTRA_OP_THREADS", 1);
const DEFAULT_SETTINGS =
  "threads=1:ASTROLENS_INTRA_OP_THREADS=1;" +
  "threads=1 batch=256:ASTROLENS_INTRA_OP_THREADS=1,ASTROLENS_BATCH_MAX_TILES=256;" +
  "threads=1 wait=0:ASTROLENS_INTRA_OP_THREADS=1,ASTROLENS_BATCH_MAX_WAIT_MS=0;" +
  "batch=256:ASTROLENS_BATCH_MAX_TILES=256";
const SETTINGS = parseSettings(process.env.BENCH_SETTINGS?.trim() || DEFAULT_SETTINGS);

const startFailures = [];
const children = new Set();
const results = { machine: {}, raw: [], http: [], settings: [], notes: [] };
const log = (...args) => process.stderr.write(`[bench] ${args.join(" ")}\n`);

process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(130));
}

// --------------------------------------------------------------------------- helpers
function parseSettings(spec) {
  if (spec === "none") return [];
  return spec
    .split(";")
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf(":");
      const label = entry.slice(0, at).trim();
      const env = Object.fromEntries(
        entry
          .slice(at + 1)
          .split(",")
          .filter(Boolean)
          .map((kv) => kv.split("=").map((s) => s.trim())),
      );
      return { label, env };
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds used so far by `pid` and its descendants (Linux /proc). */
function treeCpuSeconds(pid) {
  const parents = new Map();
  const ticks = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(Number(entry), Number(fields[1]));
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // the process ended meanwhile
    }
  }
  const tree = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [child, parent] of parents) {
      if (tree.has(parent) && !tree.has(child)) {
        tree.add(child);
        grew = true;
      }
    }
  }
  let total = 0;
  for (const p of tree) total += ticks.get(p) ?? 0;
  return total / CLK_TCK;
}

/** CPU seconds the whole machine has been busy (all cores, /proc/stat). */
function machineBusySeconds() {
  const fields = readFileSync("/proc/stat", "utf8")
    .split("\n", 1)[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - fields[3] - fields[4]) / CLK_TCK;
}

/** Cores kept busy by everything on the machine over `ms` (to spot other work running). */
async function backgroundLoad(ms) {
  const m0 = machineBusySeconds();
  const c0 = selfCpuSeconds();
  await sleep(ms);
  return (machineBusySeconds() - m0 - (selfCpuSeconds() - c0)) / (ms / 1000);
}

const selfCpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

function post(agent, port, body) {
  return new Promise((done) => {
    const request = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/invocations",
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (response) => {
        let bytes = 0;
        response.on("data", (chunk) => {
          bytes += chunk.length;
        });
        response.on("end", () => done({ status: response.statusCode, bytes }));
        response.on("error", () => done({ status: 0, bytes }));
      },
    );
    request.on("error", () => done({ status: 0, bytes: 0 }));
    request.end(body);
  });
}

function getJson(port, path) {
  return new Promise((done) => {
    const request = http.get({ host: "127.0.0.1", port, path, timeout: 1000 }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (c) => {
        text += c;
      });
      response.on("end", () => done({ status: response.statusCode, text }));
    });
    request.on("timeout", () => request.destroy());
    request.on("error", () => done({ status: 0, text: "" }));
  });
}

function postJson(port, body) {
  return new Promise((done) => {
    const request = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/invocations",
        method: "POST",
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (c) => {
          text += c;
        });
        response.on("end", () => done({ status: response.statusCode, json: safeJson(text) }));
      },
    );
    request.on("error", () => done({ status: 0, json: undefined }));
    request.end(body);
  });
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Closed loop: `clients` clients send back to back on a keep-alive agent. Throughput and
 * latencies come from the requests that finish inside the measured window.
 */
async function closedLoop({ port, pid, body, tilesPerRequest, clients }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const start = performance.now();
  const from = start + WARMUP_MS;
  const to = from + DURATION_MS;
  const latencies = [];
  let errors = 0;
  const cpu = snapshotCpu(pid, from, to);
  const client = async () => {
    while (performance.now() < to) {
      const t0 = performance.now();
      const reply = await post(agent, port, body);
      const t1 = performance.now();
      if (t1 < from || t1 > to) continue;
      if (reply.status === 200) latencies.push(t1 - t0);
      else errors += 1;
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  agent.destroy();
  return summarise(latencies, errors, tilesPerRequest, await cpu, `${clients}`);
}

/** Open loop: requests leave at a fixed rate whatever is in flight; latency from the scheduled time. */
async function openLoop({ port, pid, body, tilesPerRequest, rate }) {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: Number.POSITIVE_INFINITY,
    maxFreeSockets: 1024,
  });
  const interval = 1000 / rate;
  const start = performance.now();
  const from = start + WARMUP_MS;
  const to = from + DURATION_MS;
  const latencies = [];
  let errors = 0;
  const pending = new Set();
  const cpu = snapshotCpu(pid, from, to);
  let next = start;
  await new Promise((finish) => {
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < to) {
        const scheduled = next;
        next += interval;
        const p = post(agent, port, body).then((reply) => {
          if (scheduled < from) return;
          if (reply.status === 200) latencies.push(performance.now() - scheduled);
          else errors += 1;
        });
        pending.add(p);
        p.finally(() => pending.delete(p));
      }
      if (next >= to) {
        Promise.all(pending).then(finish);
        return;
      }
      setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  });
  agent.destroy();
  return summarise(latencies, errors, tilesPerRequest, await cpu, `open @ ${rate.toFixed(0)} req/s`);
}

/** CPU seconds per second (= cores busy) of the server tree and of this process over [from, to]. */
async function snapshotCpu(pid, from, to) {
  await sleep(Math.max(0, from - performance.now()));
  const s0 = treeCpuSeconds(pid);
  const c0 = selfCpuSeconds();
  const m0 = machineBusySeconds();
  const t0 = performance.now();
  await sleep(Math.max(0, to - performance.now()));
  const seconds = (performance.now() - t0) / 1000;
  const server = (treeCpuSeconds(pid) - s0) / seconds;
  const client = (selfCpuSeconds() - c0) / seconds;
  return { server, client, other: Math.max(0, (machineBusySeconds() - m0) / seconds - server - client) };
}

function summarise(latencies, errors, tilesPerRequest, cpu, load) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const reqPerSec = latencies.length / (DURATION_MS / 1000);
  return {
    load,
    requests: latencies.length,
    errors,
    reqPerSec,
    tilesPerSec: reqPerSec * tilesPerRequest,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    serverCores: cpu.server,
    clientCores: cpu.client,
    otherCores: cpu.other,
  };
}

// --------------------------------------------------------------------------- servers
async function waitReady(port, child, what, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    }
    const ping = await getJson(port, "/ping");
    if (ping.status === 200) return;
    await sleep(100);
  }
  throw new Error(`${what} did not answer /ping with 200 within ${timeoutMs / 1000} s`);
}

async function startChild(what, command, args, env, logName) {
  const port = await freePort();
  const logFd = openSync(join(OUT, logName), "w");
  const child = spawn(command, args(port), {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ["ignore", logFd, logFd],
  });
  children.add(child);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    children.delete(child);
  };
  try {
    await waitReady(port, child, what);
  } catch (error) {
    await stop();
    throw new Error(`${error.message} (log: ${join(OUT, logName)})`);
  }
  return { port, pid: child.pid, stop };
}

function startService(label, extraEnv = {}) {
  return startChild(
    `the service (${label})`,
    process.execPath,
    () => [join(ROOT, "service/serve.js")],
    { ASTROLENS_MODEL_DIR: MODEL_DIR, ASTROLENS_EMF_INTERVAL_MS: "0", ...extraEnv },
    `service-${label.replace(/[^a-z0-9=]+/gi, "_")}.log`,
  );
}

async function startPython() {
  const server = await startChild(
    "the Python peer",
    PY,
    (port) => [
      "-m",
      "uvicorn",
      "peer_app:app",
      "--app-dir",
      join(ROOT, "scripts/bench"),
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--workers",
      String(PY_WORKERS),
      "--no-access-log",
      "--log-level",
      "warning",
    ],
    { ASTROLENS_MODEL_DIR: MODEL_DIR, BENCH_PY_INTRA_OP_THREADS: String(PY_THREADS) },
    "python-peer.log",
  );
  // /ping answers once one worker is up; give the others time to load their sessions.
  await sleep(2000);
  return server;
}

// --------------------------------------------------------------------------- setup
function sha256File(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The Python peer's venv, (re)installed from the pinned requirements when they changed. */
function ensureVenv() {
  const stamp = join(VENV, ".requirements.sha256");
  const want = sha256File(REQUIREMENTS);
  if (existsSync(PY) && existsSync(stamp) && readFileSync(stamp, "utf8").trim() === want) return;
  const python = ["python3.11", "python3"].find((p) => {
    try {
      execFileSync(p, ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  });
  if (python === undefined) throw new Error("no python3 to create the Python peer's venv");
  log(`installing the Python peer into ${VENV} (${python}, ${REQUIREMENTS})`);
  if (!existsSync(PY)) execFileSync(python, ["-m", "venv", VENV], { stdio: "inherit" });
  execFileSync(PY, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  writeFileSync(stamp, `${want}\n`);
}

function ensurePayloads() {
  const files = ["payload-64.json", "payload-256.json"].map((f) => join(OUT, f));
  const script = join(ROOT, "scripts/bench/make_payloads.py");
  if (files.every((f) => existsSync(f) && statSync(f).mtimeMs >= statSync(script).mtimeMs)) return;
  execFileSync(PY, [script, OUT], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

async function imageSize() {
  const buildJson = join(ROOT, ".local/release/build/build.json");
  if (!existsSync(buildJson)) return undefined;
  const build = JSON.parse(readFileSync(buildJson, "utf8"));
  let uncompressed = "n/a";
  try {
    const { stdout } = await promisify(execFile)(
      "buildah",
      [
        "--root",
        join(ROOT, ".local/containers/storage"),
        "--runroot",
        join(ROOT, ".local/containers/run"),
        "--storage-driver",
        "vfs",
        "images",
        "--format",
        "{{.Size}}",
        "localhost/astrolens-inference:candidate",
      ],
      { timeout: 30_000 },
    );
    uncompressed = stdout.trim() || "n/a";
  } catch (error) {
    uncompressed = `n/a (${(error.stderr || error.message || "").toString().split("\n")[0].slice(0, 80)})`;
  }
  return { sizeBytes: build.sizeBytes, layers: build.layers, digest: build.digest, uncompressed };
}

// --------------------------------------------------------------------------- (a) raw sessions
async function rawSessions(tiles, manifest, intraOpThreads, extra) {
  const require = createRequire(join(ROOT, "service/package.json"));
  const { InferenceSession, Tensor } = require("onnxruntime-node");
  // The options of service/src/inference/runner.ts, verbatim.
  const options = {
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
    ...(intraOpThreads === undefined ? {} : { intraOpNumThreads: intraOpThreads }),
    ...(extra === undefined ? {} : { extra }),
  };
  const [classifier, detector] = await Promise.all(
    ["classifier", "detector"].map((part) =>
      InferenceSession.create(join(MODEL_DIR, manifest[part].file), options),
    ),
  );
  const size = manifest.tileSize;
  const rows = [];
  for (const batchSize of BATCHES) {
    const batch = new Float32Array(batchSize * size * size);
    for (let i = 0; i < batchSize; i++) batch.set(tiles[i % tiles.length], i * size * size);
    const dims = [batchSize, 1, size, size];
    // Both models on the same batch, concurrently, a fresh tensor each run: as the runner does.
    const once = () =>
      Promise.all([
        classifier.run({ [manifest.classifier.input.name]: new Tensor("float32", batch, dims) }),
        detector.run({ [manifest.detector.input.name]: new Tensor("float32", batch, dims) }),
      ]);
    for (let i = 0; i < 3; i++) await once();
    let runs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < RAW_MS) {
      await once();
      runs += 1;
    }
    const seconds = (performance.now() - t0) / 1000;
    rows.push({ batchSize, tilesPerSec: (runs * batchSize) / seconds, msPerBatch: (seconds * 1000) / runs });
  }
  await Promise.all([classifier.release(), detector.release()]);
  return rows;
}

/** The service's own runner (copy into one batch, both sessions, split per tile) at one batch size. */
async function runnerThroughput(analyser, tiles, batchSize) {
  const batch = Array.from({ length: batchSize }, (_, i) => tiles[i % tiles.length]);
  for (let i = 0; i < 3; i++) await analyser.run(batch);
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < RAW_MS) {
    await analyser.run(batch);
    runs += 1;
  }
  return (runs * batchSize) / ((performance.now() - t0) / 1000);
}

// --------------------------------------------------------------------------- HTTP sweeps
async function sweep(server, name, payloads, { halfLoad = true, clients = CLIENTS } = {}) {
  const rows = [];
  for (const payload of payloads) {
    const points = [];
    for (const c of clients) {
      log(`${name}: ${payload.label}, ${c} client(s)`);
      const point = await closedLoop({
        port: server.port,
        pid: server.pid,
        body: payload.body,
        tilesPerRequest: payload.tiles,
        clients: c,
      });
      points.push({ server: name, payload: payload.label, kind: "closed", clients: c, ...point });
    }
    rows.push(...points);
    if (halfLoad) {
      const peak = points.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a));
      const rate = peak.reqPerSec / 2;
      log(`${name}: ${payload.label}, open loop at ${rate.toFixed(0)} req/s (half of peak)`);
      const point = await openLoop({
        port: server.port,
        pid: server.pid,
        body: payload.body,
        tilesPerRequest: payload.tiles,
        rate,
      });
      rows.push({ server: name, payload: payload.label, kind: "half", clients: undefined, ...point });
    }
  }
  return rows;
}

async function parity(servicePort, pythonPort, body) {
  const [a, b] = await Promise.all([postJson(servicePort, body), postJson(pythonPort, body)]);
  if (a.status !== 200 || b.status !== 200 || !a.json || !b.json)
    return "parity check: a server did not answer 200";
  let sameClass = 0;
  let maxDp = 0;
  let maxDood = 0;
  let detA = 0;
  let detB = 0;
  let maxDbox = 0;
  a.json.tiles.forEach((t, i) => {
    const u = b.json.tiles[i];
    if (u === undefined) return;
    if (t.class === u.class) sameClass += 1;
    for (const k of Object.keys(t.probabilities))
      maxDp = Math.max(maxDp, Math.abs(t.probabilities[k] - u.probabilities[k]));
    for (const k of ["msp", "energy", "mahalanobis"])
      maxDood = Math.max(maxDood, Math.abs(t.ood[k] - u.ood[k]) / Math.max(1, Math.abs(t.ood[k])));
    detA += t.detections.length;
    detB += u.detections.length;
    if (t.detections.length === u.detections.length) {
      t.detections.forEach((d, j) => {
        const e = u.detections[j];
        for (const k of ["x", "y", "width", "height"]) maxDbox = Math.max(maxDbox, Math.abs(d[k] - e[k]));
      });
    }
  });
  return (
    `parity (16-tile image, service vs Python peer): ${sameClass}/${a.json.tiles.length} tiles same class, ` +
    `max |dp| ${maxDp.toExponential(1)}, max rel. OOD-score diff ${maxDood.toExponential(1)}, ` +
    `detections ${detA} vs ${detB}, max box diff ${maxDbox.toExponential(1)} px`
  );
}

// --------------------------------------------------------------------------- report
const f0 = (v) => (Number.isFinite(v) ? v.toFixed(0) : "n/a");
const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : "n/a");
const f2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : "n/a");
const ms = (v) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : "n/a");
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const table = (head, rows) =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_h, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");

function peakOf(rows, server, payload) {
  const points = rows.filter((r) => r.server === server && r.payload === payload && r.kind === "closed");
  return points.length ? points.reduce((a, b) => (b.tilesPerSec > a.tilesPerSec ? b : a)) : undefined;
}

function report({ manifest, raw, runner, httpRows, settingsRows, image, parityLine, payloads }) {
  const out = [];
  const cpu = cpus()[0]?.model?.trim() ?? "unknown CPU";
  out.push(`## AstroLens inference benchmark (${new Date().toISOString().slice(0, 16)}Z)`);
  out.push("");
  out.push(
    `${cpu}, ${CORES} cores, node ${process.version}; model ${manifest.name} ${manifest.version} from ` +
      `${MODEL_DIR.replace(`${ROOT}/`, "")}; payloads: JSON, ${payloads.map((p) => `${p.label} = ${(p.body.length / 1024).toFixed(0)} KiB`).join(", ")}; ` +
      `${DURATION_MS / 1000} s measured after ${WARMUP_MS / 1000} s warm-up per HTTP point.`,
  );
  out.push("");

  out.push(
    "### (a) Raw onnxruntime-node sessions (classifier + detector per tile, run concurrently as the runner does)",
  );
  out.push("");
  out.push(
    table(
      ["intra-op threads", ...BATCHES.map((b) => `batch ${b}`), "best tiles/s"],
      raw.map((r) => {
        const best = r.rows.reduce((a, b) => (b.tilesPerSec > a.tilesPerSec ? b : a));
        return [
          r.label,
          ...r.rows.map((x) => f0(x.tilesPerSec)),
          `**${f0(best.tilesPerSec)}** (batch ${best.batchSize})`,
        ];
      }),
    ),
  );
  if (runner) {
    out.push("");
    out.push(
      `The service's own runner (\`createModelRunner().run\`: copy into one batch, both sessions, split per tile), service-default threads: ` +
        runner.map((r) => `batch ${r.batchSize}: ${f0(r.tilesPerSec)} tiles/s`).join(", ") +
        ".",
    );
  }
  out.push("");

  out.push("### (b) The service over HTTP vs (c) the Python peer (same requests, same machine)");
  out.push("");
  out.push(
    "CPU columns: cores kept busy during the measured window by the server (process tree), by this load generator, and by anything else on the machine.",
  );
  out.push("");
  out.push(
    table(
      [
        "server",
        "payload",
        "load",
        "req/s",
        "tiles/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU",
        "load-gen CPU",
        "other CPU",
      ],
      httpRows.map((r) => [
        r.server,
        r.payload,
        r.kind === "half"
          ? `open loop, ${r.load.replace("open @ ", "")} (half peak)`
          : `${r.clients} client${r.clients === 1 ? "" : "s"}`,
        f0(r.reqPerSec),
        f0(r.tilesPerSec),
        ms(r.p50),
        ms(r.p99),
        String(r.errors),
        f2(r.serverCores),
        f2(r.clientCores),
        f2(r.otherCores),
      ]),
    ),
  );
  out.push("");

  if (settingsRows.length) {
    out.push("### Service settings (peak over the client counts shown, the same payloads)");
    out.push("");
    out.push(
      table(
        [
          "setting",
          ...payloads.map((p) => `${p.label} tiles/s (clients)`),
          ...payloads.map((p) => `${p.label} p99 ms at peak`),
        ],
        settingsRows.map((s) => [
          s.label,
          ...s.peaks.map((p) => (p ? `${f0(p.tilesPerSec)} (${p.clients})` : "n/a")),
          ...s.peaks.map((p) => (p ? ms(p.p99) : "n/a")),
        ]),
      ),
    );
    out.push("");
  }

  // Ratios.
  const rawBest = Math.max(...(raw[0]?.rows.map((r) => r.tilesPerSec) ?? [Number.NaN]));
  const rawBestAny = Math.max(...raw.flatMap((r) => r.rows.map((x) => x.tilesPerSec)));
  const lines = [];
  for (const p of payloads) {
    const svc = peakOf(httpRows, "service", p.label);
    const pyPeak = peakOf(httpRows, "python peer", p.label);
    const single = httpRows.find(
      (r) => r.server === "service" && r.payload === p.label && r.kind === "closed" && r.clients === 1,
    );
    const half = httpRows.find((r) => r.server === "service" && r.payload === p.label && r.kind === "half");
    const pySingle = httpRows.find(
      (r) => r.server === "python peer" && r.payload === p.label && r.kind === "closed" && r.clients === 1,
    );
    const pyHalf = httpRows.find(
      (r) => r.server === "python peer" && r.payload === p.label && r.kind === "half",
    );
    if (svc) {
      lines.push([
        `b/a, ${p.label}: service peak / raw limit`,
        `${f0(svc.tilesPerSec)} / ${f0(rawBest)} = **${f2(svc.tilesPerSec / rawBest)}**`,
        ">= 0.8",
      ]);
    }
    if (svc && pyPeak) {
      lines.push([
        `b/c, ${p.label}: service peak / Python peak`,
        `${f0(svc.tilesPerSec)} / ${f0(pyPeak.tilesPerSec)} = **${f2(svc.tilesPerSec / pyPeak.tilesPerSec)}**`,
        ">= 2",
      ]);
    }
    if (single && half) {
      lines.push([
        `service, ${p.label}: p99 at half load / single-request p50`,
        `${ms(half.p99)} / ${ms(single.p50)} ms = **${f2(half.p99 / single.p50)}**`,
        "<= 3",
      ]);
    }
    if (pySingle && pyHalf) {
      lines.push([
        `Python peer, ${p.label}: p99 at half load / single-request p50`,
        `${ms(pyHalf.p99)} / ${ms(pySingle.p50)} ms = ${f2(pyHalf.p99 / pySingle.p50)}`,
        "(reference)",
      ]);
    }
  }
  if (settingsRows.length) {
    const best = bestSetting(settingsRows);
    if (best) {
      const tiles = best.peaks.map((p) => p?.tilesPerSec ?? Number.NaN);
      lines.push([
        `best setting: ${best.label}`,
        payloads
          .map(
            (p, i) =>
              `${p.label}: ${f0(tiles[i])} tiles/s = ${f2(tiles[i] / rawBestAny)} of the best raw limit, ` +
              `${f2(tiles[i] / (peakOf(httpRows, "python peer", p.label)?.tilesPerSec ?? Number.NaN))} x the Python peak`,
          )
          .join("; "),
        "",
      ]);
    }
  }
  if (raw.length > 1) {
    lines.push(["raw limit, best over thread settings", `${f0(rawBestAny)} tiles/s`, ""]);
  }
  if (image) {
    lines.push([
      "image size",
      `${mb(image.sizeBytes)} compressed (build.json sizeBytes, ${image.layers} layers); uncompressed (buildah): ${image.uncompressed}`,
      "",
    ]);
  } else {
    lines.push(["image size", "n/a (no .local/release/build/build.json)", ""]);
  }
  out.push("### Summary");
  out.push("");
  out.push(table(["figure", "value", "aim"], lines));
  if (parityLine) {
    out.push("");
    out.push(parityLine);
  }
  for (const note of results.notes) {
    out.push("");
    out.push(`Note: ${note}`);
  }
  return out.join("\n");
}

function bestSetting(settingsRows) {
  // Ranked by the many-tile payload's peak (the throughput case), then the one-tile one.
  const key = (s) => s.peaks.map((p) => p?.tilesPerSec ?? 0).reverse();
  return [...settingsRows].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (kb[i] !== ka[i]) return kb[i] - ka[i];
    return 0;
  })[0];
}

// --------------------------------------------------------------------------- main
async function main() {
  const began = performance.now();
  mkdirSync(OUT, { recursive: true });
  const serverBundle = join(ROOT, "service/dist/server.js");
  if (!existsSync(serverBundle))
    throw new Error("service/dist/server.js is missing: run `npm run build` first");
  if (newestMtime(join(ROOT, "service/src")) > statSync(serverBundle).mtimeMs) {
    results.notes.push(
      "service/src is newer than service/dist/server.js: the bundle measured may be stale (`npm run build`).",
    );
  }

  const background = await backgroundLoad(1000);
  results.machine.backgroundCores = background;
  if (background > 0.25) {
    results.notes.push(
      `before the run, other processes kept ${background.toFixed(2)} of ${CORES} cores busy: every figure below ` +
        'shares the machine with them (see the "other CPU" column); rerun on a quiet machine for absolute numbers.',
    );
  }
  let pythonReady = process.env.BENCH_SKIP_PYTHON !== "1";
  try {
    ensureVenv();
  } catch (error) {
    startFailures.push(`Python venv: ${error.message}`);
    pythonReady = false;
  }
  if (!existsSync(PY)) throw new Error("no Python venv: the payloads are made with its numpy");
  ensurePayloads();
  const payloads = [
    { label: "64x64 (1 tile)", body: readFileSync(join(OUT, "payload-64.json")), tiles: 1 },
    { label: "256x256 (16 tiles)", body: readFileSync(join(OUT, "payload-256.json")), tiles: 16 },
  ];

  // The service's own decode + tiling + robust-asinh produce the pre-normalised tiles.
  const { loadCoreAnalyser } = await import(pathToFileURL(serverBundle).href);
  const manifest = JSON.parse(readFileSync(join(MODEL_DIR, "manifest.json"), "utf8"));
  const analyser = await loadCoreAnalyser(MODEL_DIR);
  const prepared = await analyser.prepare(payloads[1].body, "application/json", { maxPixels: 4096 * 4096 });
  const tiles = prepared.tiles.map((t) => t.pixels);

  log("(a) raw sessions");
  const raw = [];
  raw.push({ label: "service default (unset)", rows: await rawSessions(tiles, manifest, undefined) });
  raw.push({ label: "1", rows: await rawSessions(tiles, manifest, 1) });
  raw.push({
    label: "unset, spinning off (session.intra_op.allow_spinning=0)",
    rows: await rawSessions(tiles, manifest, undefined, { session: { intra_op: { allow_spinning: "0" } } }),
  });
  const runner = [];
  for (const b of [64, 256])
    runner.push({ batchSize: b, tilesPerSec: await runnerThroughput(analyser, tiles, b) });
  results.raw = raw;

  log("(b) the service, default settings");
  const httpRows = [];
  let servicePort;
  let service;
  try {
    service = await startService("default");
    httpRows.push(...(await sweep(service, "service", payloads)));
  } catch (error) {
    startFailures.push(error.message);
  }

  let parityLine;
  if (pythonReady) {
    log("(c) the Python peer");
    try {
      const python = await startPython();
      if (service) {
        servicePort = service.port;
        parityLine = await parity(servicePort, python.port, payloads[1].body);
      }
      httpRows.push(...(await sweep(python, "python peer", payloads)));
      await python.stop();
    } catch (error) {
      startFailures.push(error.message);
    }
  }
  await service?.stop();

  const settingsRows = [];
  if (SETTINGS.length) {
    // The default row comes from the sweep above.
    settingsRows.push({
      label: "default (batch 64, wait 2 ms, threads unset)",
      peaks: payloads.map((p) => peakOf(httpRows, "service", p.label)),
    });
    const settingClients = CLIENTS.filter((c) => c >= 16);
    for (const setting of SETTINGS) {
      log(`settings: ${setting.label}`);
      try {
        const server = await startService(setting.label, setting.env);
        const rows = await sweep(server, setting.label, payloads, {
          halfLoad: false,
          clients: settingClients.length ? settingClients : CLIENTS,
        });
        await server.stop();
        settingsRows.push({
          label: setting.label,
          env: setting.env,
          peaks: payloads.map((p) => peakOf(rows, setting.label, p.label)),
        });
      } catch (error) {
        startFailures.push(error.message);
      }
    }
  }

  const image = await imageSize();
  Object.assign(results, {
    machine: { ...results.machine, cpu: cpus()[0]?.model, cores: CORES, node: process.version },
    model: { dir: MODEL_DIR, name: manifest.name, version: manifest.version },
    runner,
    http: httpRows,
    settings: settingsRows,
    image,
    elapsedSeconds: (performance.now() - began) / 1000,
  });
  const markdown = report({ manifest, raw, runner, httpRows, settingsRows, image, parityLine, payloads });
  const footer = `\n\n_Whole run: ${f1((performance.now() - began) / 1000)} s. Figures: .local/bench/results.json; server logs: .local/bench/*.log._`;
  writeFileSync(join(OUT, "report.md"), `${markdown}${footer}\n`);
  writeFileSync(join(OUT, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${markdown}${footer}\n`);
  if (startFailures.length) {
    process.stderr.write(`\nfailed to start:\n${startFailures.map((f) => `- ${f}`).join("\n")}\n`);
    process.exitCode = 1;
  }
  // The analyser's sessions keep no handle open, but do not wait for them either.
  process.exit(process.exitCode ?? 0);
}

main().catch((error) => {
  process.stderr.write(`bench:service failed to start: ${error.stack ?? error}\n`);
  process.exit(1);
});
