/**
 * Worker side of worker-decompression.ts: runs one DecompressionStream (gzip or zstd) off the
 * main thread. Input buffers come in and go back once the decompressor has taken them; output
 * is gathered into buffers of OUTPUT_BUFFER_SIZE, sent one per credit, and come back for reuse
 * with later credits, so that neither side allocates per chunk.
 */
declare const self: Worker;

/** Messages to the worker: the kind first, then input (transferred), the end, and credits (each may return an output buffer). */
export type DecompressRequest =
  | { type: "start"; kind: "gzip" | "zstd"; credits: number; measure?: boolean }
  | { type: "input"; bytes: Uint8Array<ArrayBuffer> }
  | { type: "end" }
  | { type: "credit"; spare?: Uint8Array<ArrayBuffer> };

/** Messages from the worker: output, an input buffer given back, the end, or the decompressor's error message. */
export type DecompressReply =
  | { type: "output"; bytes: Uint8Array<ArrayBuffer> }
  | { type: "consumed"; spare: Uint8Array<ArrayBuffer> }
  | { type: "end"; measured?: WorkerMeasured }
  | { type: "error"; message: string };

/** sha256 ("sha256:hex") and size of the input the worker took and of the output it made. */
export interface WorkerMeasured {
  input: { digest: string; size: number };
  output: { digest: string; size: number };
}

/** Hashes bytes as they pass, on this thread. */
class Meter {
  private readonly hasher = new Bun.CryptoHasher("sha256");
  private size = 0;

  add(bytes: Uint8Array): void {
    this.hasher.update(bytes);
    this.size += bytes.length;
  }

  result(): { digest: string; size: number } {
    return { digest: `sha256:${this.hasher.digest("hex")}`, size: this.size };
  }
}

/** Size of the output buffers. */
export const OUTPUT_BUFFER_SIZE = 256 * 1024;
/** Input is handed to the decompressor in pieces of at most this size, which bounds the output one write can produce. */
const PIECE_SIZE = 64 * 1024;

let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
let reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> } | undefined;
let credits = 0;
let wakeReader: (() => void) | undefined;
let failed = false;
/** Input writes run one after the other, in arrival order. */
let writing: Promise<void> = Promise.resolve();
const spareOutputs: Uint8Array<ArrayBuffer>[] = [];
/** Set when the main thread asked for the digests of input and output (so that it need not hash them itself). */
let meters: { input: Meter; output: Meter } | undefined;

function reply(message: DecompressReply, transfer: ArrayBuffer[] = []): void {
  self.postMessage(message, transfer);
}

function fail(error: unknown): void {
  if (failed) return;
  failed = true;
  reply({ type: "error", message: error instanceof Error ? error.message : String(error) });
}

async function pumpOutput(): Promise<void> {
  let buffer: Uint8Array<ArrayBuffer> | undefined;
  let used = 0;
  const send = async () => {
    while (credits === 0) await new Promise<void>((resolve) => (wakeReader = resolve));
    credits--;
    reply({ type: "output", bytes: buffer!.subarray(0, used) }, [buffer!.buffer]);
    buffer = undefined;
    used = 0;
  };
  try {
    for (;;) {
      const { done, value } = await reader!.read();
      if (done || value === undefined) break;
      meters?.output.add(value);
      for (let offset = 0; offset < value.length; ) {
        buffer ??= spareOutputs.pop() ?? new Uint8Array(OUTPUT_BUFFER_SIZE);
        const take = Math.min(value.length - offset, buffer.length - used);
        buffer.set(value.subarray(offset, offset + take), used);
        used += take;
        offset += take;
        if (used === buffer.length) await send();
      }
    }
    if (used > 0) await send();
    reply({ type: "end", measured: meters ? { input: meters.input.result(), output: meters.output.result() } : undefined });
  } catch (error) {
    // Output decompressed before the error is delivered first, as the in-process path does.
    if (used > 0 && !failed) await send();
    fail(error);
  }
}

async function writeInput(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  meters?.input.add(bytes);
  for (let offset = 0; offset < bytes.length; offset += PIECE_SIZE) await writer!.write(bytes.subarray(offset, offset + PIECE_SIZE));
  reply({ type: "consumed", spare: bytes }, [bytes.buffer]);
}

self.onmessage = (event: MessageEvent<DecompressRequest>) => {
  const request = event.data;
  switch (request.type) {
    case "start": {
      const decompressor = new DecompressionStream(request.kind) as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
      writer = decompressor.writable.getWriter();
      reader = decompressor.readable.getReader();
      credits = request.credits;
      if (request.measure) meters = { input: new Meter(), output: new Meter() };
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
      if (request.spare && request.spare.buffer.byteLength === OUTPUT_BUFFER_SIZE) spareOutputs.push(new Uint8Array(request.spare.buffer));
      wakeReader?.();
      wakeReader = undefined;
      break;
  }
};
