import { readFile } from "node:fs/promises";
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import { ConfigurationError, withContext } from "../errors.js";

/**
 * One accepted risk: a finding the scan gate lets through until `expires`.
 *
 * ```yaml
 * # .astrolens/scan-waivers.yaml
 * waivers:
 *   - id: CVE-2019-1543      # vulnerability id, secret rule id or misconfiguration id
 *     package: openssl       # optional: limit to one package
 *     reason: "not reachable: we never call the affected API"
 *     expires: 2026-12-31    # the last day the waiver applies (UTC)
 * ```
 */
export interface Waiver {
  /** A vulnerability id (CVE-…, GHSA-…), a secret rule id or a misconfiguration id (DS002 or AVD-DS-0002). */
  id: string;
  /** Limits the waiver to one package; a waiver with a package never matches secrets or misconfigurations. */
  package?: string;
  reason: string;
  /** YYYY-MM-DD; the waiver applies through the end of this day, UTC. */
  expires: string;
  /** Where the waiver was written, e.g. `.astrolens/scan-waivers.yaml:7`, for messages. */
  origin?: string;
}

const WAIVER_KEYS = ["id", "package", "reason", "expires"] as const;
const FILE_KEYS = ["waivers"] as const;
const EXAMPLE_EXPIRY = "2027-01-31";

/**
 * Parses a waiver file. Every problem in the file is reported at once, one per line,
 * each naming the file, the waiver (1-based index and id) and the field.
 *
 * An empty file, or `waivers:` with no entries, means no waivers.
 *
 * @param text the YAML text
 * @param source the file's path, named in errors and in each waiver's `origin`
 * @throws ConfigurationError when the file is malformed
 */
export function parseWaivers(text: string, source: string): Waiver[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    throw new ConfigurationError(
      `${source} is not valid YAML: ${yamlError.message.split("\n")[0]}. ` +
        "Fix the syntax; the file holds `waivers:` followed by a list of entries with id, reason and expires",
    );
  }

  const root = doc.contents;
  if (root === null || (isMap(root) && root.items.length === 0)) return [];
  if (!isMap(root)) {
    throw new ConfigurationError(
      `${source} must be a mapping with a \`waivers:\` list at the top level, but it is a ${describeNode(doc.toJS())}. ` +
        "Start the file with `waivers:` and list one entry per accepted finding",
    );
  }

  const js = doc.toJS() as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(js)) {
    if (!(FILE_KEYS as readonly string[]).includes(key)) {
      problems.push(`${source} has an unknown top-level key '${key}': the only key is 'waivers'`);
    }
  }

  const list = root.get("waivers", true);
  if (list === undefined || isScalarNull(list)) {
    if (problems.length > 0) throw new ConfigurationError(problems.join("\n"));
    return [];
  }
  if (!isSeq(list)) {
    problems.push(
      `${source}: 'waivers' must be a list of entries (each starting with '- id: ...'), but it is a ${describeNode(js.waivers)}`,
    );
    throw new ConfigurationError(problems.join("\n"));
  }

  const entries = Array.isArray(js.waivers) ? (js.waivers as unknown[]) : [];
  const waivers: Waiver[] = [];
  const seen = new Map<string, number>();
  list.items.forEach((node, index) => {
    const number = index + 1;
    const range = (node as { range?: [number, number, number] } | null)?.range;
    const line = range ? lineCounter.linePos(range[0]).line : undefined;
    const where = line === undefined ? source : `${source}:${line}`;
    const entry = entries[index];

    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      problems.push(
        `waiver ${number} in ${where} is a ${describeNode(entry)}, not an entry: write it as ` +
          `'- id: CVE-…' with reason and expires on the lines below`,
      );
      return;
    }
    const fields = entry as Record<string, unknown>;
    const rawId = fields.id;
    const id = typeof rawId === "string" ? rawId.trim() : undefined;
    const label = id ? `waiver ${number} (${id}) in ${where}` : `waiver ${number} in ${where}`;
    const before = problems.length;

    for (const key of Object.keys(fields)) {
      if (!(WAIVER_KEYS as readonly string[]).includes(key)) {
        const hint = suggestKey(key);
        problems.push(
          `${label} has an unknown key '${key}': ${hint ? `did you mean '${hint}'? ` : ""}` +
            `the keys are ${WAIVER_KEYS.join(", ")}`,
        );
      }
    }

    if (rawId === undefined || rawId === null || id === "") {
      problems.push(
        `${label} has no id: add the vulnerability id, secret rule id or misconfiguration id it waives, such as id: CVE-2019-1543`,
      );
    } else if (typeof rawId !== "string") {
      problems.push(
        `${label} has an id that is not text (${String(rawId)}): quote it, such as id: "CVE-2019-1543"`,
      );
    }

    let pkg: string | undefined;
    if (fields.package !== undefined && fields.package !== null) {
      if (typeof fields.package !== "string" || fields.package.trim() === "") {
        problems.push(
          `${label} has an invalid package: give the package name as Trivy reports it (PkgName), such as package: openssl, or remove the key to waive the id in every package`,
        );
      } else {
        pkg = fields.package.trim();
      }
    }

    const reason = typeof fields.reason === "string" ? fields.reason.trim() : "";
    if (fields.reason === undefined || fields.reason === null || reason === "") {
      problems.push(
        `${label} has no reason: add reason: "…" saying why the finding is acceptable — the reason is shown in every scan summary`,
      );
    } else if (typeof fields.reason !== "string") {
      problems.push(`${label} has a reason that is not text: quote it, such as reason: "not reachable"`);
    }

    const expires = normaliseExpiry(fields.expires);
    if (fields.expires === undefined || fields.expires === null || fields.expires === "") {
      problems.push(
        `${label} has no expires: add an expiry date such as expires: ${EXAMPLE_EXPIRY} — waivers must end so they are reviewed`,
      );
    } else if (expires === undefined) {
      problems.push(
        `${label} has an invalid expires '${String(fields.expires)}': expected a calendar date as YYYY-MM-DD, such as expires: ${EXAMPLE_EXPIRY}`,
      );
    }

    if (problems.length > before || !id || expires === undefined) return;

    const key = `${id.toUpperCase()}\u0000${pkg ?? ""}`;
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push(
        `${label} repeats waiver ${first} (${id}${pkg ? ` in ${pkg}` : ""}): keep one entry per id and package, ` +
          "so there is one reason and one expiry to review",
      );
      return;
    }
    seen.set(key, number);
    waivers.push({ id, ...(pkg ? { package: pkg } : {}), reason, expires, origin: where });
  });

  if (problems.length > 0) throw new ConfigurationError(problems.join("\n"));
  return waivers;
}

