/**
 * Compression detection (docs/cli-contract.md §4.1), decompression and compression of byte streams,
 * byte counting with sha256, and sinks for files and standard output.
 *
 * gzip and zstd input is decompressed through the web DecompressionStream (faster in Bun than
 * node:zlib streams, and node's zstd stream silently accepts truncated input), on a worker
 * thread (worker-decompression.ts) or in-process;
 * bzip2 and xz input is piped through the `bzip2 -dc` / `xz -dc` programs. gzip output is
 * compressed on worker threads (parallel-gzip.ts), zstd output through CompressionStream.
 */
import fs from "node:fs";
import { ArchiveError, NotSupportedError, StorageError, ioError } from "../errors.ts";
import { parallelGzipSink } from "./parallel-gzip.ts";
import { type WorkerMeasured, decompressInWorker } from "./worker-decompression.ts";
import { Compression, type ByteSink, type ByteSource, type TarMeter } from "./types.ts";

const MAGIC: { compression: Compression; bytes: number[] }[] = [
  { compression: Compression.Bzip2, bytes: [0x42, 0x5a, 0x68] },
  { compression: Compression.Gzip, bytes: [0x1f, 0x8b, 0x08] },
  { compression: Compression.Xz, bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { compression: Compression.Zstd, bytes: [0x28, 0xb5, 0x2f, 0xfd] },
];
const SNIFF_LENGTH = 6;

/** The compression whose magic number starts `head` (docs/cli-contract.md §4.1); None for anything else. */
export function detectCompression(head: Uint8Array): Compression {
  for (const { compression, bytes } of MAGIC) {
    if (head.length >= bytes.length && bytes.every((b, i) => head[i] === b)) return compression;
  }
  return Compression.None;
}

/** The name containers-storage uses for a compression in messages ("gzip", "zstd", ...). */
export function compressionName(compression: Compression): string {
  switch (compression) {
    case Compression.Bzip2:
      return "bzip2";
    case Compression.Gzip:
      return "gzip";
    case Compression.Xz:
      return "xz";
    case Compression.Zstd:
      return "zstd";
    default:
      return "none";
  }
}

/** Replays already-read chunks, then the rest of the iterator; returning early releases the iterator. */
async function* replay(head: Uint8Array[], iterator: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* head;
    for (;;) {
      const result = await iterator.next();
      if (result.done) return;
      yield result.value;
    }
  } finally {
    await iterator.return?.();
  }
}

/** How gzip and zstd input is decompressed: on a worker thread (the default with more than one core, for input longer than one chunk) or in-process. */
export interface DecompressOptions {
  worker?: boolean;
  /**
   * Called when the decompression runs on a worker, before any byte beyond the sniffed head is
   * read: the worker will also measure input and output, delivered through the function given
   * (once the output has ended), so the caller need not hash them on the main thread.
   */
  measuredByWorker?: () => (result: WorkerMeasured) => void;
}

/** Yields the chunks read so far, then fails with the error that ended the reading. */
async function* failAfter(head: Uint8Array[], error: unknown): AsyncGenerator<Uint8Array> {
  yield* head;
  throw error;
}

/** Sniffs the first bytes (docs/cli-contract.md §4.1) and returns the decompressed stream. Empty input -> Compression.None, empty stream. */
export async function openDecompressed(
  source: ByteSource,
  options: DecompressOptions = {},
): Promise<{ compression: Compression; stream: ByteSource }> {
  const useWorker = options.worker ?? navigator.hardwareConcurrency > 1;
  const iterator = source[Symbol.asyncIterator]();
  // The chunks read ahead are copies: a source may reuse a chunk's memory once two more have been
  // read (a pull's spool does), and a download that is still arriving can come in many small ones.
  const head: Uint8Array[] = [];
  let headLength = 0;
  while (headLength < SNIFF_LENGTH) {
    const result = await iterator.next();
    if (result.done) break;
    head.push(result.value.slice());
    headLength += result.value.length;
  }
  const first = head.length === 1 ? head[0]! : Buffer.concat(head);
  const compression = detectCompression(first);
  let ended = false;
  let readError: { error: unknown } | undefined;
  if (useWorker && (compression === Compression.Gzip || compression === Compression.Zstd)) {
    // An input that ends within its first chunk is decompressed in-process: starting a worker costs more.
    try {
      const result = await iterator.next();
      if (result.done) ended = true;
      else head.push(result.value.slice());
    } catch (error) {
      // Reported where the stream is read, as without this look-ahead.
      readError = { error };
    }
  }
  const input = readError ? failAfter(head, readError.error) : replay(head, iterator);
  switch (compression) {
    case Compression.Gzip:
    case Compression.Zstd: {
      const kind = compression === Compression.Gzip ? "gzip" : "zstd";
      const onWorker = useWorker && !ended;
      const stream = onWorker ? decompressInWorker(input, kind, (message) => decompressionError(kind, message), options.measuredByWorker?.()) : decompressInProcess(input, kind);
      return { compression, stream };
    }
    case Compression.Bzip2:
    case Compression.Xz: {
      const program = compressionName(compression);
      const executable = Bun.which(program, { PATH: process.env.PATH ?? "" });
      if (executable === null) {
        await input.return(undefined);
        throw new NotSupportedError(`decompressing ${program} input needs the "${program}" program, which was not found in PATH`);
      }
      return { compression, stream: decompressWithProgram(input, program, executable) };
    }
    default:
      return { compression, stream: input };
  }
}

