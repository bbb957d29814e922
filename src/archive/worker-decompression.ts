/**
 * gzip and zstd decompression on a worker thread (decompress-worker.ts), so that inflating
 * runs on another core while the main thread hashes and writes files. The worker runs the
 * same DecompressionStream as the in-process path, so output and errors are the same. Input
 * and output are bounded windows of chunks: memory does not grow with the layer.
 */
import { ArchiveError } from "../errors.ts";
import type { DecompressReply, DecompressRequest, WorkerMeasured } from "./decompress-worker.ts";
import { workerModuleUrl } from "./worker-url.ts";

/** Input buffers sent to the worker and not yet taken by its decompressor. */
const INPUT_WINDOW = 2;
/** Size of the input buffers; longer chunks are sent in several. */
const INPUT_BUFFER_SIZE = 1 << 20;
/** Output buffers the worker may send ahead of the consumer. */
const OUTPUT_WINDOW = 4;
/** Output buffers the consumer may still be looking at: a chunk stays valid until two more have been read. */
const OUTPUT_LENT = 2;

export type { WorkerMeasured } from "./decompress-worker.ts";

/**
 * Decompresses `input` on a worker; `decompressionError` turns the decompressor's message into
 * the error thrown. Output buffers are reused: a chunk stays valid until two more have been read.
 * With `measured`, the worker also hashes the input it takes and the output it makes, and hands
 * the digests and sizes over when the output ends (so the main thread need not hash them).
 */
export async function* decompressInWorker(
  input: AsyncGenerator<Uint8Array>,
  kind: "gzip" | "zstd",
  decompressionError: (message: string) => ArchiveError,
  measured?: (result: WorkerMeasured) => void,
): AsyncGenerator<Uint8Array> {
  const worker = new Worker(workerModuleUrl("decompress-worker.ts"));
  const send = (request: DecompressRequest, transfer: ArrayBuffer[] = []) => worker.postMessage(request, transfer);
  const outputs: Uint8Array<ArrayBuffer>[] = [];
  const lent: Uint8Array<ArrayBuffer>[] = [];
  const spareInputs: Uint8Array<ArrayBuffer>[] = [];
  let ended = false;
  let failure: Error | undefined;
  let inputError: { error: unknown } | undefined;
  let unconsumed = 0;
  let stopped = false;
  let wakeConsumer: (() => void) | undefined;
  let wakeFeeder: (() => void) | undefined;
  const wake = () => {
    wakeConsumer?.();
    wakeConsumer = undefined;
  };

  worker.onmessage = (event: MessageEvent<DecompressReply>) => {
    const reply = event.data;
    if (reply.type === "output") outputs.push(reply.bytes);
    else if (reply.type === "end") {
      if (reply.measured) measured?.(reply.measured);
      ended = true;
    }
    else if (reply.type === "error") failure ??= decompressionError(reply.message);
    else {
      unconsumed--;
      spareInputs.push(new Uint8Array(reply.spare.buffer));
      wakeFeeder?.();
      wakeFeeder = undefined;
    }
    wake();
  };
  worker.onerror = (event) => {
    failure ??= new ArchiveError(`decompressing ${kind} input: the decompression worker failed: ${event.message}`);
    wake();
  };
  send({ type: "start", kind, credits: OUTPUT_WINDOW, measure: measured !== undefined });

  const feeding = (async () => {
    // Input is gathered into whole buffers: a network stream comes in chunks of 64 KiB, and a
    // message per chunk left the worker waiting for the next one while this thread was busy.
    let buffer: Uint8Array<ArrayBuffer> | undefined;
    let used = 0;
    const flush = async () => {
      while (unconsumed >= INPUT_WINDOW && !stopped) await new Promise<void>((resolve) => (wakeFeeder = resolve));
      if (stopped) return;
      unconsumed++;
      send({ type: "input", bytes: buffer!.subarray(0, used) }, [buffer!.buffer]);
      buffer = undefined;
      used = 0;
    };
    try {
      for (;;) {
        const next = await input.next();
        if (next.done || stopped) break;
        // Copied into a buffer of our own: the source may reuse its chunk, and only a whole buffer can be transferred.
        for (let offset = 0; offset < next.value.length && !stopped; ) {
          buffer ??= spareInputs.pop() ?? new Uint8Array(INPUT_BUFFER_SIZE);
          const take = Math.min(next.value.length - offset, buffer.length - used);
          buffer.set(next.value.subarray(offset, offset + take), used);
          used += take;
          offset += take;
          if (used === buffer.length) await flush();
        }
        // A partly filled buffer goes as soon as the worker has nothing left to work on.
        if (used > 0 && unconsumed === 0) await flush();
      }
      if (used > 0 && !stopped) await flush();
      if (!stopped) send({ type: "end" });
    } catch (error) {
      inputError = { error };
      wake();
    }
  })();

  try {
    for (;;) {
      const chunk = outputs.shift();
      if (chunk !== undefined) {
        lent.push(chunk);
        const spare = lent.length > OUTPUT_LENT ? lent.shift() : undefined;
        send({ type: "credit", spare }, spare ? [spare.buffer] : []);
        yield chunk;
        continue;
      }
      if (inputError) throw inputError.error;
      if (failure) throw failure;
      if (ended) break;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    stopped = true;
    wakeFeeder?.();
    worker.terminate();
    await feeding;
    await input.return(undefined);
  }
}
