/**
 * gzip and zstd input decompress the same on a worker thread and in-process: same bytes, same
 * errors, and an early stop releases the source and the worker. Also the input reader of --file.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { ArchiveError } from "../../src/errors.ts";
import { openDecompressed } from "../../src/archive/compression.ts";
import type { ByteSource } from "../../src/archive/types.ts";
import { inputStream } from "../../src/commands/common.ts";
import type { CommandContext } from "../../src/commands/command.ts";
import { collectBytes, rejection, removeTempDirs, run, sha256, sourceOf, tempDir, SLOW_TEST_TIMEOUT } from "./tar-fixtures.ts";

setDefaultTimeout(SLOW_TEST_TIMEOUT);
afterAll(removeTempDirs);

/** About 5 MiB of text and random bytes, so that output comes in many chunks. */
const plain = (() => {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    parts.push(new TextEncoder().encode(`line ${i} of some text that compresses well\n`.repeat(2000)));
    parts.push(crypto.getRandomValues(new Uint8Array(40_000)));
  }
  return new Uint8Array(Buffer.concat(parts));
})();
const gzipped = run(["gzip", "-c"], { stdin: plain });
const zstded = run(["zstd", "-q", "-c"], { stdin: plain });

function corrupt(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  for (let i = 100; i < 400; i++) copy[i] = copy[i]! ^ 0x5a;
  return copy;
}

/** A source that records whether it was released (its iterator returned). */
function trackedSource(bytes: Uint8Array, chunkSize: number): { source: ByteSource; released(): boolean } {
  let released = false;
  return {
    source: {
      async *[Symbol.asyncIterator]() {
        try {
          for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.slice(i, i + chunkSize);
        } finally {
          released = true;
        }
      },
    },
    released: () => released,
  };
}

for (const worker of [true, false]) {
  describe(worker ? "on a worker thread" : "in-process", () => {
    for (const [kind, compressed] of [
      ["gzip", gzipped],
      ["zstd", zstded],
    ] as const) {
      test(`${kind} input decompresses to the original bytes, from small and large chunks`, async () => {
        // Small chunks (a network stream's) are gathered into whole buffers for the worker; odd sizes cross their ends.
        for (const chunkSize of [1000, 65536, 777_777, 3 << 20]) {
          const { stream } = await openDecompressed(sourceOf(compressed, chunkSize), { worker });
          expect(sha256(await collectBytes(stream))).toBe(sha256(plain));
        }
      });

      test(`${kind} input from a source that reuses its chunks' memory, in tiny first chunks (a download still arriving), decompresses intact`, async () => {
        // Three buffers in turn, as a pull's spool reads: a chunk is valid only until two more have been read.
        const buffers = [0, 1, 2].map(() => new Uint8Array(65536));
        const sizes = [1, 1, 2, 1, 3, 5, 8, 13];
        const source: ByteSource = {
          async *[Symbol.asyncIterator]() {
            for (let position = 0, turn = 0; position < compressed.length; turn++) {
              const n = Math.min(sizes[turn] ?? 65536, compressed.length - position);
              const buffer = buffers[turn % 3]!;
              buffer.set(compressed.subarray(position, position + n));
              position += n;
              yield buffer.subarray(0, n);
            }
          },
        };
        const { stream } = await openDecompressed(source, { worker });
        expect(sha256(await collectBytes(stream))).toBe(sha256(plain));
      });

      test(`${kind} output chunks stay intact until two more have been read`, async () => {
        const { stream } = await openDecompressed(sourceOf(compressed, 100_000), { worker });
        const copies: Uint8Array[] = [];
        let previous: Uint8Array | undefined;
        for await (const chunk of stream) {
          if (previous) expect(sha256(previous)).toBe(sha256(copies[copies.length - 1]!));
          previous = chunk;
          copies.push(chunk.slice());
        }
        expect(sha256(new Uint8Array(Buffer.concat(copies)))).toBe(sha256(plain));
      });

      test(`stopping early releases the ${kind} source`, async () => {
        const tracked = trackedSource(compressed, 4096);
        const { stream } = await openDecompressed(tracked.source, { worker });
        for await (const chunk of stream) {
          expect(chunk.length).toBeGreaterThan(0);
          break;
        }
        expect(tracked.released()).toBe(true);
      });
    }

    const damaged: [string, Uint8Array][] = [
      ["truncated gzip", gzipped.slice(0, gzipped.length >> 1)],
      ["corrupt gzip", corrupt(gzipped)],
      ["gzip followed by garbage", new Uint8Array(Buffer.concat([gzipped, new TextEncoder().encode("garbage")]))],
      ["truncated zstd", zstded.slice(0, zstded.length >> 1)],
      ["corrupt zstd", corrupt(zstded)],
    ];
    for (const [name, bytes] of damaged) {
      test(`${name} input fails with the same one-line ArchiveError on both paths`, async () => {
        const errors: string[] = [];
        for (const onWorker of [worker, !worker]) {
          const { stream } = await openDecompressed(sourceOf(bytes), { worker: onWorker });
          const error = await rejection(collectBytes(stream));
          expect(error).toBeInstanceOf(ArchiveError);
          expect(error.message).toMatch(/^decompressing (gzip|zstd) input: /);
          expect(error.message).not.toContain("\n");
          errors.push(error.message);
        }
        expect(errors[0]).toBe(errors[1]!);
      });
    }

    test("an error of the source itself is passed on as it is", async () => {
      const failing: ByteSource = {
        async *[Symbol.asyncIterator]() {
          yield gzipped.slice(0, 10_000);
          throw new Error("read /dev/sdz: input/output error");
        },
      };
      const { stream } = await openDecompressed(failing, { worker });
      expect((await rejection(collectBytes(stream))).message).toBe("read /dev/sdz: input/output error");
    });
  });
}

describe("inputStream", () => {
  const context = (file: string) => ({ options: { file } }) as unknown as CommandContext;

  test("a regular file is read whole, in chunks that stay valid until two more have been read", async () => {
    const file = path.join(tempDir(), "input.bin");
    const bytes = new Uint8Array(Buffer.concat([plain, plain.subarray(0, 12345)]));
    fs.writeFileSync(file, bytes);
    const chunks: Uint8Array[] = [];
    const copies: Uint8Array[] = [];
    for await (const chunk of await inputStream(context(file))) {
      // The chunk before this one is still intact.
      if (chunks.length > 0) expect(sha256(chunks[chunks.length - 1]!)).toBe(sha256(copies[copies.length - 1]!));
      chunks.push(chunk);
      copies.push(chunk.slice());
    }
    expect(sha256(new Uint8Array(Buffer.concat(copies)))).toBe(sha256(bytes));
  });

  test("a FIFO is read through a stream; a missing file fails before reading", async () => {
    const dir = tempDir();
    const fifo = path.join(dir, "fifo");
    run(["mkfifo", fifo]);
    const writer = Bun.spawn(["sh", "-c", `printf 'through a fifo' > ${fifo}`]);
    expect(new TextDecoder().decode(await collectBytes(await inputStream(context(fifo))))).toBe("through a fifo");
    await writer.exited;
    expect(inputStream(context(path.join(dir, "missing")))).rejects.toThrow(`open ${path.join(dir, "missing")}: no such file or directory`);
  });
});
