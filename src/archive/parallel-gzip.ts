/**
 * gzip compression on all cores. The stream is cut into blocks of 1 MiB; workers
 * (gzip-worker.ts) compress each block into a complete gzip member with libdeflate, and the
 * members are written in stream order. A series of members is one gzip file (RFC 1952 §2.2):
 * gzip -d, Go's compress/gzip, Python's gzip module and zlib read it as one stream. A stream
 * shorter than one block is compressed in-process, without starting a worker.
 */
import type { GzipJob, GzipReply } from "./gzip-worker.ts";
import type { ByteSink } from "./types.ts";
import { workerModuleUrl } from "./worker-url.ts";

/** Uncompressed bytes per gzip member. */
export const GZIP_BLOCK_SIZE = 1 << 20;
/**
 * libdeflate level 1: on the benchmark's base layer (204 MB) it writes 96.2 MB, about what
 * containers-storage's pgzip writes (95.1 MB), with ~20 % less CPU than level 3 (93.3 MB).
 */
export const GZIP_LEVEL = 1;
/** Room for the member of one block: libdeflate's worst case is a few bytes per 64 KiB more than the block. */
const MEMBER_BUFFER_SIZE = GZIP_BLOCK_SIZE + 64 * 1024;
/**
 * Blocks queued per worker before the oldest member is awaited (one more is always on its way), so that a worker
 * has its next block while the oldest member is written: 3 took diff -c of the base layer from 1.18 to 1.12 s
 * (medians of 7 interleaved runs, CPU-bound on 2 cores) for ~8 MB more peak memory.
 */
const JOBS_PER_WORKER = 3;
const MAX_WORKERS = 4;

function compressInProcess(bytes: Uint8Array<ArrayBuffer>): Uint8Array {
  return Bun.gzipSync(bytes, { level: GZIP_LEVEL, library: "libdeflate" });
}

/** Workers that turn blocks into gzip members; blocks come back for reuse with the answer. */
class GzipWorkerPool {
  private readonly workers: Worker[] = [];
  private readonly inFlight: number[] = [];
  private readonly waiting = new Map<number, { worker: number; resolve: (member: Uint8Array<ArrayBuffer>) => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private broken: Error | undefined;
  /** Blocks handed back by workers, ready to be filled again. */
  readonly spareBlocks: Uint8Array<ArrayBuffer>[] = [];
  /** Member buffers the sink is done with, for workers to copy their next members into. */
  readonly spareMembers: Uint8Array<ArrayBuffer>[] = [];

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(workerModuleUrl("gzip-worker.ts"));
      worker.onmessage = (event: MessageEvent<GzipReply>) => this.answered(event.data);
      worker.onerror = (event) => this.fail(new Error(`gzip worker failed: ${event.message}`));
      // An idle worker must not keep the process alive; a busy one must, while its answer is awaited.
      worker.unref();
      this.workers.push(worker);
      this.inFlight.push(0);
    }
  }

  /** How many blocks may be queued before the oldest has to be awaited. */
  get capacity(): number {
    return this.workers.length * JOBS_PER_WORKER;
  }

  /** Compresses `bytes` (a view of a block, which is transferred) into one gzip member. */
  compress(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
    if (this.broken) return Promise.reject(this.broken);
    let chosen = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.inFlight[i]! < this.inFlight[chosen]!) chosen = i;
    const id = this.nextId++;
    const worker = this.workers[chosen]!;
    if (this.inFlight[chosen]!++ === 0) worker.ref();
    const answer = new Promise<Uint8Array<ArrayBuffer>>((resolve, reject) => this.waiting.set(id, { worker: chosen, resolve, reject }));
    const into = this.spareMembers.pop();
    worker.postMessage({ id, level: GZIP_LEVEL, bytes, into } satisfies GzipJob, into ? [bytes.buffer, into.buffer] : [bytes.buffer]);
    return answer;
  }

  terminate(): void {
    for (const worker of this.workers) worker.terminate();
    this.workers.length = 0;
    this.fail(new Error("gzip workers stopped"));
  }

  private answered(reply: GzipReply): void {
    const job = this.waiting.get(reply.id);
    if (job === undefined) return;
    this.waiting.delete(reply.id);
    if (--this.inFlight[job.worker]! === 0) this.workers[job.worker]?.unref();
    if (reply.block.buffer.byteLength === GZIP_BLOCK_SIZE) this.spareBlocks.push(new Uint8Array(reply.block.buffer));
    if ("error" in reply) job.reject(new Error(`gzip: ${reply.error}`));
    else job.resolve(reply.member as Uint8Array<ArrayBuffer>);
  }

  private fail(error: Error): void {
    this.broken ??= error;
    for (const job of this.waiting.values()) job.reject(this.broken);
    this.waiting.clear();
  }
}

