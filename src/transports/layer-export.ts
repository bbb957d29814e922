/**
 * A stored layer's diff as a byte stream for push. The Store's `diff` writes into a sink; the
 * stream reads from it chunk by chunk, without copying (one chunk in flight). An export's failure comes
 * out of its stream; a consumer that stops early (`return()`, as a registry upload does when
 * its connection drops) stops the export too, and a destination that has to send a blob again
 * asks for a fresh export of the same bytes.
 */
import type { ByteSink } from "../archive/types.ts";

/** Thrown to an export's writer when its reader stopped. */
class ExportAbandoned extends Error {
  constructor() {
    super("the layer export's reader stopped");
  }
}

/** A chunk handed to the reader, and how its writer learns that the reader is done with it. */
interface Handed {
  chunk: Uint8Array | null;
  taken: () => void;
  refused: (error: unknown) => void;
}

/**
 * A sink whose bytes come out of an async iterable, handed over without a copy: write()
 * resolves once the reader is done with the chunk (it asked for the next one), so the writer
 * may reuse its buffer (parallel gzip recycles its members) and one chunk is in flight.
 * `fail` ends the stream with an error; a reader that stops (`return()`) fails the writer.
 */
function sinkToStream(): { sink: ByteSink; stream: AsyncIterableIterator<Uint8Array>; fail(error: unknown): void } {
  const handed: Handed[] = [];
  /** The chunk the reader has now; its writer waits until the reader asks for the next one. */
  let lent: Handed | undefined;
  let failure: unknown;
  let abandoned = false;
  let wakeReader: (() => void) | undefined;
  const fail = (error: unknown) => {
    failure ??= error;
    for (const waiting of handed.splice(0)) waiting.refused(failure);
    lent?.refused(failure);
    lent = undefined;
    wakeReader?.();
    wakeReader = undefined;
  };
  const hand = (chunk: Uint8Array | null) =>
    new Promise<void>((taken, refused) => {
      if (failure !== undefined) return refused(failure);
      handed.push({ chunk, taken, refused });
      wakeReader?.();
      wakeReader = undefined;
    });
  const sink: ByteSink = { consumesChunks: true, write: (chunk) => hand(chunk), close: () => hand(null) };
  const stream: AsyncIterableIterator<Uint8Array> = {
    async next(): Promise<IteratorResult<Uint8Array>> {
      lent?.taken();
      lent = undefined;
      for (;;) {
        if (abandoned) return { done: true, value: undefined };
        if (failure !== undefined) throw failure;
        const next = handed.shift();
        if (next === undefined) {
          await new Promise<void>((resolve) => (wakeReader = resolve));
          continue;
        }
        if (next.chunk === null) {
          next.taken();
          return { done: true, value: undefined };
        }
        lent = next;
        return { done: false, value: next.chunk };
      }
    },
    async return(): Promise<IteratorResult<Uint8Array>> {
      abandoned = true;
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
