import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The project checkout: the nearest folder above `start` (then above this module)
 * whose package.json is ours. Local state lives under its `.local/`.
 */
export function findProjectRoot(start = process.cwd()): string {
  for (const from of [start, dirname(fileURLToPath(import.meta.url))]) {
    let dir = resolve(from);
    for (;;) {
      const manifest = join(dir, "package.json");
      if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "astrolens-release")
        return dir;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new Error("cannot find the astrolens-release checkout above the current directory");
}

export interface LocalPaths {
  root: string;
  state: string;
  venv: string;
  envFile: string;
  logs: string;
  pids: string;
  registryData: string;
  /** buildah's storage: graph root and run root (vfs driver). */
  containersRoot: string;
  containersRunRoot: string;
  tools: string;
  trivyCache: string;
}

export function localPaths(root = findProjectRoot()): LocalPaths {
  const state = join(root, ".local");
  return {
    root,
    state,
    venv: join(state, "venv"),
    envFile: join(state, "env"),
    logs: join(state, "logs"),
    pids: join(state, "pids"),
    registryData: join(state, "registry"),
    containersRoot: join(state, "containers", "storage"),
    containersRunRoot: join(state, "containers", "run"),
    tools: join(state, "tools", "bin"),
    trivyCache: join(state, "trivy-cache"),
  };
}
