import { existsSync } from "node:fs";

/**
 * The base images scripts/base-image.sh makes with debootstrap, since nothing can be
 * pulled here: Debian 13 with Node.js (runtime) and the same plus npm (build stage).
 */
export const LOCAL_BUILD_ARGS: Record<string, string> = {
  BUILD_IMAGE: "localhost/astrolens-build:trixie",
  RUNTIME_IMAGE: "localhost/astrolens-base:trixie",
};

/**
 * The CA bundle this machine trusts, as the `ca-bundle` build secret, so `npm ci`
 * inside the build works behind a TLS-inspecting proxy as it does on the host.
 */
export function proxyCaSecret(env = process.env): Record<string, string> {
  const bundle = env.NODE_EXTRA_CA_CERTS || env.SSL_CERT_FILE;
  return bundle && existsSync(bundle) ? { "ca-bundle": bundle } : {};
}
