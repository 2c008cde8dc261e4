/**
 * Time as the coordinator sees it. Injected so tests can run an hour of bake in
 * microseconds and assert on the exact order of calls; the real one is `systemClock`.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** ISO 8601 for the ledger and the summary. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
