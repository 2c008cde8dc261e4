// Benchmarks the coordinated rollback against the local AWS: over repeated releases, the
// time from one target failing (or an alarm firing) to the rollback request for the other
// target, p50 and p95, against the watch poll interval. Aim: p95 within poll + 1 s.
//
// Two scenarios, interleaved, each release of the candidate (model v2) starting from the
// baseline (model v1) on both targets:
//
// - alarm: a release alarm is set to ALARM (SetAlarmState) once the release is baking.
//   The failure moment is that call; the request is ECS's rollback request (SageMaker,
//   mid-update, turns back by itself on the same alarm: it is one of its auto-rollback
//   alarms, and UpdateEndpoint is refused while it updates).
// - sagemaker: the local AWS's fault injection makes SageMaker roll its update back by
//   itself (POST /astrolens-api/sagemaker/fail-next-update). The failure moment is when
//   SageMaker ended it (the endpoint's LastModifiedTime, InService on the old config); the
//   request is ECS's rollback request.
//
// Timestamps: the ledger record's rollback.requests (when each request was sent) and
// rollback.detectedAt / latencyMs (the coordinator's own detection-to-request time), and
// the injection moment from this process's clock or SageMaker's. The local AWS runs on
// this machine: one clock.
//
// Usage: npm run bench:rollback   (BENCH_RUNS per scenario, default 6; BENCH_POLL_MS,
// default 250). Needs the local AWS (`astrolens-release local up`); builds or reuses the
// candidate image like the integration tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const runs = Number.parseInt(process.env.BENCH_RUNS ?? "6", 10);
const pollMs = Number.parseInt(process.env.BENCH_POLL_MS ?? "250", 10);
for (const [name, value] of [
  ["BENCH_RUNS", runs],
  ["BENCH_POLL_MS", pollMs],
]) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive whole number`);
    process.exit(2);
  }
}
const root = process.cwd();

// The harness is TypeScript (shared with the integration tests): bundle it for this run.
const out = mkdtempSync(join(tmpdir(), "bench-rollback-"));
await build({
  stdin: {
    contents: [
      'export * from "./test/fixtures/deploy/local-release.ts";',
      'export { deploy } from "./src/deploy/entry.ts";',
      'export { createMemoryLogger } from "./src/gh/logger.ts";',
    ].join("\n"),
    resolveDir: root,
    loader: "ts",
  },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile: join(out, "harness.mjs"),
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  logLevel: "warning",
});
const h = await import(pathToFileURL(join(out, "harness.mjs")).href);
rmSync(out, { recursive: true, force: true });

h.loadLocalEnv();
const logger = h.createMemoryLogger();
const alarm = h.resources.alarms.albTarget5xxRate;
console.log(`bench:rollback: ${runs} run(s) per scenario, watch poll interval ${pollMs} ms`);
const candidate = await h.candidateImage(logger);
console.log(`candidate ${candidate}`);

const samples = { alarm: [], sagemaker: [] };

async function release(extra = {}) {
  return h.deploy({
    ...(await h.releaseOptions(logger)),
    pollIntervalMs: pollMs,
    image: candidate,
    modelManifest: h.V2_MANIFEST,
    bakeMinutes: 2,
    ...extra,
  });
}

async function alarmRun() {
  await h.restoreBaseline(logger);
  const pending = release();
  let firedAt;
  try {
    await h.waitForStage(["baking"]);
    firedAt = Date.now();
    await h.setAlarm(alarm, "ALARM", "bench:rollback: Threshold Crossed");
    const { outputs } = await pending;
    const record = await h.readRecord(outputs["release-id"]);
    if (record.outcome !== "rolled-back" || record.rollback?.trigger !== "alarm") {
      throw new Error(`alarm run ended ${record.outcome}: ${record.reason}`);
    }
    return {
      failureToRequest: Date.parse(record.rollback.requests.ecs) - firedAt,
      detectionToRequest: record.rollback.latencyMs,
      detection: Date.parse(record.rollback.detectedAt) - firedAt,
    };
  } finally {
    await pending.catch(() => undefined);
    await h.setAlarm(alarm, "OK", "bench:rollback: reset");
  }
}

async function sageMakerRun() {
  await h.restoreBaseline(logger);
  await h.failNextSageMakerUpdate("bench:rollback: the new variant failed its health check");
  const { outputs } = await release();
  const record = await h.readRecord(outputs["release-id"]);
  if (!record.sagemaker.requestedAt) await h.consumeSageMakerFailure();
  if (record.outcome !== "rolled-back" || record.rollback?.trigger !== "sagemaker") {
    throw new Error(`sagemaker run ended ${record.outcome}: ${record.reason}`);
  }
  const failedAt = (await h.liveTargets()).endpointModified.getTime();
  return {
    failureToRequest: Date.parse(record.rollback.requests.ecs) - failedAt,
    detectionToRequest: record.rollback.latencyMs,
    detection: Date.parse(record.rollback.detectedAt) - failedAt,
  };
}

const started = Date.now();
for (let i = 1; i <= runs; i++) {
  for (const [name, run] of [
    ["alarm", alarmRun],
    ["sagemaker", sageMakerRun],
  ]) {
    const sample = await run();
    samples[name].push(sample);
    console.log(
      `  ${name.padEnd(9)} run ${i}: failure -> other target's rollback request ${sample.failureToRequest} ms (detected after ${sample.detection} ms, then ${sample.detectionToRequest} ms to the request)`,
    );
  }
}
await h.restoreBaseline(logger);

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.max(0, Math.min(sorted.length - 1, rank))];
}

const aim = pollMs + 1000;
console.log("");
console.log(
  `| scenario | n | failure -> request p50 | p95 | max | detection -> request p50 | p95 | p95 / poll | p95 / (poll + 1 s) |`,
);
console.log("|---|---|---|---|---|---|---|---|---|");
let within = true;
for (const [name, list] of Object.entries(samples)) {
  const total = list.map((s) => s.failureToRequest);
  const coordinator = list.map((s) => s.detectionToRequest);
  const p95 = percentile(total, 95);
  if (p95 > aim) within = false;
  console.log(
    `| ${name} | ${list.length} | ${percentile(total, 50)} ms | ${p95} ms | ${Math.max(...total)} ms | ${percentile(coordinator, 50)} ms | ${percentile(coordinator, 95)} ms | ${(p95 / pollMs).toFixed(2)} | ${(p95 / aim).toFixed(2)} |`,
  );
}
console.log("");
console.log(
  `aim: p95 within the poll interval + 1 s (${aim} ms): ${within ? "met" : "NOT met"}; ${((Date.now() - started) / 1000).toFixed(0)} s for ${runs * 2} releases`,
);
