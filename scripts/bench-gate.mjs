#!/usr/bin/env node
// `npm run bench:gate`: the accuracy gate's speed on this machine, in one run, against the
// limit: raw onnxruntime-node sessions opened as the service's runner opens them.
//
//   1. Raw limit: the sessions the gate runs, opened as the service's runner opens them
//      (onnxruntime's default threads, no spinning): for v2 then v1, classifiers on the
//      labelled and OOD items, detectors on the detection items, batch 64, on random normal
//      tiles (decoding real images needs the service's code, which is what the gate adds).
//   2. Gate end to end: `runGate` (service/dist/gate/index.js) v2 against v1 on the shipped
//      sets (synthetic + ood + detection), wall time; images/s counts each item once.
//   3. 10,000 images: the 500 synthetic items repeated 20 times in a temporary manifest
//      (its `synthetic` folder a symlink to the shipped one), `runGate` v2 against v1.
//   4. Where the time goes: the raw sessions run again on the gate's exact batch shapes
//      (same tile count), and their time (plus opening the sessions) is subtracted from the
//      gate's evaluation time; the rest is reading, decoding, tiling and normalising, and
//      assembling results (softmax, OOD scores, YOLO decoding) in JavaScript.
//
// A benchmark, not a test: nothing is asserted. Exits 1 only when something fails to run,
// after printing whatever it did measure.
//
//   5. Sensitivity: the raw limit and the gate again with intra-op threads = BENCH_ALT_THREADS
//      (default 1; 0 skips) — onnxruntime-node 1.30 runs `session.run` on the JS thread
//      (inside setImmediate), so sessions never overlap and one thread uses one core of two.
//
// Environment knobs (optional):
// BENCH_ALT_THREADS (intra-op threads for the sensitivity rows, default 1, 0 = skip).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MODELS = { v1: join(ROOT, "service/models/v1"), v2: join(ROOT, "service/models/v2") };
const EVAL = join(ROOT, "test/fixtures/eval");
const SETS = {
  classification: join(EVAL, "synthetic/manifest.json"),
  ood: join(EVAL, "ood/manifest.json"),
  detection: join(EVAL, "detection/manifest.json"),
};
const GATE_BUNDLE = join(ROOT, "service/dist/gate/index.js");
const BATCH = 64;
const REPEAT = 20;
const AIM_RATIO = 0.9;
const AIM_10K_S = 10;
const CORES = availableParallelism();
// The runner's choice (service/src/inference/runner.ts) when intraOpThreads is not given:
// onnxruntime's own default (every core), spinning off.
const INTRA_OP = undefined;
const threadsLabel = (threads) =>
  threads === undefined ? "onnxruntime default (all cores)" : String(threads);
// The gate runs only the model each set scores: classifiers on the labelled and OOD sets,
// detectors on the detection set.
const CLASSIFIER = { classifier: true, detector: false };
const DETECTOR = { classifier: false, detector: true };
const SET_PARTS = [CLASSIFIER, CLASSIFIER, DETECTOR];
const RAW_REPEAT = 3;

const ALT_THREADS = (() => {
  const raw = process.env.BENCH_ALT_THREADS?.trim();
  const n = raw ? Number(raw) : 1;
  return Number.isInteger(n) && n > 0 ? n : 0;
})();
const log = (...args) => process.stderr.write(`[bench:gate] ${args.join(" ")}\n`);
const failures = [];
const now = () => performance.now();
const sec = (ms) => ms / 1000;

// ------------------------------------------------------------------ machine
const loadavg = readFileSync("/proc/loadavg", "utf8").trim().split(/\s+/);
const load1 = Number(loadavg[0]);
// CPU busy (all processes) over 0.5 s before starting: loadavg decays slowly, this does not.
const cpuTimes = () => {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { idle, total: f.reduce((x, y) => x + y, 0) };
};
const busyBefore = await (async () => {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, 500));
  const b = cpuTimes();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
})();
const machine = {
  node: process.version,
  cores: CORES,
  cpu: cpus()[0]?.model?.trim() ?? "unknown",
  loadavg: loadavg.slice(0, 3).join(" "),
};