/**
 * Reads and parses a waiver file.
 *
 * @throws ConfigurationError when the file is missing or malformed
 */
export async function loadWaivers(path: string): Promise<Waiver[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ConfigurationError(
        `waiver file ${path} does not exist: create it (see the example in the scan action's README) or remove the waivers input`,
      );
    }
    throw withContext(`reading waiver file ${path}`, err);
  }
  return parseWaivers(text, path);
}

/**
 * The instant a waiver stops applying: the start of the day after `expires`, UTC, so
 * `expires: 2026-12-31` still covers a scan on the evening of 31 December.
 */
export function waiverEndsAt(waiver: Pick<Waiver, "expires">): Date {
  const [year, month, day] = waiver.expires.split("-").map(Number);
  return new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, (day ?? 1) + 1));
}

/** YYYY-MM-DD for a real calendar day, or undefined. */
function normaliseExpiry(value: unknown): string | undefined {
  // The YAML 1.1 schema turns bare dates into Dates; the default (1.2 core) keeps strings.
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString().slice(0, 10);
  if (typeof value !== "string") return undefined;
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim());
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined;
  }
  return value.trim();
}

function isScalarNull(node: unknown): boolean {
  return (node as { value?: unknown } | null)?.value === null;
}

function describeNode(value: unknown): string {
  if (value === null || value === undefined) return "empty value";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "mapping";
  return `${typeof value} (${String(value)})`;
}

function suggestKey(key: string): string | undefined {
  const lower = key.toLowerCase();
  const aliases: Record<string, string> = {
    expiry: "expires",
    expiration: "expires",
    expire: "expires",
    until: "expires",
    pkg: "package",
    pkgname: "package",
    comment: "reason",
    justification: "reason",
    cve: "id",
    vulnerability: "id",
  };
  if (aliases[lower]) return aliases[lower];
  return WAIVER_KEYS.find((candidate) => editDistance(lower, candidate) <= 2);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