/** A ReadableStream over an async iterator that remembers an error raised by the iterator itself. */
function readableOf(input: AsyncIterator<Uint8Array>, failure: { error?: unknown }): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const result = await input.next();
        if (result.done) controller.close();
        // A copy: the stream may hold a chunk longer than its source keeps it (see inputStream).
        else controller.enqueue(result.value.slice());
      } catch (error) {
        failure.error = error;
        controller.error(error);
      }
    },
    async cancel() {
      await input.return?.();
    },
  });
}

function decompressionError(kind: string, error: unknown): ArchiveError {
  const message = error instanceof Error ? error.message : String(error);
  return new ArchiveError(`decompressing ${kind} input: ${message.split("\n")[0]}`);
}

async function* decompressInProcess(input: AsyncGenerator<Uint8Array>, kind: "gzip" | "zstd"): AsyncGenerator<Uint8Array> {
  const failure: { error?: unknown } = {};
  const decompressor = new DecompressionStream(kind) as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
  const output = readableOf(input, failure).pipeThrough(decompressor);
  try {
    for await (const chunk of output as unknown as AsyncIterable<Uint8Array>) yield chunk;
  } catch (error) {
    if (failure.error !== undefined) throw failure.error;
    if (error instanceof StorageError) throw error;
    throw decompressionError(kind, error);
  }
}

async function* decompressWithProgram(input: AsyncGenerator<Uint8Array>, program: string, executable: string): AsyncGenerator<Uint8Array> {
  const child = Bun.spawn([executable, "-dc"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const programError = (stderr: string, status: number) => {
    const first = stderr.trim().split("\n")[0]?.replace(`${executable}:`, `${program}:`);
    return new ArchiveError(`decompressing ${program} input: ${first || `${program} exited with status ${status}`}`);
  };
  let inputError: unknown;
  const feeding = (async () => {
    try {
      for (;;) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await input.next();
        } catch (error) {
          inputError = error;
          return;
        }
        if (next.done) return;
        try {
          // A pending write returns a promise that rejects (EPIPE) once the program has exited.
          await child.stdin.write(next.value);
          await child.stdin.flush();
        } catch {
          // The program exited early; its exit status tells why.
          await input.return(undefined).catch(() => {});
          return;
        }
      }
    } finally {
      try {
        await child.stdin.end();
      } catch {
        // already closed by the program's exit
      }
    }
  })();
  let finished = false;
  try {
    for await (const chunk of child.stdout as unknown as AsyncIterable<Uint8Array>) yield chunk;
    await feeding;
    const status = await child.exited;
    if (inputError !== undefined) throw inputError;
    if (status !== 0) throw programError(await new Response(child.stderr).text(), status);
    finished = true;
  } finally {
    if (!finished) {
      // The feeder stops at its next write (the pipe is closed) and then releases the input.
      child.kill();
      await child.exited;
    }
  }
}

/** Passes writes on to sink, telling meter how many bytes each one had. */
export function meteredSink(sink: ByteSink, meter: TarMeter): ByteSink {
  return {
    consumesChunks: sink.consumesChunks,
    write(chunk) {
      meter.add(chunk.length);
      return sink.write(chunk);
    },
    close: () => sink.close(),
  };
}

