/**
 * A registry blob as one byte stream that survives faults: the GET follows redirects (to the
 * registry's storage) and is retried like every request; when the connection drops or ends
 * early mid-body, the rest is asked for with `Range: bytes=N-` and the stream goes on where it
 * stopped. A registry that ignores Range (200 instead of 206) sends the blob again, and the
 * bytes already passed on are skipped. The caller checks the digest of what it read.
 */
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
  async function* stream(): AsyncGenerator<Uint8Array> {
    let response: Response | undefined = first;
    let received = 0;
    let skip = 0;
    for (let resume = 0; ; resume++) {
      let failure: unknown;
      try {
        for await (const chunk of response!.body as unknown as AsyncIterable<Uint8Array>) {
          if (skip > 0) {
            if (chunk.byteLength <= skip) {
              skip -= chunk.byteLength;
              continue;
            }
            const rest = chunk.subarray(skip);
            skip = 0;
            received += rest.byteLength;
            yield rest;
            continue;
          }
          received += chunk.byteLength;
          yield chunk;
        }
      } catch (error) {
        failure = error;
      }
      if (failure === undefined && (size < 0 || received >= size)) return;
      if (resume + 1 >= MAX_ATTEMPTS) {
        const why = failure === undefined ? `the connection ended after ${received} of ${size} bytes` : String((failure as Error)?.message ?? failure).split("\n")[0];
        throw new RegistryError(`${client.where}: ${what}: ${why} (gave up after ${MAX_ATTEMPTS} attempts)`);
      }
      await sleep(backoffMs(resume + 1));
      response = await client.request("GET", path, { what, scopes, headers: { range: `bytes=${received}-` }, accept: [200, 206] });
      skip = response.status === 206 ? 0 : received;
      if (response.status === 206) {
        const start = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1];
        if (start !== undefined && Number(start) !== received) {
          skip = received - Number(start);
          if (skip < 0) throw new RegistryError(`${client.where}: ${what}: the registry resumed at byte ${start}, after the ${received} bytes read`);
        }
      }
    }
  }
  return { stream: stream(), size: size >= 0 ? size : length };
}
