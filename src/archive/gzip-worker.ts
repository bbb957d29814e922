/**
 * Worker side of parallel gzip (parallel-gzip.ts): each message is one block of the stream,
 * answered with that block as a complete gzip member, compressed with libdeflate.
 */
declare const self: Worker;

/** A block to compress; `bytes` and `into` (a buffer for the member, when the main thread has a spare one) are transferred. */
export interface GzipJob {
  id: number;
  level: Bun.LibdeflateCompressionOptions["level"];
  bytes: Uint8Array<ArrayBuffer>;
  into?: Uint8Array<ArrayBuffer>;
}

/** Jobs between two garbage collections of this worker's (tiny) heap: each job leaves a member-sized buffer behind. */
const JOBS_PER_COLLECTION = 16;
let jobs = 0;

/** The finished member for a job, or the reason it failed; the job's bytes come back for reuse. */
export type GzipReply = { id: number; block: Uint8Array<ArrayBuffer> } & ({ member: Uint8Array } | { error: string });

self.onmessage = (event: MessageEvent<GzipJob>) => {
  const { id, level, bytes, into } = event.data;
  try {
    let member = Bun.gzipSync(bytes, { level, library: "libdeflate" });
    if (into && member.length <= into.length) {
      // Copied into a buffer that keeps circulating, so that the main thread frees nothing per block.
      into.set(member);
      member = into.subarray(0, member.length);
      if (++jobs % JOBS_PER_COLLECTION === 0) Bun.gc(true);
    }
    self.postMessage({ id, member, block: bytes } satisfies GzipReply, [member.buffer, bytes.buffer]);
  } catch (error) {
    self.postMessage({ id, error: error instanceof Error ? error.message : String(error), block: bytes } satisfies GzipReply, [bytes.buffer]);
  }
};
