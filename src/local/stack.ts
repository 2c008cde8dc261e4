import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { ConfigurationError } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { findProgram, runCommand } from "../tools/command.js";
import { formatEnvFile } from "./env-file.js";
import { bootstrapLocalEnvironment } from "./environment.js";
import { type LocalPaths, localPaths } from "./paths.js";

export const LOCAL_REGION = "us-east-1";

export interface LocalService {
  name: "moto" | "registry";
  port: number;
  url: string;
  /** Program and arguments that start it in the foreground. */
  command: [string, ...string[]];
  env?: NodeJS.ProcessEnv;
  /** A word that must appear in the process's command line for `down` to stop it. */
  marker: string;
  /** The path answered with 200 once it serves. */
  readyPath: string;
}

export interface ServiceStatus {
  name: string;
  url: string;
  pid?: number;
  state: "running" | "stopped" | "stale pid file";
}

function portFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === "") return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigurationError(`${name}=${value} is not a port: use a number from 1 to 65535`);
  }
  return port;
}

/** The local AWS's default time scale; ASTROLENS_TIME_SCALE=1 runs at AWS's own pace. */
export const DEFAULT_TIME_SCALE = "20";

/** How moto with our extension is started: its program, arguments and environment. */
export function motoCommand(
  paths: LocalPaths,
  port: number,
  registryUrl: string,
  timeScale = DEFAULT_TIME_SCALE,
): Pick<LocalService, "command" | "env"> {
  return {
    command: [
      join(paths.venv, "bin", "python"),
      "-m",
      "astrolens_moto",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--registry-url",
      registryUrl,
      "--state-dir",
      paths.state,
    ],
    env: {
      PYTHONPATH: join(paths.root, "scripts", "local-aws"),
      // Modelled AWS time runs this many times faster (astrolens_moto/clock.py): a one-minute
      // bake takes three seconds, so a local release rehearses every stage in seconds.
      ASTROLENS_TIME_SCALE: timeScale,
    },
  };
}

/** The two processes of the local AWS, with ports overridable from the environment. */
export function localServices(paths: LocalPaths = localPaths(), env = process.env): LocalService[] {
  const motoPort = portFromEnv(env, "ASTROLENS_MOTO_PORT", 4566);
  const registryPort = portFromEnv(env, "ASTROLENS_REGISTRY_PORT", 5055);
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  return [
    {
      name: "registry",
      port: registryPort,
      url: registryUrl,
      command: ["docker-registry", "serve", join(paths.state, "registry.yml")],
      marker: "registry",
      readyPath: "/v2/",
    },
    {
      name: "moto",
      port: motoPort,
      url: `http://127.0.0.1:${motoPort}`,
      ...motoCommand(paths, motoPort, registryUrl, env.ASTROLENS_TIME_SCALE || DEFAULT_TIME_SCALE),
      marker: "astrolens_moto",
      // Not data.json: it serialises every model, and a Lambda function there asks for Docker.
      readyPath: "/moto-api/config",
    },
  ];
}

/**
 * Starts the local AWS (moto with our extension, and the OCI registry), writes the env
 * file, and bootstraps the `local` environment from the CDK app (its stack, running the
 * baseline release). Running it again is harmless: a service already running is kept
 * and an unchanged stack is left alone.
 */
export async function localUp(
  logger: Logger,
  paths: LocalPaths = localPaths(),
  env: NodeJS.ProcessEnv = process.env,
  options: { bootstrap: boolean } = { bootstrap: true },
): Promise<Record<string, string>> {
  checkPrerequisites(env);
  for (const dir of [paths.state, paths.logs, paths.pids, paths.registryData])
    mkdirSync(dir, { recursive: true });
  const services = localServices(paths, env);
  await ensureVirtualenv(paths, logger);
  writeRegistryConfig(paths, services[0] as LocalService);
  for (const service of services) {
    const status = serviceStatus(service, paths);
    if (status.state === "running" && (await isReady(service))) {
      logger.info(`${service.name}: already running (pid ${status.pid}) at ${service.url}`);
      continue;
    }
    await startService(service, paths, logger);
  }
  const localVars = localEnv(services, paths);
  writeFileSync(paths.envFile, formatEnvFile(localVars));
  logger.info(`wrote ${paths.envFile}`);
  await prepareReleaseTools(paths, logger);
  if (options.bootstrap) {
    await logger.group("Bootstrapping the local environment from the CDK app", () =>
      bootstrapLocalEnvironment(paths, { env: { ...env, ...localVars } }, logger),
    );
  }
  return localVars;
}

