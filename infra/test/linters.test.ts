import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { ENVIRONMENTS } from "../../src/environment.ts";
import { CFN_LINT_REASONS_KEY } from "../lib/waivers.ts";
import { INFRA_DIR, REPO_ROOT, synthesizeAll } from "./fixtures.ts";
import type { TemplateJson } from "./iam-evaluator.ts";

const run = promisify(execFile);
const VENV = join(REPO_ROOT, ".local", "infra-venv");
const INSTALL = "scripts/install-infra-linters.sh";

interface Finding {
  tool: "checkov" | "cfn-lint";
  id: string;
  file: string;
  resource: string;
}
const key = (finding: Finding) => `${finding.file} ${finding.resource} ${finding.tool}:${finding.id}`;

/** The linters, from the virtualenv the install script keeps in step with infra/requirements.txt. */
function linterPaths(): { checkov: string; cfnLint: string } {
  const checkov = join(VENV, "bin", "checkov");
  const cfnLint = join(VENV, "bin", "cfn-lint");
  if (!existsSync(checkov) || !existsSync(cfnLint)) {
    throw new Error(`cfn-lint and checkov are not installed in ${VENV}: run ${INSTALL}`);
  }
  const wanted = createHash("sha256")
    .update(readFileSync(join(INFRA_DIR, "requirements.txt")))
    .digest("hex");
  const marker = join(VENV, ".requirements.sha256");
  if (!existsSync(marker) || readFileSync(marker, "utf8").trim() !== wanted) {
    throw new Error(`${VENV} was installed from another infra/requirements.txt: run ${INSTALL}`);
  }
  return { checkov, cfnLint };
}

async function cfnLint(binary: string, files: string[]): Promise<Finding[]> {
  // cfn-lint's exit code is a bit mask of the levels it found; the JSON is the answer.
  const result = await run(binary, ["--format", "json", "--", ...files], { maxBuffer: 64 << 20 }).catch(
    (err: { stdout?: string; stderr?: string; code?: number }) => {
      if (typeof err.stdout === "string" && err.stdout.trim().startsWith("[")) return { stdout: err.stdout };
      throw new Error(`cfn-lint failed (exit ${err.code}): ${err.stderr ?? ""}`);
    },
  );
  const matches = JSON.parse(result.stdout) as Array<{
    Rule: { Id: string };
    Level: string;
    Filename: string;
    Location: { Path: Array<string | number> };
  }>;
  return matches
    .filter((match) => match.Level !== "Informational")
    .map((match) => ({
      tool: "cfn-lint" as const,
      id: match.Rule.Id,
      file: match.Filename.split("/").pop() as string,
      resource:
        match.Location.Path[0] === "Resources"
          ? String(match.Location.Path[1])
          : match.Location.Path.join("/"),
    }));
}

async function checkov(binary: string, files: string[]): Promise<{ failed: Finding[]; skipped: Finding[] }> {
  // Offline: --skip-download (no Prisma Cloud policies, guidelines or severities) and no
  // update check; no API key is ever passed.
  const env = { ...process.env, CKV_SKIP_PACKAGE_UPDATE_CHECK: "true", BC_API_KEY: "", PRISMA_API_URL: "" };
  const args = ["--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"];
  const result = await run(binary, [...args, ...files.flatMap((file) => ["-f", file])], {
    env,
    maxBuffer: 64 << 20,
  }).catch((err: { stdout?: string; stderr?: string; code?: number }) => {
    // checkov exits 1 when a check fails; its report is still on stdout.
    if (err.code === 1 && typeof err.stdout === "string" && err.stdout.trim()) return { stdout: err.stdout };
    throw new Error(`checkov failed (exit ${err.code}): ${err.stderr ?? ""}`);
  });
  const parsed = JSON.parse(result.stdout) as unknown;
  const reports = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{
    summary?: { parsing_errors: number };
    results?: {
      failed_checks: Array<{ check_id: string; resource: string; file_path: string }>;
      skipped_checks: Array<{ check_id: string; resource: string; file_path: string }>;
    };
  }>;
  const findings = (list: Array<{ check_id: string; resource: string; file_path: string }>) =>
    list.map((check) => ({
      tool: "checkov" as const,
      id: check.check_id,
      file: check.file_path.split("/").pop() as string,
      resource: check.resource.split(".").pop() as string,
    }));
  for (const report of reports) expect(report.summary?.parsing_errors ?? 0).toBe(0);
  return {
    failed: reports.flatMap((report) => findings(report.results?.failed_checks ?? [])),
    skipped: reports.flatMap((report) => findings(report.results?.skipped_checks ?? [])),
  };
}

