/**
 * The pieces of a retried upload that a real registry cannot show (distribution 2.8 never lets
 * an upload resume past its first byte): a resumed body hashes the whole stream but sends only
 * what the registry lacks, and a layer export stops when its reader gives up.
 */
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { ByteSink } from "../../src/archive/types.ts";
import { exportStream } from "../../src/transports/layer-export.ts";
import { ResumedBody } from "../../src/transports/registry/upload.ts";

async function* chunks(parts: number[][], finished: { value: boolean }): AsyncGenerator<Uint8Array> {
  try {
    for (const part of parts) yield new Uint8Array(part);
  } finally {
    finished.value = true;
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of stream) out.push(...chunk);
  return out;
}

test("a resumed body sends the bytes from the offset on (also from inside a chunk) and hashes them all", async () => {
  const parts = [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 10, 11]];
  const whole = parts.flat();
  const digest = `sha256:${createHash("sha256").update(new Uint8Array(whole)).digest("hex")}`;
  for (const offset of [0, 3, 5, 11, 12]) {
    const body = new ResumedBody(chunks(parts, { value: false }), offset);
    expect(await collect(body.body())).toEqual(whole.slice(offset));
    expect(body.written()).toEqual({ digest, size: 12 });
  }
});

test("abandoning a resumed body stops its source", async () => {
  const finished = { value: false };
  const body = new ResumedBody(chunks([[1], [2], [3]], finished), 0);
  const sending = body.body();
  expect((await sending.next()).value).toEqual(new Uint8Array([1]));
  await body.abandon();
  expect(finished.value).toBe(true);
});

test("an export whose reader stops is stopped: its next write fails and it ends", async () => {
  let writes = 0;
  let ended: unknown;
  const done = new Promise<void>((resolve) => {
    const stream = exportStream(async (sink: ByteSink) => {
      try {
        for (;;) {
          await sink.write(new Uint8Array(1024));
          writes++;
        }
      } catch (error) {
        ended = error;
        resolve();
        throw error;
      }
    });
    void (async () => {
      let read = 0;
      for await (const _ of stream) if (++read === 3) break;
    })();
  });
  await done;
  expect(ended).toBeInstanceOf(Error);
  expect(writes).toBeLessThan(20);
});

test("an export's failure comes out of its stream", async () => {
  const stream = exportStream(async (sink) => {
    await sink.write(new Uint8Array([1, 2]));
    throw new Error("layer content is missing");
  });
  await expect(collect(stream)).rejects.toThrow("layer content is missing");
});
