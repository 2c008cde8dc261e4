import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { environmentResources } from "../../src/environment.js";
import { findProjectRoot } from "../../src/local/paths.js";

/**
 * The security properties of the workflows, read from the files: pinned third-party
 * actions, no expression expanded inside a shell script, least-privilege permissions,
 * deploys never cancelled, the image named by digest between jobs, credentials only
 * through OIDC on the environment's deploy role (the naming contract's name).
 */

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  if?: string;
  environment?: string | { name: string };
  permissions?: Record<string, string> | string;
  concurrency?: { group: string; "cancel-in-progress"?: boolean | string } | string;
  outputs?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string> | string;
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  jobs: Record<string, Job>;
}

const root = findProjectRoot();
const dir = join(root, ".github", "workflows");
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
const text = (file: string) => readFileSync(join(dir, file), "utf8");
const load = (file: string) => parseYaml(text(file)) as Workflow;
const steps = (wf: Workflow) =>
  Object.entries(wf.jobs).flatMap(([job, def]) => def.steps.map((step) => ({ job, step })));
const OIDC = "aws-actions/configure-aws-credentials";
/** `${{ e }}` as the workflow file spells it. */
const expr = (e: string) => `\${{ ${e} }}`;
const AWS_ACTIONS = [
  "./actions/push-image",
  "./actions/promote-image",
  "./actions/deploy",
  "./actions/rollback",
];

