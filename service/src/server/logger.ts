/**
 * Structured logs: one JSON object per line on stdout, which CloudWatch Logs (awslogs on
 * ECS, the SageMaker endpoint's log group) stores as-is and Logs Insights can query.
 */

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Write a JSON document as its own line, untouched (EMF documents must keep `_aws` at the root). */
  document(document: object): void;
}

/** A logger writing JSON lines through `write` (stdout by default). */
export function createJsonLogger(
  write: (line: string) => void = (line) => {
    process.stdout.write(line);
  },
  now: () => Date = () => new Date(),
): Logger {
  const log = (level: string, msg: string, fields: LogFields = {}): void => {
    write(`${safeStringify({ time: now().toISOString(), level, msg, ...fields })}\n`);
  };
  return {
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
    document: (document) => write(`${safeStringify(document)}\n`),
  };
}

/** The fields that describe an error in a log line. */
export function errorFields(error: unknown): LogFields {
  if (error instanceof Error) return { error: error.message, error_name: error.name, stack: error.stack };
  return { error: String(error) };
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, field: unknown) =>
      typeof field === "bigint" ? String(field) : field,
    );
  } catch {
    return JSON.stringify({ level: "error", msg: "unserialisable log line" });
  }
}
