import { describe, expect, it } from "vitest";
import { Summary } from "../../src/gh/summary.js";

describe("Summary", () => {
  it("joins parts with blank lines and ends with a new line", () => {
    const markdown = new Summary().heading("Image pushed").paragraph("done").toMarkdown();
    expect(markdown).toBe("## Image pushed\n\ndone\n");
  });

  it("writes headings at the level asked for", () => {
    expect(new Summary().heading("Timings", 3).toMarkdown()).toBe("### Timings\n");
  });

  it("renders a table with a header, a rule and one line per row", () => {
    const markdown = new Summary()
      .table(
        ["stage", "seconds"],
        [
          ["build", "1.5"],
          ["push", "2.0"],
        ],
      )
      .toMarkdown();
    expect(markdown).toBe("| stage | seconds |\n| --- | --- |\n| build | 1.5 |\n| push | 2.0 |\n");
  });

  it("escapes | in cells so a value cannot add a column", () => {
    const markdown = new Summary().table(["tags"], [["a|b"]]).toMarkdown();
    expect(markdown).toBe("| tags |\n| --- |\n| a\\|b |\n");
  });

  it("turns new lines (LF and CRLF) in cells into <br>", () => {
    const markdown = new Summary().table(["reason"], [["line one\nline two\r\nline three"]]).toMarkdown();
    expect(markdown.split("\n")[2]).toBe("| line one<br>line two<br>line three |");
  });

  it("folds details with blank lines so markdown renders inside", () => {
    const markdown = new Summary().details("Raw report", "| a |\n| --- |").toMarkdown();
    expect(markdown).toBe("<details><summary>Raw report</summary>\n\n| a |\n| --- |\n\n</details>\n");
  });

  it("fences code with an optional language", () => {
    expect(new Summary().code('{"a":1}', "json").toMarkdown()).toBe('```json\n{"a":1}\n```\n');
    expect(new Summary().code("x").toMarkdown()).toBe("```\nx\n```\n");
  });

  it("passes raw markdown through unchanged", () => {
    expect(new Summary().raw("**bold** | not a table").toMarkdown()).toBe("**bold** | not a table\n");
  });
});
