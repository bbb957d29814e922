/**
 * Worker side of parallel gzip (parallel-gzip.ts): each message is one block of the stream,
 * answered with that block as a complete gzip member, compressed with libdeflate.
 */
declare const self: Worker;

/** A block to compress; `bytes` is transferred, not copied. */
export interface GzipJob {
  id: number;
  level: Bun.LibdeflateCompressionOptions["level"];
  bytes: Uint8Array<ArrayBuffer>;
}

/** The finished member for a job, or the reason it failed; the job's bytes come back for reuse. */
export type GzipReply = { id: number; block: Uint8Array<ArrayBuffer> } & ({ member: Uint8Array } | { error: string });

self.onmessage = (event: MessageEvent<GzipJob>) => {
  const { id, level, bytes } = event.data;
  try {
    const member = Bun.gzipSync(bytes, { level, library: "libdeflate" });
    self.postMessage({ id, member, block: bytes } satisfies GzipReply, [member.buffer, bytes.buffer]);
  } catch (error) {
    self.postMessage({ id, error: error instanceof Error ? error.message : String(error), block: bytes } satisfies GzipReply, [bytes.buffer]);
  }
};
