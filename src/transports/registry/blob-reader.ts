/**
 * A registry blob as one byte stream that survives faults: the GET follows redirects (to the
 * registry's storage) and is retried like every request; when the connection drops or ends
 * early mid-body, the rest is asked for with `Range: bytes=N-` and the blob goes on where it
 * stopped. A registry that ignores Range (200 instead of 206) sends the blob again, and the
 * bytes already there are skipped. The caller checks the digest of what it read.
 *
 * The blob can be read as a stream of chunks, or saved into a file (`saveTo`): then Bun writes
 * the response to the file itself, and the bytes never pass through JavaScript (no chunk
 * garbage for the collector: docs/benchmarks.md, "Registries").
 */
import { fstatSync, writeSync } from "node:fs";
import { isWriteFault } from "../../errors.ts";
import type { BlobReader } from "../types.ts";
import { MAX_ATTEMPTS, type RegistryClient, backoffMs } from "./client.ts";
import { RegistryError } from "./errors.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens a blob of the client's repository; `size` is the descriptor's (-1 if unknown). */
export async function openBlob(client: RegistryClient, digest: string, size: number): Promise<BlobReader> {
  const path = `/v2/${client.repository}/blobs/${digest}`;
  const scopes = [`repository:${client.repository}:pull`];
  const what = `reading blob ${digest}`;
  const first = await client.request("GET", path, { what, scopes });
  const length = Number(first.headers.get("content-length") ?? -1);

  /** Whether `received` bytes (after `failure`, if any) are the whole blob; throws once the attempts are used up. */
  const finished = (received: number, failure: unknown, attempt: number): boolean => {
    if (failure === undefined && (size < 0 || received >= size)) return true;
    if (attempt + 1 >= MAX_ATTEMPTS) {
      const why = failure === undefined ? `the connection ended after ${received} of ${size} bytes` : String((failure as Error)?.message ?? failure).split("\n")[0];
      throw new RegistryError(`${client.where}: ${what}: ${why} (gave up after ${MAX_ATTEMPTS} attempts)`);
    }
    return false;
  };

  /** After a backoff, asks for the bytes from `received` on; the response and the bytes at its start to skip (already there). */
  const resumed = async (received: number, attempt: number): Promise<{ response: Response; skip: number }> => {
    await sleep(backoffMs(attempt + 1));
    const response = await client.request("GET", path, { what, scopes, headers: { range: `bytes=${received}-` }, accept: [200, 206] });
    if (response.status !== 206) return { response, skip: received };
    const start = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1];
    const skip = start === undefined ? 0 : received - Number(start);
    if (skip < 0) throw new RegistryError(`${client.where}: ${what}: the registry resumed at byte ${start}, after the ${received} bytes read`);
    return { response, skip };
  };

  /** The chunks of a response's body after its first `skip` bytes. */
  async function* bodyAfter(response: Response, skip: number): AsyncGenerator<Uint8Array> {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (skip >= chunk.byteLength) {
        skip -= chunk.byteLength;
        continue;
      }
      yield skip > 0 ? chunk.subarray(skip) : chunk;
      skip = 0;
    }
  }

  async function* stream(): AsyncGenerator<Uint8Array> {
    let response = first;
    let skip = 0;
    let received = 0;
    for (let attempt = 0; ; attempt++) {
      let failure: unknown;
      try {
        for await (const chunk of bodyAfter(response, skip)) {
          received += chunk.byteLength;
          yield chunk;
        }
      } catch (error) {
        failure = error;
      }
      if (finished(received, failure, attempt)) return;
      ({ response, skip } = await resumed(received, attempt));
    }
  }

  /**
   * Writes the blob into `fd`, an empty file opened for writing: Bun writes each response at
   * the file's offset, so a resumed one (206 from where the file ends) is appended. A registry
   * that sends the blob whole again is written through JavaScript at the bytes' own offsets.
   */
  async function saveTo(fd: number): Promise<void> {
    let response = first;
    let skip = 0;
    let native = true;
    for (let attempt = 0; ; attempt++) {
      let failure: unknown;
      // Once a response is written through JavaScript, the offset Bun writes at is no longer where the file ends.
      native &&= skip === 0;
      try {
        if (native) await Bun.write(Bun.file(fd), response);
        else {
          let position = fstatSync(fd).size - skip;
          for await (const chunk of bodyAfter(response, 0)) {
            for (let offset = 0; offset < chunk.byteLength; ) offset += writeSync(fd, chunk, offset, chunk.byteLength - offset, position + offset);
            position += chunk.byteLength;
          }
        }
      } catch (error) {
        // The file could not take the bytes (a full disk): no attempt more would help.
        if (isWriteFault(error)) throw error;
        failure = error;
      }
      const received = fstatSync(fd).size;
      if (finished(received, failure, attempt)) return;
      ({ response, skip } = await resumed(received, attempt));
    }
  }

  return { stream: stream(), size: size >= 0 ? size : length, saveTo };
}