function workerCount(): number {
  return Math.max(1, Math.min(MAX_WORKERS, navigator.hardwareConcurrency || 1));
}

/**
 * The workers of this process, kept between streams (idle ones do not keep the process alive):
 * a command that compresses several layers (push) starts them, and their buffers, once.
 */
let sharedPool: GzipWorkerPool | undefined;

function workerPool(): GzipWorkerPool {
  sharedPool ??= new GzipWorkerPool(workerCount());
  return sharedPool;
}

/** A sink that gzips what is written to it, block by block on worker threads; close() closes `sink` too. */
export function parallelGzipSink(sink: ByteSink): ByteSink {
  let pool: GzipWorkerPool | undefined;
  let block = new Uint8Array(GZIP_BLOCK_SIZE);
  let used = 0;
  const members: Promise<Uint8Array<ArrayBuffer>>[] = [];
  let failure: unknown;

  const writeOldest = async () => {
    const member = await members.shift()!;
    await sink.write(member);
    // A sink that is done with the chunk lets the buffer circulate; else it stays the sink's.
    if (sink.consumesChunks && pool) pool.spareMembers.push(new Uint8Array(member.buffer.byteLength === MEMBER_BUFFER_SIZE ? member.buffer : new ArrayBuffer(MEMBER_BUFFER_SIZE)));
  };
  const submit = async (bytes: Uint8Array<ArrayBuffer>) => {
    pool ??= workerPool();
    const member = pool.compress(bytes);
    member.catch(() => {}); // awaited in order by writeOldest; a failure surfaces there
    members.push(member);
    while (members.length > pool.capacity) await writeOldest();
  };
  const nextBlock = () => pool?.spareBlocks.pop() ?? new Uint8Array(GZIP_BLOCK_SIZE);
  /** Runs a step; a failure stops the workers and fails every later call with the same error. */
  const guarded = async (step: () => Promise<void>) => {
    if (failure !== undefined) throw failure;
    try {
      await step();
    } catch (error) {
      failure = error;
      if (pool !== undefined) {
        pool.terminate();
        if (sharedPool === pool) sharedPool = undefined;
      }
      throw error;
    }
  };

  return {
    // Every chunk is copied into a block before write() resolves.
    consumesChunks: true,
    write: (chunk) =>
      guarded(async () => {
        let offset = 0;
        while (offset < chunk.length) {
          const take = Math.min(chunk.length - offset, GZIP_BLOCK_SIZE - used);
          block.set(chunk.subarray(offset, offset + take), used);
          used += take;
          offset += take;
          if (used === GZIP_BLOCK_SIZE) {
            const full = block;
            block = nextBlock();
            used = 0;
            await submit(full);
          }
        }
      }),
    close: () =>
      guarded(async () => {
        if (pool === undefined) {
          await sink.write(compressInProcess(block.subarray(0, used)));
        } else {
          if (used > 0) await submit(block.subarray(0, used));
          while (members.length > 0) await writeOldest();
          if (block.buffer.byteLength === GZIP_BLOCK_SIZE) pool.spareBlocks.push(block);
        }
        used = 0;
        await sink.close();
      }),
  };
}
