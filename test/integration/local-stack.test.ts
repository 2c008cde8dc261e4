import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import { readLocalEnv } from "../../src/local/env-file.js";
import { type LocalPaths, localPaths } from "../../src/local/paths.js";
import { localDown, localStatus, localUp } from "../../src/local/stack.js";
import { freePort } from "../helpers/local-aws.js";

/** A second stack's paths: own state folder, but the shared virtualenv and tools. */
function scratchPaths(): LocalPaths {
  const state = mkdtempSync(join(tmpdir(), "astrolens-stack-"));
  return {
    ...localPaths(),
    state,
    envFile: join(state, "env"),
    logs: join(state, "logs"),
    pids: join(state, "pids"),
    registryData: join(state, "registry"),
  };
}

/** Running, not merely a zombie waiting for its parent (this test) to reap it. */
function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state !== undefined && state !== "Z";
  } catch {
    return false;
  }
}

describe("the local AWS", () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("is running after the global setup, with the env file the tests read", async () => {
    const statuses = localStatus();
    expect(statuses.map((s) => [s.name, s.state])).toEqual([
      ["registry", "running"],
      ["moto", "running"],
    ]);
    const env = readLocalEnv(localPaths().envFile);
    expect(env.AWS_ENDPOINT_URL).toBe("http://127.0.0.1:4566");
    expect(env.ASTROLENS_REGISTRY).toBe("127.0.0.1:5055");
    expect((await fetch(`http://${env.ASTROLENS_REGISTRY}/v2/`)).status).toBe(200);
  });

  it("starts a second time without restarting anything", async () => {
    const before = localStatus().map((s) => s.pid);
    const logger = createMemoryLogger();
    await localUp(logger);
    expect(localStatus().map((s) => s.pid)).toEqual(before);
    expect(logger.lines.filter((line) => line.includes("already running"))).toHaveLength(2);
  });

  it("starts and stops a stack of its own on other ports, stopping only what it started", async () => {
    const paths = scratchPaths();
    const env = {
      ...process.env,
      ASTROLENS_MOTO_PORT: String(await freePort()),
      ASTROLENS_REGISTRY_PORT: String(await freePort()),
    };
    // Processes only: the environment inside is the shared stack's business.
    const vars = await localUp(createMemoryLogger(), paths, env, { bootstrap: false });
    cleanups.push(() => localDown(createMemoryLogger(), paths, env));
    expect(vars.AWS_ENDPOINT_URL).toBe(`http://127.0.0.1:${env.ASTROLENS_MOTO_PORT}`);
    const pids = localStatus(paths, env).map((s) => s.pid as number);
    expect(pids.every(alive)).toBe(true);

    await localDown(createMemoryLogger(), paths, env);
    expect(pids.some(alive)).toBe(false);
    expect(existsSync(join(paths.pids, "moto.pid"))).toBe(false);
    // The shared stack was not touched.
    expect(localStatus().every((s) => s.state === "running")).toBe(true);
  });

  it("never stops a process it did not start, even when a pid file names it", async () => {
    const paths = scratchPaths();
    mkdirSync(paths.pids, { recursive: true });
    const stranger = spawn("sleep", ["30"], { stdio: "ignore" });
    cleanups.push(() => {
      stranger.kill();
    });
    writeFileSync(join(paths.pids, "moto.pid"), String(stranger.pid));
    expect(localStatus(paths).find((s) => s.name === "moto")?.state).toBe("stale pid file");
    await localDown(createMemoryLogger(), paths);
    expect(alive(stranger.pid as number)).toBe(true);
  });

  it("says which port is taken and how to choose another", async () => {
    const blocker: Server = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const env = {
      ...process.env,
      ASTROLENS_REGISTRY_PORT: String(port),
      ASTROLENS_MOTO_PORT: String(await freePort()),
    };
    const attempt = localUp(createMemoryLogger(), scratchPaths(), env);
    await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
    await expect(attempt).rejects.toThrow(`port ${port} for the local registry is in use by another process`);
    await expect(attempt).rejects.toThrow("ASTROLENS_REGISTRY_PORT=<port>");
  });

  it("names every missing program and the command that installs them", async () => {
    const attempt = localUp(createMemoryLogger(), scratchPaths(), { ...process.env, PATH: "/nonexistent" });
    await expect(attempt).rejects.toThrow(
      /needs python3, docker-registry, buildah, skopeo, debootstrap, go, not found on PATH: install them with `sudo apt-get install python3 python3-venv docker-registry buildah skopeo debootstrap/,
    );
  });

  it("rejects a port that is not a number", async () => {
    await expect(
      localUp(createMemoryLogger(), scratchPaths(), { ...process.env, ASTROLENS_MOTO_PORT: "forty" }),
    ).rejects.toThrow("ASTROLENS_MOTO_PORT=forty is not a port");
  });
});
