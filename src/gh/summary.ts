import type { ReleaseRecord } from "../deploy/ledger.js";

/**
 * A small markdown builder for job summaries. It only builds text: the action entry
 * writes it to `GITHUB_STEP_SUMMARY`, the CLI prints it or saves it to a file.
 */
export class Summary {
  private readonly parts: string[] = [];

  heading(text: string, level = 2): this {
    this.parts.push(`${"#".repeat(level)} ${text}`);
    return this;
  }

  paragraph(text: string): this {
    this.parts.push(text);
    return this;
  }

  /** A table; cells are escaped so a `|` in a value cannot break the layout. */
  table(header: string[], rows: string[][]): this {
    const line = (cells: string[]) => `| ${cells.map(escapeCell).join(" | ")} |`;
    this.parts.push([line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n"));
    return this;
  }

  details(title: string, body: string): this {
    this.parts.push(`<details><summary>${title}</summary>\n\n${body}\n\n</details>`);
    return this;
  }

  code(text: string, language = ""): this {
    this.parts.push(`\`\`\`${language}\n${text}\n\`\`\``);
    return this;
  }

  raw(markdown: string): this {
    this.parts.push(markdown);
    return this;
  }

  toMarkdown(): string {
    return `${this.parts.join("\n\n")}\n`;
  }
}

function escapeCell(value: string): string {
  return value.replace(/\|/g, "\\|").replace(/\r?\n/g, "<br>");
}

/**
 * The job summary of a release: its ledger record, as a reviewer reads it — the
 * outcome in one sentence, both targets side by side, the smoke tests, the alarms
 * seen, where the image and model came from, and the timings; the raw record folded.
 */
export function releaseSummary(record: ReleaseRecord): Summary {
  const outcome: Record<ReleaseRecord["outcome"], string> = {
    "in-progress": "⏳ in progress",
    succeeded: "✅ succeeded",
    "rolled-back": "↩️ rolled back",
    failed: "❌ failed — needs attention",
  };
  const summary = new Summary()
    .heading(
      `${record.kind === "rollback" ? "Rollback" : "Release"} ${record.releaseId} to ${record.environment}: ${outcome[record.outcome]}`,
    )
    .paragraph(record.reason);
  const ecsRollback = record.ecs.rollback
    ? `${record.ecs.rollback.action}${record.ecs.rollback.state ? ` (${record.ecs.rollback.state})` : ""}`
    : "—";
  const smRollback = record.sagemaker.rollback
    ? `${record.sagemaker.rollback.result ?? ""}${record.sagemaker.rollback.state ? ` (${record.sagemaker.rollback.state})` : ""}`
    : "—";
  summary.table(
    ["", "ECS", "SageMaker"],
    [
      ["new", record.ecs.taskDefinitionArn ?? "—", record.sagemaker.endpointConfigName],
      ["previous", record.ecs.previousTaskDefinitionArn, record.sagemaker.previousEndpointConfigName],
      [
        "deployment",
        record.ecs.deploymentArn ?? "—",
        record.sagemaker.requestedAt ? `requested ${record.sagemaker.requestedAt}` : "not updated",
      ],
      ["last status", record.ecs.status ?? "—", record.sagemaker.status ?? "—"],
      ["smoke test", smokeCell(record.smoke.ecs), smokeCell(record.smoke.sagemaker)],
      ["rollback", ecsRollback, smRollback],
    ],
  );
  if (record.rollback) {
    const r = record.rollback;
    summary.paragraph(
      `Rollback trigger: **${r.trigger}**, detected ${r.detectedAt}; requests: ECS ${r.requests.ecs ?? "—"}, SageMaker ${r.requests.sagemaker ?? "—"}${r.latencyMs !== undefined ? `; ${r.latencyMs} ms from detection to the other target's rollback request` : ""}${r.deferred ? " (SageMaker was updating and was asked again when it stopped)" : ""}.`,
    );
  }
  const failedChecks = [
    ...(record.smoke.ecs?.checks ?? []),
    ...(record.smoke.sagemaker?.checks ?? []),
  ].filter((c) => !c.ok);
  if (failedChecks.length > 0) {
    summary.heading("Failed smoke checks", 3).table(
      ["check", "detail"],
      failedChecks.map((c) => [c.name, c.detail]),
    );
  }
  const hints = [record.smoke.ecs?.logHint].filter((h): h is string => Boolean(h));
  for (const hint of hints) summary.paragraph(`ECS hook: ${hint}.`);

  summary.heading("Alarms", 3).table(
    ["alarm", "at start", "changes"],
    record.alarms.watched.map((name) => {
      const start = record.alarms.atStart.find((a) => a.name === name);
      const changes = record.alarms.events
        .filter((e) => e.name === name)
        .map((e) => `${e.at}: ${e.from} → ${e.to} (${e.reason})`);
      const allowed = record.alarms.allowedInAlarm.includes(name) ? " (allowed)" : "";
      return [name, `${start?.state ?? "?"}${allowed}`, changes.join("\n") || "none"];
    }),
  );
  const gate = record.provenance.gate;
  summary.heading("What was released", 3).table(
    ["", ""],
    [
      ["image", record.imageUri || "—"],
      ["scan verdict", record.provenance.scanVerdict ?? "—"],
      ["waivers", record.provenance.waivers?.join(", ") || "none"],
      ["SBOM", record.provenance.sbomRef ?? "—"],
      ["model", `${record.model.version} (manifest sha256 ${record.model.manifestSha256})`],
      ["accuracy gate", gate ? gate.verdict : "—"],
      ["strategy", `SageMaker ${record.request.strategy}, bake ${record.request.bakeMinutes} min`],
    ],
  );
  if (gate?.metrics)
    summary.details("Gate metrics", `\`\`\`json\n${JSON.stringify(gate.metrics, null, 2)}\n\`\`\``);
  const timings = Object.entries(record.timings);
  if (timings.length > 0) {
    summary.heading("Timings", 3).table(
      ["stage", "seconds"],
      timings.map(([stage, ms]) => [stage, (ms / 1000).toFixed(1)]),
    );
  }
  summary.details("Ledger record", `\`\`\`json\n${JSON.stringify(record, null, 2)}\n\`\`\``);
  return summary;
}

function smokeCell(smoke: ReleaseRecord["smoke"]["ecs"]): string {
  if (!smoke) return "not run";
  return `${smoke.ok ? "passed" : "FAILED"}: ${smoke.summary}`;
}
