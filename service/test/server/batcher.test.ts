import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BatcherOverloadedError, type BatchInfo, MicroBatcher } from "../../src/server/batcher.js";

/** A runBatch whose batches the test completes by hand. */
function controlledRunner<I>() {
  const calls: Array<{ items: I[]; resolve: (outputs: string[]) => void; reject: (error: unknown) => void }> =
    [];
  const runBatch = (items: I[]): Promise<string[]> =>
    new Promise((resolve, reject) => {
      calls.push({ items, resolve, reject });
    });
  return { calls, runBatch };
}

const echo = async (items: number[]): Promise<string[]> => items.map((item) => `out-${item}`);

describe("MicroBatcher", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const clock = {
    now: () => Date.now(),
    setTimeout: (callback: () => void, ms: number) => setTimeout(callback, ms),
    clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
  };

  it("collects items from concurrent submitters into one batch and resolves each in order", async () => {
    const runBatch = vi.fn(echo);
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 64, maxWaitMs: 2, clock });
    const first = batcher.submitAll([1, 2]);
    const second = batcher.submit(3);
    const third = batcher.submitAll([4, 5, 6]);
    expect(runBatch).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(2);
    expect(runBatch).toHaveBeenCalledTimes(1);
    expect(runBatch).toHaveBeenCalledWith([1, 2, 3, 4, 5, 6]);
    await expect(first).resolves.toEqual(["out-1", "out-2"]);
    await expect(second).resolves.toBe("out-3");
    await expect(third).resolves.toEqual(["out-4", "out-5", "out-6"]);
  });

  it("waits no longer than maxWaitMs after the first item", async () => {
    const runBatch = vi.fn(echo);
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 64, maxWaitMs: 5, clock });
    const first = batcher.submit(1);
    await vi.advanceTimersByTimeAsync(3);
    const second = batcher.submit(2); // joins the waiting batch; does not extend its deadline
    await vi.advanceTimersByTimeAsync(1);
    expect(runBatch).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(runBatch).toHaveBeenCalledWith([1, 2]);
    await expect(Promise.all([first, second])).resolves.toEqual(["out-1", "out-2"]);
  });

  it("starts a full batch at once without waiting", async () => {
    const runBatch = vi.fn(echo);
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 3, maxWaitMs: 1000, clock });
    const done = batcher.submitAll([1, 2, 3]);
    expect(runBatch).toHaveBeenCalledWith([1, 2, 3]);
    await expect(done).resolves.toEqual(["out-1", "out-2", "out-3"]);
  });

  it("never hands the runtime more than maxBatchSize items and keeps FIFO order across batches", async () => {
    const { calls, runBatch } = controlledRunner<number>();
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 4, maxWaitMs: 2, clock });
    const big = batcher.submitAll([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const late = batcher.submit(11);
    expect(calls.map((call) => call.items)).toEqual([[1, 2, 3, 4]]);
    expect(batcher.busy).toBe(true);
    expect(batcher.queued).toBe(7);
    const answer = (index: number): void => {
      const call = calls[index];
      if (!call) throw new Error(`no batch ${index}`);
      call.resolve(call.items.map((item) => `out-${item}`));
    };
    answer(0);
    await vi.advanceTimersByTimeAsync(0);
    // The queue waited longer than maxWaitMs while the runtime was busy: the next batch goes at once.
    expect(calls.map((call) => call.items)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    answer(1);
    await vi.advanceTimersByTimeAsync(0);
    // The clock has not moved: the partial batch waits out its maxWaitMs.
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2);
    expect(calls[2]?.items).toEqual([9, 10, 11]);
    answer(2);
    await expect(big).resolves.toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((item) => `out-${item}`));
    await expect(late).resolves.toBe("out-11");
  });

  it("runs one batch at a time", async () => {
    let running = 0;
    let most = 0;
    const runBatch = async (items: number[]): Promise<string[]> => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 10));
      running -= 1;
      return items.map(String);
    };
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 2, maxWaitMs: 1, clock });
    const all = Promise.all(Array.from({ length: 9 }, (_, index) => batcher.submit(index)));
    await vi.advanceTimersByTimeAsync(100);
    await expect(all).resolves.toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8"]);
    expect(most).toBe(1);
  });

  it("fails exactly the items of a failed batch, and the next batch still runs", async () => {
    const { calls, runBatch } = controlledRunner<number>();
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 2, maxWaitMs: 0, clock });
    const a = batcher.submit(1);
    const b = batcher.submit(2); // joins the queue while batch [1] runs
    const c = batcher.submit(3);
    expect(calls.map((call) => call.items)).toEqual([[1]]);
    calls[0]?.reject(new Error("runtime exploded"));
    await expect(a).rejects.toThrow("runtime exploded");
    await vi.advanceTimersByTimeAsync(0);
    expect(calls[1]?.items).toEqual([2, 3]);
    calls[1]?.resolve(["two", "three"]);
    await expect(b).resolves.toBe("two");
    await expect(c).resolves.toBe("three");
  });

  it("isolates a failure to the batch even when one submission spans two batches", async () => {
    const { calls, runBatch } = controlledRunner<number>();
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 2, maxWaitMs: 0, clock });
    const spanning = batcher.submitAll([1, 2, 3]);
    const other = batcher.submit(4);
    calls[0]?.reject(new Error("bad batch"));
    await expect(spanning).rejects.toThrow("bad batch");
    await vi.advanceTimersByTimeAsync(0);
    // Item 3 belonged to the failed submission and was withdrawn; item 4 runs alone.
    expect(calls[1]?.items).toEqual([4]);
    calls[1]?.resolve(["four"]);
    await expect(other).resolves.toBe("four");
  });

  it("treats a synchronous throw and a wrong output count as batch failures", async () => {
    const throwing = new MicroBatcher<number, string>({
      runBatch: () => {
        throw new Error("sync throw");
      },
      maxWaitMs: 0,
      clock,
    });
    await expect(throwing.submit(1)).rejects.toThrow("sync throw");
    const short = new MicroBatcher<number, string>({
      runBatch: async () => ["only one"],
      maxWaitMs: 0,
      clock,
    });
    await expect(short.submitAll([1, 2])).rejects.toThrow("returned 1 outputs for 2 tiles");
  });

  it("withdraws queued items when the submitter's signal aborts", async () => {
    const { calls, runBatch } = controlledRunner<number>();
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 2, maxWaitMs: 0, clock });
    const first = batcher.submit(1);
    const controller = new AbortController();
    const cancelled = batcher.submitAll([2, 3], { signal: controller.signal });
    const kept = batcher.submit(4);
    expect(batcher.queued).toBe(3);
    controller.abort(new Error("client gone"));
    await expect(cancelled).rejects.toThrow("client gone");
    expect(batcher.queued).toBe(1);
    calls[0]?.resolve(["one"]);
    await expect(first).resolves.toBe("one");
    await vi.advanceTimersByTimeAsync(0);
    expect(calls[1]?.items).toEqual([4]);
    calls[1]?.resolve(["four"]);
    await expect(kept).resolves.toBe("four");
    await expect(batcher.submit(5, { signal: AbortSignal.abort(new Error("already")) })).rejects.toThrow(
      "already",
    );
  });

  it("refuses a submission that would overflow maxQueued", async () => {
    const { runBatch } = controlledRunner<number>();
    const batcher = new MicroBatcher({ runBatch, maxBatchSize: 2, maxWaitMs: 0, maxQueued: 3, clock });
    void batcher.submit(1); // running
    void batcher.submitAll([2, 3]);
    await expect(batcher.submitAll([4, 5])).rejects.toBeInstanceOf(BatcherOverloadedError);
    expect(batcher.queued).toBe(2);
  });

  it("reports every batch's size, wait and duration", async () => {
    const infos: BatchInfo[] = [];
    const runBatch = async (items: number[]): Promise<string[]> => {
      await new Promise((resolve) => setTimeout(resolve, 7));
      return items.map(String);
    };
    const batcher = new MicroBatcher({
      runBatch,
      maxBatchSize: 3,
      maxWaitMs: 2,
      clock,
      onBatch: (info) => {
        infos.push(info);
        throw new Error("a broken metrics hook must not stall the queue");
      },
    });
    const done = batcher.submitAll([1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(50);
    await expect(done).resolves.toEqual(["1", "2", "3", "4"]);
    expect(infos).toEqual([
      { size: 3, waitedMs: 0, durationMs: 7, failed: false },
      { size: 1, waitedMs: 7, durationMs: 7, failed: false },
    ]);
  });

  it("resolves an empty submission at once and validates its options", async () => {
    const runBatch = vi.fn(echo);
    const batcher = new MicroBatcher({ runBatch, clock });
    await expect(batcher.submitAll([])).resolves.toEqual([]);
    expect(runBatch).not.toHaveBeenCalled();
    expect(batcher.maxBatchSize).toBe(64);
    expect(batcher.maxWaitMs).toBe(2);
    expect(() => new MicroBatcher({ runBatch, maxBatchSize: 0 })).toThrow(RangeError);
    expect(() => new MicroBatcher({ runBatch, maxWaitMs: -1 })).toThrow(RangeError);
  });
});
