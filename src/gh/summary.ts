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