// ------------------------------------------------------------------ raw sessions
const ort = createRequire(new URL("../service/package.json", import.meta.url))("onnxruntime-node");

function randomNormalTiles(count, size, seed = 12345) {
  // Deterministic xorshift32 + Box-Muller: N(0, 1) values, already "normalised".
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const data = new Float32Array(count * size * size);
  for (let i = 0; i < data.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    data[i] = r * Math.cos(t);
    if (i + 1 < data.length) data[i + 1] = r * Math.sin(t);
  }
  return data;
}

async function openModel(dir, threads = INTRA_OP) {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const options = {
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
    ...(threads !== undefined && { intraOpNumThreads: threads }),
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
  const [classifier, detector] = await Promise.all([
    ort.InferenceSession.create(join(dir, manifest.classifier.file), options),
    ort.InferenceSession.create(join(dir, manifest.detector.file), options),
  ]);
  return {
    tileSize: manifest.tileSize,
    classifier,
    detector,
    cIn: manifest.classifier.input.name,
    dIn: manifest.detector.input.name,
  };
}

/** Batch shapes: `counts` items per set, each set cut into batches of 64 (as the gate reads). */
function batchShapes(counts, parts = counts.map(() => CLASSIFIER)) {
  const shapes = [];
  counts.forEach((n, set) => {
    for (let i = 0; i < n; i += BATCH) shapes.push({ n: Math.min(BATCH, n - i), ...parts[set] });
  });
  return shapes;
}

/** Runs every batch through `models` in turn (candidate first, as the gate); ms. */
async function runRaw(models, shapes, pool, size) {
  const tensors = shapes.map(({ n, classifier, detector }, i) => {
    const off = ((i * BATCH) % (pool.length / (size * size) - BATCH + 1)) * size * size;
    const tensor = new ort.Tensor("float32", pool.subarray(off, off + n * size * size), [n, 1, size, size]);
    return { tensor, classifier, detector };
  });
  const cpu0 = process.cpuUsage();
  const started = now();
  for (const m of models) {
    for (const { tensor, classifier, detector } of tensors) {
      if (classifier) await m.classifier.run({ [m.cIn]: tensor });
      if (detector) await m.detector.run({ [m.dIn]: tensor });
    }
  }
  const ms = now() - started;
  const cpu = process.cpuUsage(cpu0);
  lastCpuPerWall = (cpu.user + cpu.system) / 1000 / ms;
  return ms;
}
let lastCpuPerWall = Number.NaN;

/**
 * Opens v2 and v1 with `threads`, warms up, then runs the gate's own session work on the
 * shipped sets (`counts` items per set, each set through the model it scores), RAW_REPEAT
 * times, on random tiles; {ms, images, cpu, openMs}.
 */
async function rawLimit(threads, counts) {
  const openStart = now();
  const v2 = await openModel(MODELS.v2, threads);
  const v1 = await openModel(MODELS.v1, threads);
  const openMs = now() - openStart;
  const models = [v2, v1];
  const size = v2.tileSize;
  const pool = randomNormalTiles(16 * BATCH, size);
  await runRaw(models, batchShapes([BATCH, BATCH], [CLASSIFIER, DETECTOR]), pool, size); // warm-up
  const shapes = Array.from({ length: RAW_REPEAT }, () => batchShapes(counts, SET_PARTS)).flat();
  const ms = await runRaw(models, shapes, pool, size);
  const images = RAW_REPEAT * counts.reduce((a, b) => a + b, 0);
  return { models, size, result: { ms, images, cpu: lastCpuPerWall, openMs } };
}

// ------------------------------------------------------------------ gate
function quietLogger(groups) {
  return {
    debug: () => {},
    info: (m) => log(m),
    warning: (m) => log(`warning: ${m}`),
    error: (m) => log(`error: ${m}`),
    setSecret: () => {},
    async group(name, fn) {
      const started = now();
      try {
        return await fn();
      } finally {
        groups[name] = (groups[name] ?? 0) + (now() - started);
      }
    },
  };
}

async function timeGate(runGate, sets, intraOpThreads) {
  const groups = {};
  const cpu0 = process.cpuUsage();
  const started = now();
  const result = await runGate({
    candidate: MODELS.v2,
    production: MODELS.v1,
    sets,
    logger: quietLogger(groups),
    ...(intraOpThreads !== undefined && { intraOpThreads }),
  });
  const wallMs = now() - started;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, groups, result, cpu: (cpu.user + cpu.system) / 1000 / wallMs };
}

