/**
 * The logging seam. The library logs through this interface only, so the same code
 * runs under the Actions runner (annotations, groups, masking) and in a terminal.
 */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Runs `fn` inside a folded log group named `name`. */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Masks `value` in everything logged afterwards. */
  setSecret(value: string): void;
}

/** A terminal logger: groups become headings, secrets are masked in its own output. */
export function createConsoleLogger(
  options: { debug?: boolean; stream?: NodeJS.WritableStream } = {},
): Logger {
  const stream = options.stream ?? process.stderr;
  const secrets: string[] = [];
  const mask = (text: string) => secrets.reduce((out, secret) => out.split(secret).join("***"), text);
  const write = (prefix: string, message: string) => stream.write(`${prefix}${mask(message)}\n`);
  return {
    debug: (message) => {
      if (options.debug) write("  · ", message);
    },
    info: (message) => write("", message),
    warning: (message) => write("warning: ", message),
    error: (message) => write("error: ", message),
    async group(name, fn) {
      const started = Date.now();
      write("▶ ", name);
      try {
        return await fn();
      } finally {
        write("  ", `(${((Date.now() - started) / 1000).toFixed(1)} s)`);
      }
    },
    setSecret: (value) => {
      if (value) secrets.push(value);
    },
  };
}

/** A logger that remembers every line, for tests. */
export function createMemoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (m) => lines.push(`debug: ${m}`),
    info: (m) => lines.push(m),
    warning: (m) => lines.push(`warning: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
    async group(name, fn) {
      lines.push(`group: ${name}`);
      return fn();
    },
    setSecret: () => {},
  };
}