/** The waivers written into a template's metadata, each with its reason. */
function waiversOf(file: string, template: TemplateJson): Array<Finding & { reason: string }> {
  return Object.entries(template.Resources).flatMap(([resource, entry]) => {
    const metadata = (entry as { Metadata?: Record<string, unknown> }).Metadata ?? {};
    const checkovSkips = (
      (metadata.checkov as { skip?: Array<{ id: string; comment: string }> })?.skip ?? []
    ).map((skip) => ({ tool: "checkov" as const, id: skip.id, file, resource, reason: skip.comment }));
    const reasons = (metadata[CFN_LINT_REASONS_KEY] as Record<string, string>) ?? {};
    const lintIgnores = (
      (metadata["cfn-lint"] as { config?: { ignore_checks?: string[] } })?.config?.ignore_checks ?? []
    ).map((id) => ({ tool: "cfn-lint" as const, id, file, resource, reason: reasons[id] ?? "" }));
    return [...checkovSkips, ...lintIgnores];
  });
}

/** The linters' paths, throwing the install hint when they are used, not when looked up. */
function lazyLinters(): { checkov: string; cfnLint: string } {
  let found: { checkov: string; cfnLint: string } | undefined;
  const get = () => {
    found ??= linterPaths();
    return found;
  };
  return {
    get checkov() {
      return get().checkov;
    },
    get cfnLint() {
      return get().cfnLint;
    },
  };
}

describe("cfn-lint and checkov on the synthesized templates", () => {
  let linters: { checkov: string; cfnLint: string };
  let files: string[];
  let stripped: string[];
  let waivers: Array<Finding & { reason: string }>;

  beforeAll(() => {
    // Each test then fails (never skips) with the install hint, rather than the whole
    // file erroring in a hook.
    linters = lazyLinters();
    const synth = synthesizeAll();
    files = ENVIRONMENTS.map((environment) => join(synth.outdir, `astrolens-${environment}.template.json`));
    waivers = files.flatMap((file) =>
      waiversOf(file.split("/").pop() as string, JSON.parse(readFileSync(file, "utf8")) as TemplateJson),
    );
    // The same templates without any waiver: what the linters say when nothing is excused.
    const dir = mkdtempSync(join(tmpdir(), "astrolens-unwaived-"));
    stripped = files.map((file) => {
      const template = JSON.parse(readFileSync(file, "utf8")) as TemplateJson;
      for (const resource of Object.values(template.Resources) as Array<{
        Metadata?: Record<string, unknown>;
      }>) {
        if (!resource.Metadata) continue;
        delete resource.Metadata.checkov;
        delete resource.Metadata["cfn-lint"];
      }
      const target = join(dir, file.split("/").pop() as string);
      writeFileSync(target, JSON.stringify(template, null, 1));
      return target;
    });
  });

  it("cfn-lint finds no error and no warning", async () => {
    expect(await cfnLint(linters.cfnLint, files)).toEqual([]);
  });

  it("checkov finds no failed check (offline, so no severities: every finding counts, waived or not)", async () => {
    const { failed, skipped } = await checkov(linters.checkov, files);
    expect(failed).toEqual([]);
    expect(skipped.map(key).sort()).toEqual(
      waivers
        .filter((waiver) => waiver.tool === "checkov")
        .map(key)
        .sort(),
    );
  });

  it("every waiver has its reason written next to it", () => {
    expect(linters.checkov).toBeTruthy();
    expect(waivers.length).toBeGreaterThan(0);
    for (const waiver of waivers) expect(waiver.reason.length, key(waiver)).toBeGreaterThan(20);
  });

  it("every waiver is needed: without them, the linters report exactly the waived findings", async () => {
    const [lint, scan] = await Promise.all([
      cfnLint(linters.cfnLint, stripped),
      checkov(linters.checkov, stripped),
    ]);
    // One waiver covers every occurrence of its rule on its resource.
    const unique = (keys: string[]) => [...new Set(keys)].sort();
    expect(unique([...lint, ...scan.failed].map(key))).toEqual(unique(waivers.map(key)));
  });

  it("the waivers are the ones the README explains", () => {
    expect(linters.checkov).toBeTruthy();
    const readme = readFileSync(join(INFRA_DIR, "README.md"), "utf8");
    for (const id of new Set(waivers.map((waiver) => waiver.id)))
      expect(readme, `README names ${id}`).toContain(id);
  });
});