const PREREQUISITES: [program: string, provider: string][] = [
  ["python3", "python3 python3-venv"],
  ["docker-registry", "docker-registry"],
  ["buildah", "buildah"],
  ["skopeo", "skopeo"],
  ["debootstrap", "debootstrap"],
  ["go", "golang (or Go from go.dev)"],
];

/** Names every missing program at once, with the one command that installs them. */
function checkPrerequisites(env: NodeJS.ProcessEnv): void {
  const missing = PREREQUISITES.filter(([program]) => !findProgram(program, [], env));
  if (missing.length > 0) {
    throw new ConfigurationError(
      `the local AWS needs ${missing.map(([p]) => p).join(", ")}, not found on PATH: install them with \`sudo apt-get install ${missing
        .map(([, provider]) => provider)
        .join(" ")}\` (or run scripts/install-system-deps.sh)`,
    );
  }
}

/**
 * What the local release needs besides the AWS: a pinned Trivy, its offline DB built
 * from our advisories, and the Debian base image (nothing can be pulled here). Each
 * script does nothing when its result is already there.
 */
async function prepareReleaseTools(paths: LocalPaths, logger: Logger): Promise<void> {
  const scripts = join(paths.root, "scripts");
  const steps: [string, string, string[]][] = [
    ["Installing the pinned Trivy", join(scripts, "install-trivy.sh"), []],
    ["Building the offline Trivy DB", join(scripts, "trivy-db", "build-db.sh"), [paths.trivyCache]],
    ["Building the Debian base image", join(scripts, "base-image.sh"), []],
  ];
  for (const [title, script, args] of steps) {
    await logger.group(title, () =>
      runCommand("bash", [script, ...args], { logger, cwd: paths.root, stream: true }),
    );
  }
}

/** Stops only the processes `localUp` started, found by their pid files. */
export async function localDown(
  logger: Logger,
  paths: LocalPaths = localPaths(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  for (const service of localServices(paths, env).reverse()) {
    const status = serviceStatus(service, paths);
    if (status.pid !== undefined && status.state === "running") {
      process.kill(status.pid, "SIGTERM");
      await waitFor(() => !processMatches(status.pid as number, service.marker), 10_000);
      if (processMatches(status.pid, service.marker)) process.kill(status.pid, "SIGKILL");
      logger.info(`${service.name}: stopped (pid ${status.pid})`);
    } else {
      logger.info(`${service.name}: not running`);
    }
    rmSync(pidFile(paths, service), { force: true });
  }
}

export function localStatus(
  paths: LocalPaths = localPaths(),
  env: NodeJS.ProcessEnv = process.env,
): ServiceStatus[] {
  return localServices(paths, env).map((service) => serviceStatus(service, paths));
}

function localEnv(services: LocalService[], paths: LocalPaths): Record<string, string> {
  const [registry, moto] = services as [LocalService, LocalService];
  return {
    AWS_ENDPOINT_URL: moto.url,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    ASTROLENS_REGISTRY: `127.0.0.1:${registry.port}`,
    ASTROLENS_CONTAINERS_ROOT: paths.containersRoot,
    ASTROLENS_CONTAINERS_RUNROOT: paths.containersRunRoot,
    TRIVY_CACHE_DIR: paths.trivyCache,
  };
}

function pidFile(paths: LocalPaths, service: LocalService): string {
  return join(paths.pids, `${service.name}.pid`);
}

function serviceStatus(service: LocalService, paths: LocalPaths): ServiceStatus {
  const file = pidFile(paths, service);
  const base = { name: service.name, url: service.url };
  if (!existsSync(file)) return { ...base, state: "stopped" };
  const pid = Number(readFileSync(file, "utf8").trim());
  return processMatches(pid, service.marker)
    ? { ...base, pid, state: "running" }
    : { ...base, pid, state: "stale pid file" };
}

/** True when `pid` is alive and is the process we started (a reused pid is not). */
function processMatches(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
  } catch {
    return false;
  }
}

