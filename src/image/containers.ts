import { join } from "node:path";

/**
 * Where buildah keeps images. Always explicit: buildah 1.28 (Debian 12) ignores the
 * storage environment variables, and a project-local vfs store needs neither root
 * overlay mounts nor fuse, so it works the same on a laptop, in a container and on CI.
 */
export interface ContainerStorage {
  root: string;
  runRoot: string;
  driver: string;
}

export function containerStorage(env = process.env, cwd = process.cwd()): ContainerStorage {
  return {
    root: env.ASTROLENS_CONTAINERS_ROOT || join(cwd, ".local", "containers", "storage"),
    runRoot: env.ASTROLENS_CONTAINERS_RUNROOT || join(cwd, ".local", "containers", "run"),
    driver: env.ASTROLENS_STORAGE_DRIVER || "vfs",
  };
}

/** The global flags every buildah call takes. */
export function buildahStorageFlags(storage: ContainerStorage): string[] {
  return ["--root", storage.root, "--runroot", storage.runRoot, "--storage-driver", storage.driver];
}

/** A skopeo/containers-image reference to an image in that store. */
export function storageReference(storage: ContainerStorage, image: string): string {
  return `containers-storage:[${storage.driver}@${storage.root}+${storage.runRoot}]${image}`;
}

export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";