/** Wraps a sink so that bytes written are compressed with gzip or zstd (None: passthrough); close() closes the sink too. */
export function compressingSink(sink: ByteSink, compression: Compression): ByteSink {
  if (compression === Compression.None) return sink;
  if (compression !== Compression.Gzip && compression !== Compression.Zstd) {
    throw new NotSupportedError(`unsupported compression format ${compression === Compression.Bzip2 ? "tar.bz2" : "tar.xz"}`);
  }
  if (compression === Compression.Gzip) return parallelGzipSink(sink);
  const compressor = new CompressionStream("zstd");
  const writer = compressor.writable.getWriter();
  let sinkError: unknown;
  const pumping = (async () => {
    for await (const chunk of compressor.readable as unknown as AsyncIterable<Uint8Array>) await sink.write(chunk);
  })().catch((error) => {
    sinkError = error;
    void writer.abort(error).catch(() => {});
  });
  const failIfBroken = () => {
    if (sinkError !== undefined) throw sinkError;
  };
  return {
    async write(chunk) {
      failIfBroken();
      try {
        await writer.ready;
      } catch (error) {
        // The compressor fails when the sink does; the sink's error is the one worth reporting.
        await pumping;
        failIfBroken();
        throw error;
      }
      writer.write(chunk as Uint8Array<ArrayBuffer>).catch(() => {});
    },
    async close() {
      failIfBroken();
      try {
        await writer.close();
      } finally {
        await pumping;
      }
      failIfBroken();
      await sink.close();
    },
  };
}

/**
 * Passes a stream through while counting bytes and computing sha256; summary() after the end.
 * handOff() stops the hashing: someone else (a decompression worker) measures the same bytes.
 */
export function measure(source: ByteSource): { stream: ByteSource; summary(): { digest: string; size: number }; handOff(): void } {
  const hasher = new Bun.CryptoHasher("sha256");
  let size = 0;
  let digest: string | undefined;
  let hashing = true;
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      if (hashing) hasher.update(chunk);
      size += chunk.length;
      yield chunk;
    }
    digest = `sha256:${hasher.digest("hex")}`;
  }
  return {
    handOff: () => void (hashing = false),
    stream: counted(),
    summary() {
      if (digest === undefined) throw new Error("measure: summary() asked before the stream ended");
      return { digest, size };
    },
  };
}


const FILE_BUFFER_SIZE = 1 << 20;

/** A sink that creates (or truncates) a file and writes to it synchronously, coalescing small chunks. */
export function fileSink(path: string): ByteSink {
  let fd: number;
  try {
    fd = fs.openSync(path, "w", 0o644);
  } catch (error) {
    throw ioError("open", path, error);
  }
  let buffer = new Uint8Array(FILE_BUFFER_SIZE);
  let used = 0;
  const writeAll = (bytes: Uint8Array) => {
    try {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    } catch (error) {
      throw ioError("write", path, error);
    }
  };
  const flush = () => {
    if (used > 0) writeAll(buffer.subarray(0, used));
    used = 0;
  };
  return {
    consumesChunks: true,
    write(chunk) {
      if (chunk.length >= FILE_BUFFER_SIZE / 4) {
        flush();
        writeAll(chunk);
        return;
      }
      if (used + chunk.length > buffer.length) flush();
      buffer.set(chunk, used);
      used += chunk.length;
    },
    async close() {
      try {
        flush();
      } finally {
        buffer = new Uint8Array(0);
        fs.closeSync(fd);
      }
    },
  };
}

const STDOUT_FLUSH_THRESHOLD = 1 << 20;

/**
 * What a write to standard output that had to wait settled with. A byte count is the write
 * done; Bun's FileSink settles a waiting write with `true` when the reader closed the pipe while
 * it waited (the bytes went nowhere, later writes too), which is the broken pipe it did not report.
 */
function settledWrite(result: unknown): void {
  if (typeof result !== "number") throw ioError("write", "/dev/stdout", { code: "EPIPE" });
}

/** A sink for standard output; waits for the pipe to drain every megabyte. close() flushes but leaves fd 1 open. */
export function stdoutSink(): ByteSink {
  const writer = Bun.stdout.writer({ highWaterMark: STDOUT_FLUSH_THRESHOLD });
  let buffered = 0;
  const flush = async () => {
    buffered = 0;
    try {
      await writer.flush();
    } catch (error) {
      throw ioError("write", "/dev/stdout", error);
    }
  };
  return {
    async write(chunk) {
      let result: unknown;
      try {
        // A write the pipe cannot take at once returns a promise, which rejects (EPIPE) if the reader has gone.
        const pending = writer.write(chunk);
        result = typeof pending === "number" ? pending : await pending;
      } catch (error) {
        throw ioError("write", "/dev/stdout", error);
      }
      settledWrite(result);
      buffered += chunk.length;
      if (buffered >= STDOUT_FLUSH_THRESHOLD) await flush();
    },
    async close() {
      await flush();
    },
  };
}
