/**
 * A layer input opened for applying: decompressed (compression.ts), with the sha256 and size of
 * the input as given and of the tar inside it measured on the way, as containers-storage records
 * them. When a worker thread decompresses, the worker also does the hashing, so the thread that
 * writes the files does not; otherwise the bytes are hashed where they pass.
 */
import { measure, openDecompressed } from "./compression.ts";
import { type ByteSource, Compression } from "./types.ts";
import type { WorkerMeasured } from "./worker-decompression.ts";

/** A digest ("sha256:hex") and a byte count. */
export interface Measured {
  digest: string;
  size: number;
}

/** The opened input: the tar to read, then finish() for what was measured. */
export interface MeasuredInput {
  compression: Compression;
  /** The uncompressed tar; a reader may stop at its end-of-archive marker. */
  tar: ByteSource;
  /** Reads whatever the tar reader left (trailing zero blocks, padding: they count too) and returns the measures. */
  finish(): Promise<{ compressed: Measured; uncompressed: Measured }>;
}

/** Opens a (possibly compressed) layer tar, measuring it. */
export async function openMeasuredInput(source: ByteSource): Promise<MeasuredInput> {
  const raw = measure(source);
  const rawStream = detachable(raw.stream);
  let fromWorker: WorkerMeasured | undefined;
  let byWorker = false;
  const measuredByWorker = () => {
    byWorker = true;
    raw.handOff();
    return (result: WorkerMeasured) => void (fromWorker = result);
  };
  const { compression, stream } = await openDecompressed(rawStream.stream, { measuredByWorker });
  // An uncompressed input is the tar itself: hash it once, not twice.
  const plain = byWorker || compression === Compression.None ? undefined : measure(stream);
  const tarStream = detachable(plain ? plain.stream : stream);
  return {
    compression,
    tar: tarStream.stream,
    async finish() {
      await tarStream.drain();
      await rawStream.drain();
      if (!byWorker) return { compressed: raw.summary(), uncompressed: plain ? plain.summary() : raw.summary() };
      if (fromWorker?.input.size !== raw.summary().size) throw new Error(`the decompression worker measured ${fromWorker?.input.size} input bytes of ${raw.summary().size}`);
      return { compressed: fromWorker.input, uncompressed: fromWorker.output };
    },
  };
}

/**
 * Wraps a source so that a consumer that stops early (a tar reader at the end-of-archive
 * marker) does not close it, and the rest can still be read through drain().
 */
function detachable(source: ByteSource): { stream: ByteSource; drain(): Promise<void> } {
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  const next = async (): Promise<IteratorResult<Uint8Array>> => {
    if (done) return { done: true, value: undefined };
    const result = await iterator.next();
    if (result.done) done = true;
    return result;
  };
  return {
    stream: { [Symbol.asyncIterator]: () => ({ next }) },
    async drain() {
      while (!(await next()).done);
    },
  };
}