describe("the workflows", () => {
  it("are release.yml, promote.yml and ci.yml", () => {
    expect(files.sort()).toEqual(["ci.yml", "promote.yml", "release.yml"]);
  });

  it.each(files)("%s pins every third-party action to a full commit SHA with a version comment", (file) => {
    const uses = [...text(file).matchAll(/^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/gm)];
    expect(uses.length).toBeGreaterThan(0);
    for (const [line, ref, rest] of uses) {
      if (ref?.startsWith("./")) continue;
      expect(ref, `${file}: ${line?.trim()}`).toMatch(/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/);
      expect(rest, `${file}: ${line?.trim()} needs "# vX.Y.Z" saying which release the SHA is`).toMatch(
        /^\s+#\s+v\d+\.\d+\.\d+\s*$/,
      );
    }
  });

  it.each(files)("%s expands no expression inside a run: script (values go through env:)", (file) => {
    for (const { job, step } of steps(load(file))) {
      if (step.run === undefined) continue;
      expect(step.run, `${file} job ${job} step "${step.name}"`).not.toMatch(/\$\{\{/);
    }
  });

  it("nor do the composite actions' run: steps", () => {
    for (const name of readdirSync(join(root, "actions"))) {
      let action: { runs?: { steps?: Step[] } };
      try {
        action = parseYaml(readFileSync(join(root, "actions", name, "action.yml"), "utf8"));
      } catch {
        continue;
      }
      for (const step of action.runs?.steps ?? []) {
        if (step.run !== undefined) expect(step.run, `actions/${name}`).not.toMatch(/\$\{\{/);
      }
    }
  });

  it.each(files)("%s grants nothing at the top and declares permissions on every job", (file) => {
    const wf = load(file);
    const top = wf.permissions;
    expect(top === undefined || typeof top === "string", `${file}: top-level permissions`).toBe(false);
    expect(
      Object.entries(top as Record<string, string>).every(([k, v]) => k === "contents" && v === "read"),
    ).toBe(true);
    for (const [id, job] of Object.entries(wf.jobs)) {
      expect(job.permissions, `${file} job ${id} has no permissions:`).toBeTypeOf("object");
      expect(JSON.stringify(job.permissions)).not.toMatch(/write-all|read-all/);
    }
  });

  it.each(files)(
    "%s grants id-token: write only to jobs that use OIDC, security-events only for SARIF",
    (file) => {
      for (const [id, job] of Object.entries(load(file).jobs)) {
        const perms = (job.permissions ?? {}) as Record<string, string>;
        const usesOidc = job.steps.some((s) => s.uses?.startsWith(`${OIDC}@`));
        const uploadsSarif = job.steps.some((s) => s.uses?.startsWith("github/codeql-action/upload-sarif@"));
        expect(perms["id-token"] === "write", `${file} job ${id}: id-token`).toBe(usesOidc);
        expect(perms["security-events"] === "write", `${file} job ${id}: security-events`).toBe(uploadsSarif);
        const writes = Object.entries(perms)
          .filter(([, v]) => v === "write")
          .map(([k]) => k);
        expect(
          writes.every((k) => k === "id-token" || k === "security-events"),
          `${file} job ${id}: ${writes}`,
        ).toBe(true);
      }
    },
  );

  it.each(files)("%s checks out without persisting the token", (file) => {
    for (const { job, step } of steps(load(file))) {
      if (!step.uses?.startsWith("actions/checkout@")) continue;
      expect(String(step.with?.["persist-credentials"]), `${file} job ${job}`).toBe("false");
    }
  });

  it("no workflow runs on pull_request_target or workflow_run (untrusted code with secrets)", () => {
    for (const file of files) {
      expect(Object.keys(load(file).on)).not.toContain("pull_request_target");
      expect(Object.keys(load(file).on)).not.toContain("workflow_run");
    }
  });
});

describe("deploys", () => {
  const deployJobs = (wf: Workflow) =>
    Object.entries(wf.jobs).filter(([, job]) => job.steps.some((s) => s.uses === "./actions/deploy"));

  it("release.yml deploys staging, then production behind the production environment", () => {
    const wf = load("release.yml");
    expect(Object.keys(wf.on)).toEqual(["push"]);
    expect((wf.on.push as { branches: string[] }).branches).toEqual(["main"]);
    expect(deployJobs(wf).map(([id]) => id)).toEqual(["deploy-staging", "deploy-production"]);
    expect(wf.jobs["deploy-staging"]?.environment).toBe("staging");
    expect(wf.jobs["deploy-production"]?.environment).toBe("production");
    expect(wf.jobs["deploy-production"]?.needs).toContain("deploy-staging");
    expect(wf.jobs["deploy-staging"]?.needs).toEqual(expect.arrayContaining(["push", "gate"]));
  });

  it.each(["release.yml", "promote.yml"])(
    "%s: every deploy job has a per-environment concurrency group that never cancels",
    (file) => {
      const wf = load(file);
      expect(wf.concurrency?.["cancel-in-progress"], `${file}: workflow-level cancel`).not.toBe(true);
      const jobs = deployJobs(wf);
      expect(jobs.length).toBeGreaterThan(0);
      for (const [id, job] of jobs) {
        const concurrency = job.concurrency;
        expect(concurrency, `${file} job ${id}`).toBeTypeOf("object");
        const { group, "cancel-in-progress": cancel } = concurrency as {
          group: string;
          "cancel-in-progress": unknown;
        };
        expect(cancel, `${file} job ${id}`).toBe(false);
        const environment = typeof job.environment === "object" ? job.environment.name : job.environment;
        // The same group string in both workflows: a promotion waits for a release to the
        // same environment and the other way round.
        expect(group, `${file} job ${id}`).toBe(`deploy-${environment}`);
      }
      for (const [id, job] of Object.entries(wf.jobs)) {
        if (typeof job.concurrency === "object")
          expect(job.concurrency["cancel-in-progress"], `${file} ${id}`).not.toBe(true);
      }
    },
  );

  it.each(["release.yml", "promote.yml"])(
    "%s: AWS steps run only after OIDC on the environment's deploy role, never with keys",
    (file) => {
      const wf = load(file);
      expect(text(file)).not.toMatch(
        /aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY|secrets\./,
      );
      for (const [id, job] of Object.entries(wf.jobs)) {
        const awsIndex = job.steps.findIndex(
          (s) => AWS_ACTIONS.includes(s.uses ?? "") || /\baws\s/.test(s.run ?? ""),
        );
        if (awsIndex === -1) continue;
        const oidcIndex = job.steps.findIndex((s) => s.uses?.startsWith(`${OIDC}@`));
        expect(
          oidcIndex,
          `${file} job ${id} calls AWS without configure-aws-credentials`,
        ).toBeGreaterThanOrEqual(0);
        expect(oidcIndex).toBeLessThan(awsIndex);
        const oidc = job.steps[oidcIndex] as Step;
        // Skipped only in local mode (act has no OIDC token); production never skips it.
        if (oidc.if !== undefined) expect(oidc.if).toBe(expr("!env.ACT"));
        // The role is the naming contract's deploy role of the job's environment; the push
        // job has none and uses staging's (which trusts pushes to main).
        const environment =
          typeof job.environment === "object" ? job.environment.name : (job.environment ?? "staging");
        const roleName = environment.startsWith("${{")
          ? `astrolens-${environment}-deploy`
          : environmentResources(environment).deployRole;
        expect(oidc.with?.["role-to-assume"], `${file} job ${id}`).toBe(
          `arn:aws:iam::\${{ vars.AWS_ACCOUNT_ID }}:role/${roleName}`,
        );
        expect(oidc.with?.["allowed-account-ids"]).toBe(expr("vars.AWS_ACCOUNT_ID"));
      }
    },
  );

  it("release.yml: production never skips OIDC and has no local-mode switch", () => {
    const job = load("release.yml").jobs["deploy-production"] as Job;
    const oidc = job.steps.find((s) => s.uses?.startsWith(`${OIDC}@`));
    expect(oidc?.if).toBeUndefined();
    expect(oidc?.with?.["role-to-assume"]).toBe(
      `arn:aws:iam::\${{ vars.AWS_ACCOUNT_ID }}:role/${environmentResources("production").deployRole}`,
    );
    expect(JSON.stringify(job.steps)).not.toContain("env.ACT");
  });

  it("release.yml: the digest flows from the push job's outputs to every deploy, never a tag", () => {
    const wf = load("release.yml");
    const push = wf.jobs.push as Job;
    expect(push.outputs?.["image-uri"]).toBe(expr("steps.push.outputs.image-uri"));
    expect(push.outputs?.digest).toBe(expr("steps.push.outputs.digest"));
    const stagingDeploy = wf.jobs["deploy-staging"]?.steps.find((s) => s.uses === "./actions/deploy");
    expect(stagingDeploy?.with?.image).toBe(expr("needs.push.outputs.image-uri"));
    const production = wf.jobs["deploy-production"] as Job;
    const promote = production.steps.find((s) => s.uses === "./actions/promote-image");
    expect(promote?.with?.["source-image"]).toBe(expr("needs.push.outputs.image-uri"));
    expect(production.steps.find((s) => s.uses === "./actions/deploy")?.with?.image).toBe(
      expr("steps.promote.outputs.image-uri"),
    );
    // push-image outputs uri@sha256:… (its action.yml); the staged digest is compared with the promoted one.
    const check = production.steps.find((s) => s.env?.STAGED);
    expect(check?.env).toEqual({
      STAGED: expr("needs.push.outputs.digest"),
      PROMOTED: expr("steps.promote.outputs.digest"),
    });
    // Nothing pulls an image by tag.
    expect(text("release.yml")).not.toMatch(/:latest\b|image:\s*[^$\n]*:[\w.-]+\s*$/m);
  });

  it("promote.yml: the promoted digest is the validated input, and the deploy gets the copy's digest", () => {
    const wf = load("promote.yml");
    const job = wf.jobs.promote as Job;
    expect(job.needs).toEqual(["validate", "verify"]);
    const deploy = job.steps.find((s) => s.uses === "./actions/deploy");
    expect(deploy?.with?.image).toBe(expr("steps.promote.outputs.image-uri"));
    expect(job.steps.find((s) => s.env?.WANTED)?.env?.WANTED).toBe(expr("needs.validate.outputs.digest"));
    // After the validate job, nothing reads the raw inputs again.
    for (const [id, other] of Object.entries(wf.jobs)) {
      if (id === "validate") continue;
      expect(JSON.stringify(other), `promote.yml job ${id} reads inputs directly`).not.toMatch(/inputs\./);
    }
  });

  it("the repositories named are the naming contract's", () => {
    const all = `${text("release.yml")}\n${text("promote.yml")}`;
    const literal = [...all.matchAll(/astrolens-([a-z]+)\/inference/g)];
    expect(literal.map((m) => m[0])).toEqual([environmentResources("production").ecrRepository]);
    // The others are built from an environment name: staging (local in local mode), or the validated input.
    expect(all).toContain(`repository: astrolens-${expr("env.ACT && 'local' || 'staging'")}/inference`);
    expect(all).toContain(
      `destination-repository: astrolens-${expr("needs.validate.outputs.target")}/inference`,
    );
    expect(environmentResources("staging").ecrRepository).toBe("astrolens-staging/inference");
  });
});
