/**
 * End to end, as a process: `node service/serve.js` (the container entry, bundled service,
 * real models) under 40 concurrent clients sending real FITS and PNG; SIGTERM mid-load.
 * Every request the service accepted must get its 200; requests after SIGTERM are served
 * during the drain's grace period, or answered 503, or refused once the listener has
 * closed — none is reset — and the process must exit 0.
 */
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import {
  FITS_DIR,
  type HttpOutcome,
  MODEL_DIR,
  makeStarField,
  quantise,
  SERVICE_DIR,
  send,
} from "./helpers.js";

const REPO_DIR = join(SERVICE_DIR, "..");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

beforeAll(() => {
  // serve.js runs the committed bundle; rebuild it when service/src is newer.
  const bundle = join(SERVICE_DIR, "dist", "server.js");
  let built = 0;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {}
  if (built < newestMtime(join(SERVICE_DIR, "src"))) {
    execFileSync("npm", ["run", "build"], { cwd: REPO_DIR, stdio: "ignore" });
  }
}, 60_000);

interface Sent extends HttpOutcome {
  id: string;
  startedAt: number;
}

describe("drain under load, as a child process", () => {
  it("answers every accepted request with 200, refuses the rest, and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, [join(SERVICE_DIR, "serve.js")], {
      cwd: REPO_DIR,
      env: {
        ...process.env,
        ASTROLENS_MODEL_DIR: MODEL_DIR,
        PORT: "0",
        ASTROLENS_HOST: "127.0.0.1",
        ASTROLENS_EMF_INTERVAL_MS: "0",
        ASTROLENS_DRAIN_TIMEOUT_MS: "20000",
        ASTROLENS_INTRA_OP_THREADS: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const lines: Array<Record<string, unknown>> = [];
      let stderr = "";
      let drainingSeenAt = Number.POSITIVE_INFINITY;
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const port = await new Promise<number>((resolve, reject) => {
        let buffered = "";
        child.stdout.on("data", (chunk: Buffer) => {
          buffered += chunk.toString();
          for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
            const line = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
            buffered = buffered.slice(nl + 1);
            lines.push(line);
            if (line.msg === "listening") resolve(line.port as number);
            if (line.msg === "draining") drainingSeenAt = Math.min(drainingSeenAt, performance.now());
          }
        });
        void exited.then((code) =>
          reject(new Error(`serve.js exited (${code}) before listening: ${stderr}`)),
        );
      });
      for (let ready = false; !ready; ) {
        const ping = await send(port, { path: "/ping" });
        ready = ping.status === 200;
        if (!ready) await new Promise((resume) => setTimeout(resume, 20));
      }

      const fits = readFileSync(`${FITS_DIR}1904-66_AZP.fits`);
      const field = makeStarField({ seed: 3, width: 128, height: 128, stars: 12 });
      const png = await sharp(quantise(field, 255, 1), { raw: { width: 128, height: 128, channels: 1 } })
        .png()
        .toBuffer();
      const payloads: Array<[Buffer, string]> = [
        [fits, "application/fits"],
        [png, "image/png"],
      ];

      const CLIENTS = 40;
      const LOAD_MS = 1500;
      const sent: Sent[] = [];
      let sigtermAt = Number.POSITIVE_INFINITY;
      const loadStarted = performance.now();
      const client = async (c: number): Promise<void> => {
        // Keep sending until 300 ms after the drain is visible, so some requests hit it.
        for (let n = 0; performance.now() < drainingSeenAt + 300; n++) {
          const [body, type] = payloads[(c + n) % payloads.length] as [Buffer, string];
          const id = `c${c}-${n}`;
          const startedAt = performance.now();
          const outcome = await send(port, {
            body,
            headers: { "content-type": type, "x-request-id": id },
            timeoutMs: 25_000,
          });
          sent.push({ ...outcome, id, startedAt });
          if (performance.now() - loadStarted > 15_000) break;
        }
      };
      const clients = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
      await new Promise((resume) => setTimeout(resume, LOAD_MS));
      sigtermAt = performance.now();
      child.kill("SIGTERM");
      await clients;
      const code = await exited;

      const logged = lines.filter((line) => line.msg === "request" && line.path === "/invocations");
      const loggedStatus = new Map(logged.map((line) => [line.request_id as string, line.status as number]));
      const draining = lines.find((line) => line.msg === "draining");
      const beforeSigterm = sent.filter((r) => r.connectedAt !== undefined && r.connectedAt < sigtermAt);
      const afterDrainSeen = sent.filter((r) => r.startedAt > drainingSeenAt);
      const describeOutcome = (r: Sent) =>
        `${r.id}: ${r.status || r.error} ${r.body.toString().slice(0, 120)}`;
      const summary =
        `${sent.length} requests; ${beforeSigterm.length} connected before SIGTERM; ` +
        `${logged.length} handled by the service; in flight at SIGTERM: ${String(draining?.in_flight)}; ` +
        `${afterDrainSeen.length} sent after the drain began: ` +
        `${[...new Set(afterDrainSeen.map((r) => r.status || r.error))].join(", ")}`;
      console.info(`drain: ${summary}`);

      // The load was real and SIGTERM landed in the middle of it.
      expect(
        sent.filter((r) => r.status === 200 && (r.respondedAt ?? 0) < sigtermAt).length,
        summary,
      ).toBeGreaterThan(40);
      expect(draining?.in_flight as number, summary).toBeGreaterThanOrEqual(1);
      expect(beforeSigterm.length - (draining?.in_flight as number), summary).toBeGreaterThan(0);
      expect(afterDrainSeen.length, summary).toBeGreaterThan(0);

      // Every request the service handled (logged) answered 200, and its client got that 200.
      expect(
        [...loggedStatus.entries()].filter(([, status]) => status !== 200),
        summary,
      ).toEqual([]);
      for (const r of sent) {
        if (loggedStatus.has(r.id)) expect(r.status, describeOutcome(r)).toBe(200);
        if (r.status === 200) expect(loggedStatus.get(r.id), describeOutcome(r)).toBe(200);
      }
      // After the drain began: served in the grace period (200, Connection: close),
      // 503, or refused at the TCP level once the listener closed; never reset.
      for (const r of afterDrainSeen) {
        expect(r.status === 200 || r.status === 503 || r.error === "ECONNREFUSED", describeOutcome(r)).toBe(
          true,
        );
      }
      expect(code, stderr).toBe(0);
      expect(lines.map((line) => line.msg)).toContain("drained");
      expect(
        lines.filter((line) => line.level === "error"),
        summary,
      ).toEqual([]);

      // No accepted request lost: every request whose connection was up before SIGTERM
      // got a 200; nothing at all ends in a reset (the drain's grace period keeps the
      // listener open, so connections queued in the kernel are served, not reset).
      expect(beforeSigterm.filter((r) => r.status !== 200).map(describeOutcome), summary).toEqual([]);
      for (const r of sent) {
        expect(r.status === 200 || r.status === 503 || r.error === "ECONNREFUSED", describeOutcome(r)).toBe(
          true,
        );
      }
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 40_000);
});