async function startService(service: LocalService, paths: LocalPaths, logger: Logger): Promise<void> {
  if (await portInUse(service.port)) {
    const variable = service.name === "moto" ? "ASTROLENS_MOTO_PORT" : "ASTROLENS_REGISTRY_PORT";
    throw new ConfigurationError(
      `port ${service.port} for the local ${service.name} is in use by another process: stop that process or choose another port with ${variable}=<port>`,
    );
  }
  const [program, ...args] = service.command;
  const log = join(paths.logs, `${service.name}.log`);
  const out = openSync(log, "a");
  const child = spawn(program, args, {
    cwd: paths.root,
    env: { ...process.env, ...service.env },
    detached: true,
    stdio: ["ignore", out, out],
  });
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  child.unref();
  const failed = await Promise.race([
    spawnError,
    waitFor(() => isReady(service), 30_000).then(() => undefined),
  ]);
  if (failed) {
    throw new ConfigurationError(
      (failed as NodeJS.ErrnoException).code === "ENOENT"
        ? `${program} is not installed: ${installHint(service)}`
        : `cannot start ${service.name}: ${failed.message}`,
    );
  }
  if (!(await isReady(service))) {
    child.pid && process.kill(child.pid, "SIGTERM");
    const tail = readFileSync(log, "utf8").trim().split("\n").slice(-10).join("\n");
    throw new Error(
      `${service.name} did not become ready at ${service.url} within 30 s; its log (${log}) ends:\n${tail}`,
    );
  }
  writeFileSync(pidFile(paths, service), String(child.pid));
  logger.info(`${service.name}: started (pid ${child.pid}) at ${service.url}`);
}

function installHint(service: LocalService): string {
  return service.name === "registry"
    ? "install Debian's docker-registry (sudo apt-get install docker-registry), or run scripts/install-system-deps.sh"
    : "the moto virtualenv is broken: delete .local/venv and run `astrolens-release local up` again";
}

async function isReady(service: LocalService): Promise<boolean> {
  try {
    const response = await fetch(`${service.url}${service.readyPath}`, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(true));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(false)));
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return check();
}

function writeRegistryConfig(paths: LocalPaths, registry: LocalService): void {
  writeFileSync(
    join(paths.state, "registry.yml"),
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${paths.registryData}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${registry.port}`,
      "",
    ].join("\n"),
  );
}

/**
 * Creates the project-local virtualenv with moto pinned by scripts/local-aws/requirements.txt,
 * and re-installs when that lockfile changes.
 */
async function ensureVirtualenv(paths: LocalPaths, logger: Logger): Promise<void> {
  const requirements = join(paths.root, "scripts", "local-aws", "requirements.txt");
  const wanted = createHash("sha256").update(readFileSync(requirements)).digest("hex");
  const marker = join(paths.venv, ".requirements.sha256");
  if (existsSync(marker) && readFileSync(marker, "utf8") === wanted) return;
  await logger.group("Installing moto into .local/venv", async () => {
    const hint = "install Python 3.9 or newer with venv (Debian: sudo apt-get install python3 python3-venv)";
    await runCommand("python3", ["-m", "venv", paths.venv], { logger, installHint: hint });
    await runCommand(join(paths.venv, "bin", "pip"), ["install", "--quiet", "-r", requirements], {
      logger,
      stream: true,
    });
    writeFileSync(marker, wanted);
  });
}
