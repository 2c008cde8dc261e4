/** Process lifecycle: SIGTERM/SIGINT drain the server, then the process exits. */
import type { Logger } from "./logger.js";
import type { RunningServer } from "./server.js";

export interface ExitOnSignalsOptions {
  logger: Logger;
  /** process.exit by default; injected by tests. */
  exit?: (code: number) => void;
  signals?: readonly NodeJS.Signals[];
}

/**
 * On the first signal, drain and exit 0 (every accepted request answered) or 1 (the drain
 * deadline passed). A second signal exits 1 at once, for an impatient Ctrl-C.
 * Returns a function that removes the handlers.
 */
export function exitOnSignals(running: RunningServer, options: ExitOnSignalsOptions): () => void {
  const { logger } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received !== undefined) {
      logger.warn("second signal; exiting without waiting", { signal, first: received });
      exit(1);
      return;
    }
    received = signal;
    running.drain(`received ${signal}`).then(
      (outcome) => exit(outcome.drained ? 0 : 1),
      () => exit(1),
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
