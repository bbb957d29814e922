/**
 * BlobPrefetcher (src/transports/prefetch.ts): blobs come out in order and intact, whether the
 * source streams them or saves them into the spool file itself, in whatever order it writes.
 */
import { expect, test } from "bun:test";
import { writeSync } from "node:fs";
import { BlobPrefetcher } from "../../src/transports/prefetch.ts";
import type { BlobReader, Descriptor, ImageSource } from "../../src/transports/types.ts";
import { collectBytes } from "../archive/tar-fixtures.ts";
import { sha256Bytes } from "../helpers/fixtures.ts";

function blobOf(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return bytes;
}

/** A source whose blobs save themselves into the spool: the second half first, then (later) the first half. */
function outOfOrderSource(blobs: Uint8Array[]): ImageSource {
  return {
    description: "test source",
    parallelBlobs: true,
    async blob(descriptor: Descriptor): Promise<BlobReader> {
      const bytes = blobs[Number(descriptor.digest.slice("sha256:".length))]!;
      const half = bytes.length >> 1;
      return {
        size: bytes.length,
        stream: (async function* () {
          yield bytes;
        })(),
        async saveTo(fd: number) {
          writeSync(fd, bytes, half, bytes.length - half, half);
          await Bun.sleep(40);
          writeSync(fd, bytes, 0, half, 0);
        },
      };
    },
  } as unknown as ImageSource;
}

test("a blob the source saves itself is read only once saved: bytes written out of order never reach the reader unwritten", async () => {
  const blobs = [blobOf(600_000, 1), blobOf(300_001, 2), blobOf(5, 3)];
  const descriptors = blobs.map((bytes, i) => ({ mediaType: "application/octet-stream", digest: `sha256:${i}`, size: bytes.length }) as Descriptor);
  const prefetcher = new BlobPrefetcher(outOfOrderSource(blobs), descriptors, 2);
  try {
    for (const bytes of blobs) {
      const reader = await prefetcher.next();
      expect(sha256Bytes(await collectBytes(reader.stream))).toBe(sha256Bytes(bytes));
    }
  } finally {
    prefetcher.close();
  }
});