// ------------------------------------------------------------------ run
const alt = { raw: null, gate: null, tenk: null };
let tenkManifest;
const figures = { raw: null, rawGateShape: null, raw10k: null, openMs: null, gate: null, tenk: null };
let tempDir;
let opened = [];
try {
  log(`node ${machine.node}, ${machine.cores} cores, loadavg ${machine.loadavg}`);
  const countOf = (p) => JSON.parse(readFileSync(p, "utf8")).items.length;
  const counts = [countOf(SETS.classification), countOf(SETS.ood), countOf(SETS.detection)];
  const shipped = counts.reduce((a, b) => a + b, 0);
  const tenkCount = counts[0] * REPEAT;

  // 1. raw limit
  try {
    const { models, result } = await rawLimit(INTRA_OP, counts);
    opened = models;
    figures.raw = result;
    figures.openMs = result.openMs;
    const ms = result.ms;
    log(`raw: ${figures.raw.images} images through v2+v1 in ${sec(ms).toFixed(3)} s`);
  } catch (err) {
    failures.push(`raw sessions: ${err.stack ?? err}`);
  }

  // 2. gate on the shipped sets
  let runGate;
  try {
    ({ runGate } = await import(pathToFileURL(GATE_BUNDLE).href));
    if (typeof runGate !== "function") throw new Error(`${GATE_BUNDLE} exports no runGate (npm run build?)`);
    const g = await timeGate(runGate, SETS);
    figures.gate = { ...g, images: shipped };
    log(
      `gate (shipped sets): ${shipped} items in ${sec(g.wallMs).toFixed(3)} s, verdict ${g.result.comparison.verdict?.outcome ?? g.result.comparison.verdict}`,
    );
  } catch (err) {
    failures.push(`gate on the shipped sets: ${err.stack ?? err}`);
  }

  // 3. gate on 10,000 images
  if (runGate) {
    try {
      tempDir = mkdtempSync(join(tmpdir(), "astrolens-bench-gate-"));
      mkdirSync(join(tempDir, "tenk"));
      symlinkSync(join(EVAL, "synthetic"), join(tempDir, "synthetic"), "dir");
      const base = JSON.parse(readFileSync(SETS.classification, "utf8"));
      const items = Array.from({ length: REPEAT }, () => base.items).flat();
      const manifest = join(tempDir, "tenk/manifest.json");
      tenkManifest = manifest;
      writeFileSync(manifest, JSON.stringify({ ...base, name: `${base.name}-x${REPEAT}`, items }));
      const g = await timeGate(runGate, { classification: manifest });
      figures.tenk = { ...g, images: items.length };
      log(`gate (10k): ${items.length} items in ${sec(g.wallMs).toFixed(3)} s`);
    } catch (err) {
      failures.push(`gate on 10,000 images: ${err.stack ?? err}`);
    }
  }

  // 4. raw again on the gate's exact tile counts and batch shapes (for the breakdown)
  if (opened.length === 2) {
    try {
      const size = opened[0].tileSize;
      const pool = randomNormalTiles(16 * BATCH, size);
      figures.rawGateShape = {
        ms: await runRaw(opened, batchShapes(counts, SET_PARTS), pool, size),
        images: shipped,
      };
      figures.raw10k = { ms: await runRaw(opened, batchShapes([tenkCount]), pool, size), images: tenkCount };
    } catch (err) {
      failures.push(`raw sessions (breakdown): ${err.stack ?? err}`);
    }
    for (const m of opened) await Promise.allSettled([m.classifier.release(), m.detector.release()]);
    opened = [];
  }

  // 5. sensitivity: intra-op threads = ALT_THREADS
  if (ALT_THREADS > 0) {
    try {
      const { models, result } = await rawLimit(ALT_THREADS, counts);
      opened = models;
      alt.raw = result;
      for (const m of opened) await Promise.allSettled([m.classifier.release(), m.detector.release()]);
      opened = [];
      if (runGate) {
        alt.gate = { ...(await timeGate(runGate, SETS, ALT_THREADS)), images: shipped };
        if (tenkManifest)
          alt.tenk = {
            ...(await timeGate(runGate, { classification: tenkManifest }, ALT_THREADS)),
            images: tenkCount,
          };
      }
      log(`sensitivity (intra-op ${ALT_THREADS}): done`);
    } catch (err) {
      failures.push(`sensitivity run (intra-op ${ALT_THREADS}): ${err.stack ?? err}`);
    }
  }
} finally {
  for (const m of opened) await Promise.allSettled([m.classifier.release(), m.detector.release()]);
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
}

