/**
 * Worker side of worker-decompression.ts: runs one DecompressionStream (gzip or zstd) off the
 * main thread. Input arrives in chunks, each acknowledged once the decompressor has taken it;
 * output goes back in chunks, at most as many ahead as the main thread has granted.
 */
declare const self: Worker;

/** Messages to the worker: the kind first, then input chunks (transferred), the end, and one credit per output chunk taken. */
export type DecompressRequest =
  | { type: "start"; kind: "gzip" | "zstd"; window: number }
  | { type: "input"; bytes: Uint8Array<ArrayBuffer> }
  | { type: "end" }
  | { type: "credit" };

/** Messages from the worker. `message` of an error is the decompressor's own. */
export type DecompressReply = { type: "output"; bytes: Uint8Array<ArrayBuffer> } | { type: "consumed" } | { type: "end" } | { type: "error"; message: string };

/** Input is handed to the decompressor in pieces of at most this size, which bounds the output one write can produce. */
const PIECE_SIZE = 64 * 1024;

let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
let reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> } | undefined;
let credits = 0;
let wakeReader: (() => void) | undefined;
let failed = false;
/** Input writes run one after the other, in arrival order. */
let writing: Promise<void> = Promise.resolve();

function reply(message: DecompressReply, transfer: ArrayBuffer[] = []): void {
  self.postMessage(message, transfer);
}

function fail(error: unknown): void {
  if (failed) return;
  failed = true;
  reply({ type: "error", message: error instanceof Error ? error.message : String(error) });
}

async function pumpOutput(): Promise<void> {
  try {
    for (;;) {
      while (credits === 0) await new Promise<void>((resolve) => (wakeReader = resolve));
      const { done, value } = await reader!.read();
      if (done || value === undefined) {
        reply({ type: "end" });
        return;
      }
      if (value.length === 0) continue;
      credits--;
      const owned = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? (value as Uint8Array<ArrayBuffer>) : value.slice();
      reply({ type: "output", bytes: owned }, [owned.buffer]);
    }
  } catch (error) {
    fail(error);
  }
}

async function writeInput(bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length; offset += PIECE_SIZE) await writer!.write(bytes.subarray(offset, offset + PIECE_SIZE));
  reply({ type: "consumed" });
}

self.onmessage = (event: MessageEvent<DecompressRequest>) => {
  const request = event.data;
  switch (request.type) {
    case "start": {
      const decompressor = new DecompressionStream(request.kind) as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
      writer = decompressor.writable.getWriter();
      reader = decompressor.readable.getReader();
      credits = request.window;
      void pumpOutput();
      break;
    }
    case "input": {
      const bytes = request.bytes;
      writing = writing.then(() => writeInput(bytes)).catch(fail);
      break;
    }
    case "end":
      writing = writing.then(() => writer!.close()).catch(fail);
      break;
    case "credit":
      credits++;
      wakeReader?.();
      wakeReader = undefined;
      break;
  }
};
