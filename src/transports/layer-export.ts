/**
 * A stored layer's diff as a byte stream for push. The Store's `diff` writes into a sink; the
 * stream reads from it with back-pressure (a few chunks in flight). An export's failure comes
 * out of its stream; a consumer that stops early (`return()`, as a registry upload does when
 * its connection drops) stops the export too, and a destination that has to send a blob again
 * asks for a fresh export of the same bytes.
 */
import type { ByteSink } from "../archive/types.ts";

/** Chunks queued before the writer waits, and the level at which it goes on. */
const HIGH_WATER = 8;
const LOW_WATER = 4;

/** Thrown to an export's writer when its reader stopped. */
class ExportAbandoned extends Error {
  constructor() {
    super("the layer export's reader stopped");
  }
}

/** A sink whose bytes come out of an async iterable, with back-pressure; `fail` ends the stream with an error. */
function sinkToStream(): { sink: ByteSink; stream: AsyncIterableIterator<Uint8Array>; fail(error: unknown): void } {
  const queue: Array<Uint8Array | null> = [];
  let failure: unknown;
  let abandoned = false;
  let wakeReader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  const wakeBoth = () => {
    wakeReader?.();
    wakeReader = undefined;
    wakeWriter?.();
    wakeWriter = undefined;
  };
  const sink: ByteSink = {
    async write(chunk) {
      if (failure !== undefined) throw failure;
      queue.push(chunk.slice());
      wakeReader?.();
      wakeReader = undefined;
      if (queue.length >= HIGH_WATER) await new Promise<void>((resolve) => (wakeWriter = resolve));
    },
    async close() {
      queue.push(null);
      wakeReader?.();
      wakeReader = undefined;
    },
  };
  const fail = (error: unknown) => {
    failure ??= error;
    wakeBoth();
  };
  const stream: AsyncIterableIterator<Uint8Array> = {
    async next(): Promise<IteratorResult<Uint8Array>> {
      for (;;) {
        if (abandoned) return { done: true, value: undefined };
        if (failure !== undefined) throw failure;
        const chunk = queue.shift();
        if (chunk === undefined) {
          await new Promise<void>((resolve) => (wakeReader = resolve));
          continue;
        }
        if (queue.length < LOW_WATER) {
          wakeWriter?.();
          wakeWriter = undefined;
        }
        if (chunk === null) return { done: true, value: undefined };
        return { done: false, value: chunk };
      }
    },
    async return(): Promise<IteratorResult<Uint8Array>> {
      abandoned = true;
      queue.length = 0;
      fail(new ExportAbandoned());
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return { sink, stream, fail };
}

/** Starts an export into a fresh pipe and returns its stream; the export's error, if any, comes out of the stream. */
export function exportStream(run: (sink: ByteSink) => Promise<void>): AsyncIterableIterator<Uint8Array> {
  const pipe = sinkToStream();
  run(pipe.sink).catch((error) => pipe.fail(error));
  return pipe.stream;
}
