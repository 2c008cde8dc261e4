/**
 * Micro-batching: items (tiles) from concurrent requests are collected into one batch for
 * the runtime, which runs batched inference far faster than one tile at a time. One batch
 * runs at a time; while it runs, the next one fills up.
 */

export interface BatchInfo {
  size: number;
  /** How long the batch's oldest item waited before the batch started, in ms. */
  waitedMs: number;
  /** How long `runBatch` took, in ms. */
  durationMs: number;
  failed: boolean;
}

export interface BatcherClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface MicroBatcherOptions<I, O> {
  /** One output per item, in the items' order. A rejection fails exactly this batch's items. */
  runBatch: (items: I[]) => Promise<O[]>;
  /** Largest batch handed to `runBatch` (default 64). */
  maxBatchSize?: number;
  /** Longest an item waits for company once the runtime is free, in ms (default 2). */
  maxWaitMs?: number;
  /** Items waiting beyond which `submitAll` refuses with {@link BatcherOverloadedError}. */
  maxQueued?: number;
  /** Called after every batch, for metrics. */
  onBatch?: (info: BatchInfo) => void;
  /** Time source and timers; injected by tests. */
  clock?: BatcherClock;
}

/** The queue is full: the caller should shed load (503) rather than wait. */
export class BatcherOverloadedError extends Error {
  override name = "BatcherOverloadedError";
}

export interface SubmitOptions {
  /** Aborting removes the items that have not reached the runtime yet and rejects them. */
  signal?: AbortSignal;
}

interface Entry<I, O> {
  item: I;
  /** The submitAll call the item came with. */
  submission: object;
  enqueuedAt: number;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

const systemClock: BatcherClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Collects items into batches of at most `maxBatchSize`, waiting at most `maxWaitMs`. */
export class MicroBatcher<I, O> {
  readonly maxBatchSize: number;
  readonly maxWaitMs: number;
  readonly maxQueued: number;
  private readonly runBatch: (items: I[]) => Promise<O[]>;
  private readonly onBatch: ((info: BatchInfo) => void) | undefined;
  private readonly clock: BatcherClock;
  private queue: Entry<I, O>[] = [];
  private running = false;
  private timer: unknown;

  constructor(options: MicroBatcherOptions<I, O>) {
    this.runBatch = options.runBatch;
    this.maxBatchSize = options.maxBatchSize ?? 64;
    this.maxWaitMs = options.maxWaitMs ?? 2;
    this.maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
    this.onBatch = options.onBatch;
    this.clock = options.clock ?? systemClock;
    if (!Number.isInteger(this.maxBatchSize) || this.maxBatchSize < 1) {
      throw new RangeError(`maxBatchSize must be a whole number >= 1, got ${this.maxBatchSize}`);
    }
    if (!(this.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0, got ${this.maxWaitMs}`);
  }

  /** Items waiting for the runtime (not counting the batch that is running). */
  get queued(): number {
    return this.queue.length;
  }

  /** Whether a batch is in the runtime now. */
  get busy(): boolean {
    return this.running;
  }

  /** Submit one item; resolves with its output. */
  submit(item: I, options: SubmitOptions = {}): Promise<O> {
    return this.submitAll([item], options).then((outputs) => outputs[0] as O);
  }

  /**
   * Submit the items of one request together (they stay in order and may span batches).
   * Resolves with their outputs in order; rejects with the first failure, and then
   * withdraws this submission's items that have not reached the runtime yet.
   */
  submitAll(items: readonly I[], options: SubmitOptions = {}): Promise<O[]> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (items.length === 0) return Promise.resolve([]);
    if (this.queue.length + items.length > this.maxQueued) {
      return Promise.reject(
        new BatcherOverloadedError(
          `the inference queue is full (${this.queue.length} tiles waiting, limit ${this.maxQueued})`,
        ),
      );
    }
    const enqueuedAt = this.clock.now();
    const submission = {};
    const entries: Entry<I, O>[] = [];
    const promises = items.map(
      (item) =>
        new Promise<O>((resolve, reject) => {
          entries.push({ item, submission, enqueuedAt, resolve, reject });
        }),
    );
    this.queue.push(...entries);

    const withdraw = (reason: unknown): void => this.withdraw(new Set([submission]), reason);
    const onAbort = (): void => withdraw(abortReason(signal as AbortSignal));
    signal?.addEventListener("abort", onAbort, { once: true });

    this.kick();
    return Promise.all(promises).then(
      (outputs) => {
        signal?.removeEventListener("abort", onAbort);
        return outputs;
      },
      (error: unknown) => {
        signal?.removeEventListener("abort", onAbort);
        withdraw(error);
        throw error;
      },
    );
  }

  /** Reject and drop the queued items of these submissions. */
  private withdraw(submissions: ReadonlySet<object>, reason: unknown): void {
    const kept: Entry<I, O>[] = [];
    for (const entry of this.queue) {
      if (submissions.has(entry.submission)) entry.reject(reason);
      else kept.push(entry);
    }
    this.queue = kept;
  }

  /** Start a batch if the runtime is free and the batch is full or its oldest item has waited enough. */
  private kick(): void {
    if (this.running) return;
    const oldest = this.queue[0];
    if (oldest === undefined) {
      this.clearTimer();
      return;
    }
    const wait = oldest.enqueuedAt + this.maxWaitMs - this.clock.now();
    if (this.queue.length >= this.maxBatchSize || wait <= 0) {
      this.clearTimer();
      void this.dispatch();
      return;
    }
    if (this.timer === undefined) {
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, wait);
    }
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private async dispatch(): Promise<void> {
    const batch = this.queue.splice(0, this.maxBatchSize);
    const first = batch[0];
    if (first === undefined) return;
    this.running = true;
    const started = this.clock.now();
    let failed = false;
    try {
      const outputs = await this.runBatch(batch.map((entry) => entry.item));
      if (!Array.isArray(outputs) || outputs.length !== batch.length) {
        throw new Error(
          `the model runner returned ${Array.isArray(outputs) ? outputs.length : typeof outputs} outputs for ${batch.length} tiles`,
        );
      }
      batch.forEach((entry, index) => {
        entry.resolve(outputs[index] as O);
      });
    } catch (error) {
      failed = true;
      for (const entry of batch) entry.reject(error);
      // Their submissions have failed: the rest of their items must not take the next batch.
      this.withdraw(new Set(batch.map((entry) => entry.submission)), error);
    } finally {
      this.running = false;
      const finished = this.clock.now();
      try {
        this.onBatch?.({
          size: batch.length,
          waitedMs: started - first.enqueuedAt,
          durationMs: finished - started,
          failed,
        });
      } catch {
        // Metrics must never stall the queue.
      }
      this.kick();
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("the request was aborted", "AbortError");
}