// ------------------------------------------------------------------ report
const f3 = (x) => (x === undefined || x === null || !Number.isFinite(x) ? "—" : x.toFixed(3));
const f0 = (x) =>
  x === undefined || x === null || !Number.isFinite(x) ? "—" : Math.round(x).toLocaleString("en-US");
const rate = (r) => (r ? r.images / sec(r.ms ?? r.wallMs) : Number.NaN);
const rawRate = rate(figures.raw);
const gateRate = rate(figures.gate);
const tenkRate = rate(figures.tenk);
const ratio = gateRate / rawRate;
const verdictOf = (g) => {
  const v = g?.result?.comparison?.verdict;
  return typeof v === "string" ? v : (v?.outcome ?? v?.verdict ?? "?");
};

const out = [];
out.push("## Accuracy gate benchmark (`npm run bench:gate`)");
out.push("");
out.push(
  `Node ${machine.node}, ${machine.cores} cores (${machine.cpu}), /proc/loadavg before start: ${machine.loadavg}; ` +
    `onnxruntime-node intra-op threads per session: ${threadsLabel(INTRA_OP)} (no spinning).`,
);
out.push("");
out.push(`CPU busy (all processes, all cores) in the 0.5 s before start: ${(100 * busyBefore).toFixed(0)}%.`);
if (busyBefore >= 0.1) {
  out.push("");
  out.push("> Note: another process was busy on the CPU before the run; the figures may be low.");
} else if (load1 >= 0.5) {
  out.push("");
  out.push(
    `> Note: the 1-minute load average was ${load1} before the run (decaying from earlier work), though the CPU was idle just before start.`,
  );
}
out.push("");
out.push("| Measure | Images | Wall time (s) | Images/s (both models) | CPU/wall | Ratio / aim |");
out.push("|---|---:|---:|---:|---:|---|");
if (figures.raw)
  out.push(
    `| 1. Raw limit: the gate's sessions on the shipped sets x${RAW_REPEAT} (v2 + v1; classifiers on labelled + OOD items, detectors on detection items), batch ${BATCH}, random N(0,1) tiles | ${f0(figures.raw.images)} | ${f3(sec(figures.raw.ms))} | ${f0(rawRate)} | ${f3(figures.raw.cpu)} | the limit (1.00) |`,
  );
if (figures.gate)
  out.push(
    `| 2. Gate end to end, v2 vs v1, shipped sets (${figures.gate.images} items) | ${f0(figures.gate.images)} | ${f3(sec(figures.gate.wallMs))} | ${f0(gateRate)} | ${f3(figures.gate.cpu)} | ${f3(ratio)}x raw (aim >= ${AIM_RATIO}) ${ratio >= AIM_RATIO ? "met" : "not met"} |`,
  );
if (figures.tenk) {
  const t = sec(figures.tenk.wallMs);
  out.push(
    `| 3. Gate end to end, v2 vs v1, 10,000 images (synthetic x${REPEAT}) | ${f0(figures.tenk.images)} | ${f3(t)} | ${f0(tenkRate)} | ${f3(figures.tenk.cpu)} | ${f3(t / AIM_10K_S)}x of ${AIM_10K_S} s (aim < ${AIM_10K_S} s) ${t < AIM_10K_S ? "met" : "not met"}; ${f3(tenkRate / rawRate)}x raw |`,
  );
}
out.push("");

