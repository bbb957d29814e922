import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { SystemError } from "../../src/errors.ts";
import path from "node:path";
import { fileSink, openDecompressed } from "../../src/archive/compression.ts";
import { GZIP_BLOCK_SIZE, parallelGzipSink } from "../../src/archive/parallel-gzip.ts";
import { collectBytes, memorySink, rejection, removeTempDirs, run, sha256, sourceOf, tempDir, SLOW_TEST_TIMEOUT } from "./tar-fixtures.ts";

setDefaultTimeout(SLOW_TEST_TIMEOUT);
afterAll(removeTempDirs);

/** Several blocks of partly compressible, partly random bytes, not a multiple of the block size. */
function sampleBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const text = new TextEncoder().encode("usr/share/doc/package/changelog.Debian.gz 0644 root root\n");
  for (let i = 0; i < length; i += text.length) bytes.set(text.subarray(0, Math.min(text.length, length - i)), i);
  for (let i = 0; i + 65536 <= length; i += 4 * 65536) bytes.set(crypto.getRandomValues(new Uint8Array(65536)), i);
  return bytes;
}

async function gzipped(bytes: Uint8Array, chunkSize: number): Promise<Uint8Array> {
  const inner = memorySink();
  const sink = parallelGzipSink(inner);
  for await (const chunk of sourceOf(bytes, chunkSize)) await sink.write(chunk);
  await sink.close();
  expect(inner.closed).toBe(true);
  return inner.bytes();
}

const PYTHON_GUNZIP = "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))";

describe("parallelGzipSink", () => {
  test("a stream of several blocks is one gzip file for gzip, Python, node:zlib and our own reader", async () => {
    const plain = sampleBytes(3 * GZIP_BLOCK_SIZE + 12345);
    const output = await gzipped(plain, 100_000);
    expect(output.length).toBeLessThan(plain.length / 2);
    expect(sha256(run(["gzip", "-dc"], { stdin: output }))).toBe(sha256(plain));
    expect(sha256(run(["python3", "-c", PYTHON_GUNZIP], { stdin: output }))).toBe(sha256(plain));
    expect(sha256(gunzipSync(output))).toBe(sha256(plain));
    expect(sha256(await collectBytes((await openDecompressed(sourceOf(output))).stream))).toBe(sha256(plain));
    run(["gzip", "-t"], { stdin: output });
  });

  test("streams one after the other reuse the workers and their buffers, and each comes out whole", async () => {
    const inputs = [sampleBytes(3 * GZIP_BLOCK_SIZE + 5), sampleBytes(2 * GZIP_BLOCK_SIZE + 999), sampleBytes(4 * GZIP_BLOCK_SIZE)];
    for (const plain of [...inputs, inputs[0]!]) {
      // A sink that is done with each chunk lets the member buffers circulate into the next stream.
      const inner = { ...memorySink(), consumesChunks: true };
      const kept = memorySink();
      inner.write = (chunk: Uint8Array) => kept.write(chunk);
      const sink = parallelGzipSink(inner);
      for await (const chunk of sourceOf(plain, 250_000)) await sink.write(chunk);
      await sink.close();
      expect(sha256(gunzipSync(kept.bytes()))).toBe(sha256(plain));
    }
  });

  test("chunks larger than a block and exactly one block work too", async () => {
    for (const length of [GZIP_BLOCK_SIZE, 2 * GZIP_BLOCK_SIZE + 1]) {
      const plain = sampleBytes(length);
      expect(sha256(run(["gzip", "-dc"], { stdin: await gzipped(plain, 3 * GZIP_BLOCK_SIZE) }))).toBe(sha256(plain));
    }
  });

  test("it is done with each chunk once write() resolves, so a writer may refill one buffer", async () => {
    const plain = sampleBytes(2 * GZIP_BLOCK_SIZE + 777);
    const inner = memorySink();
    const sink = parallelGzipSink(inner);
    expect(sink.consumesChunks).toBe(true);
    const reused = new Uint8Array(300_000);
    for (let offset = 0; offset < plain.length; offset += reused.length) {
      const piece = plain.subarray(offset, offset + reused.length);
      reused.set(piece);
      await sink.write(reused.subarray(0, piece.length));
      reused.fill(0xee);
    }
    await sink.close();
    expect(sha256(run(["gzip", "-dc"], { stdin: inner.bytes() }))).toBe(sha256(plain));
  });

  test("into a file sink (which is done with each member once written) the member buffers circulate and the file is right", async () => {
    const plain = sampleBytes(40 * GZIP_BLOCK_SIZE + 4321);
    const file = path.join(tempDir(), "out.gz");
    const sink = parallelGzipSink(fileSink(file));
    for await (const chunk of sourceOf(plain, 256 * 1024)) await sink.write(chunk);
    await sink.close();
    expect(sha256(run(["gzip", "-dc", file]))).toBe(sha256(plain));
  });

  test("a short stream and an empty stream are valid gzip", async () => {
    for (const plain of [sampleBytes(1000), new Uint8Array(0)]) {
      const output = await gzipped(plain, 64);
      expect([...output.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
      expect(sha256(run(["gzip", "-dc"], { stdin: output }))).toBe(sha256(plain));
    }
  });

  test("a failing sink fails the writer with the sink's error, also on close", async () => {
    const failing = {
      write() {
        throw new SystemError("write /dev/full: no space left on device", "ENOSPC");
      },
      async close() {},
    };
    const sink = parallelGzipSink(failing);
    const error = await rejection(
      (async () => {
        for (let i = 0; i < 8 * 16; i++) await sink.write(crypto.getRandomValues(new Uint8Array(65536)));
        await sink.close();
      })(),
    );
    expect(error.message).toBe("write /dev/full: no space left on device");
    expect((await rejection(sink.close())).message).toBe("write /dev/full: no space left on device");
  });
});
