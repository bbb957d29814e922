/** Helpers shared by the tar, compression and layout tests: temp dirs, byte sources and sinks, entry collection. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readTar } from "../../src/archive/tar-reader.ts";
import type { LayoutRecorder } from "../../src/archive/layout.ts";
import type { ByteSink, ByteSource, TarEntry } from "../../src/archive/types.ts";

export const FIXTURES = path.join(import.meta.dir, "fixtures");

/** A fresh directory under /tmp; removeTempDirs() deletes all of them. */
const made: string[] = [];
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oci-storage-archive-"));
  made.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Runs a program, failing the test with its stderr when it exits non-zero; returns stdout. */
export function run(argv: string[], options: { cwd?: string; stdin?: Uint8Array } = {}): Uint8Array {
  const result = Bun.spawnSync(argv, { cwd: options.cwd, stdin: options.stdin, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed: ${result.stderr.toString()}`);
  return new Uint8Array(result.stdout);
}

/** The bytes as a source yielding chunks of `chunkSize` (small sizes exercise reads across chunks). */
export function sourceOf(bytes: Uint8Array, chunkSize = 64 * 1024): ByteSource {
  return {
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.slice(i, i + chunkSize);
    },
  };
}

/** A sink that keeps everything written. */
export function memorySink(): ByteSink & { bytes(): Uint8Array; closed: boolean } {
  const chunks: Uint8Array[] = [];
  const sink = {
    closed: false,
    write(chunk: Uint8Array) {
      chunks.push(chunk.slice());
    },
    async close() {
      sink.closed = true;
    },
    bytes() {
      return new Uint8Array(Buffer.concat(chunks));
    },
  };
  return sink;
}

export async function collectBytes(source: ByteSource): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(chunk.slice());
  return new Uint8Array(Buffer.concat(chunks));
}

export interface ReadEntry {
  entry: TarEntry;
  content: Uint8Array;
}

/** Reads a whole archive with readTar, collecting entries and their contents. */
export async function readAll(source: ByteSource, recorder?: LayoutRecorder): Promise<ReadEntry[]> {
  const entries: ReadEntry[] = [];
  for await (const { entry, body } of readTar(source, { recorder })) entries.push({ entry, content: await collectBytes(body) });
  return entries;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Time allowed to each test that runs tar, Python or compressors. */
export const SLOW_TEST_TIMEOUT = 60_000;

export function sha256(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** The error a promise rejects with (fails when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the operation to fail");
}