// Where the time goes
const breakdown = (label, g, raw) => {
  if (!g) return;
  const evalMs = g.result.timings.evaluateSeconds * 1000;
  const resolveMs = g.groups["Resolving the models"] ?? Number.NaN;
  const compareMs = g.result.timings.compareSeconds * 1000;
  const sessions = raw?.ms ?? Number.NaN;
  const open = figures.openMs ?? Number.NaN;
  const js = evalMs - sessions - open;
  const other = g.wallMs - resolveMs - evalMs - compareMs;
  const pct = (ms) => `${f3(sec(ms))} s (${((100 * ms) / g.wallMs).toFixed(0)}%)`;
  out.push(`**${label}** — wall ${f3(sec(g.wallMs))} s, verdict \`${verdictOf(g)}\``);
  out.push("");
  out.push("| Phase | Time |");
  out.push("|---|---:|");
  out.push(`| resolve models (read + sha256 both) | ${pct(resolveMs)} |`);
  out.push(`| load + validate eval-set manifests (and other) | ${pct(other)} |`);
  out.push(`| evaluate both models (one pass: each image decoded once, run through both) | ${pct(evalMs)} |`);
  out.push(
    `| · of which ORT sessions running (raw rerun, same ${raw?.images ?? "?"} tiles and batch shapes) | ${pct(sessions)} |`,
  );
  out.push(`| · of which opening 4 sessions (raw) | ${pct(open)} |`);
  out.push(`| · of which read + decode + tile/normalise + assemble (the rest) | ${pct(js)} |`);
  out.push(`| compare (McNemar, bootstrap) | ${pct(compareMs)} |`);
  out.push("");
};
breakdown("Where the time goes: gate on the shipped sets", figures.gate, figures.rawGateShape);
breakdown("Where the time goes: gate on 10,000 images", figures.tenk, figures.raw10k);

if (alt.raw) {
  const ar = rate(alt.raw);
  out.push(
    `**Sensitivity: intra-op threads = ${ALT_THREADS} per session** (not the runner's default, ${threadsLabel(INTRA_OP)}, on ${CORES} cores)`,
  );
  out.push("");
  out.push("| Measure | Images | Wall time (s) | Images/s (both models) | CPU/wall | Ratio / aim |");
  out.push("|---|---:|---:|---:|---:|---|");
  out.push(
    `| Raw limit, threads=${ALT_THREADS} | ${f0(alt.raw.images)} | ${f3(sec(alt.raw.ms))} | ${f0(ar)} | ${f3(alt.raw.cpu)} | ${f3(ar / rawRate)}x the default limit |`,
  );
  if (alt.gate) {
    const r = rate(alt.gate);
    out.push(
      `| Gate, shipped sets, threads=${ALT_THREADS} | ${f0(alt.gate.images)} | ${f3(sec(alt.gate.wallMs))} | ${f0(r)} | ${f3(alt.gate.cpu)} | ${f3(r / ar)}x its raw (aim >= ${AIM_RATIO}) |`,
    );
  }
  if (alt.tenk) {
    const t = sec(alt.tenk.wallMs);
    out.push(
      `| Gate, 10,000 images, threads=${ALT_THREADS} | ${f0(alt.tenk.images)} | ${f3(t)} | ${f0(rate(alt.tenk))} | ${f3(alt.tenk.cpu)} | ${f3(t / AIM_10K_S)}x of ${AIM_10K_S} s (aim < ${AIM_10K_S} s) ${t < AIM_10K_S ? "met" : "not met"}; raw alone would take ${f3(alt.tenk.images / ar)} s |`,
    );
  }
  out.push("");
}
out.push(
  "Raw tiles are random normal values (already normalised), not the eval-set images: decoding " +
    "the real images needs the service's code, which is what the gate's path adds. " +
    "Images/s counts each image once though it runs through both models (each through the session its set scores). " +
    "CPU/wall = this process's CPU seconds per wall second (2.0 = both cores busy).",
);
if (failures.length > 0) {
  out.push("");
  out.push("**Failures:**");
  for (const f of failures) out.push(`- ${f.split("\n")[0]}`);
  for (const f of failures) log(f);
}
process.stdout.write(`${out.join("\n")}\n`);
process.exit(failures.length > 0 ? 1 : 0);
