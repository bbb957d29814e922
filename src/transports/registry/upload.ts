/**
 * Uploading one blob as a stream (a layer being exported, size unknown until it ends), with
 * retries: the upload is opened with POST, the bytes go in one streamed PATCH (hashed on the
 * way) and a PUT with the digest closes it. When the PATCH fails in a way that may pass (the
 * connection dropped, a 5xx, a 429) and the caller can produce the bytes again, the registry
 * is asked how much of the upload arrived (GET on the upload URL: `Range: 0-END`) and the
 * upload goes on from there with a fresh copy of the stream, whose first bytes are hashed but
 * not sent again; a registry that has lost or refuses the session (distribution 2.8 drops a
 * session whose PATCH was cut) gets a new upload from the start. A resumed upload the registry
 * then refuses (its bytes did not add up to the digest) is also started again from scratch.
 */
import { ImageFormatError } from "../manifest.ts";
import type { WrittenBlob } from "../types.ts";
import { MAX_ATTEMPTS, type RegistryClient, backoffMs } from "./client.ts";
import { RegistryError, isTransient } from "./errors.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Where an upload stands: its URL and the bytes the registry has. */
interface UploadSession {
  location: string;
  received: number;
}

/**
 * A stream hashed whole while only the bytes from `offset` on are passed on (the registry has
 * the ones before). `abandon()` stops the stream's producer when an attempt fails.
 */
export class ResumedBody {
  private readonly hasher = new Bun.CryptoHasher("sha256");
  private readonly iterator: AsyncIterator<Uint8Array>;
  /** Bytes read from the stream so far (sent or skipped). */
  size = 0;
  private ended = false;

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly offset: number,
  ) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** The bytes to send: the stream from `offset` on. */
  async *body(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) break;
      const chunk = next.value;
      this.hasher.update(chunk);
      const start = this.size;
      this.size += chunk.byteLength;
      if (this.size <= this.offset) continue;
      yield start >= this.offset ? chunk : chunk.subarray(this.offset - start);
    }
    this.ended = true;
  }

  /** The digest and size of the whole stream, once it ended. */
  written(): WrittenBlob {
    if (!this.ended) throw new Error("ResumedBody.written before the stream ended");
    return { digest: `sha256:${this.hasher.digest("hex")}`, size: this.size };
  }

  /** Stops the stream (and what produces it) after a failed attempt. */
  async abandon(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.iterator.return?.()?.catch(() => {});
  }
}

/** The blob upload protocol of one repository, as the destination drives it. */
export class BlobUploader {
  constructor(
    private readonly client: RegistryClient,
    private readonly scopes: string[],
  ) {}

  /** Opens an upload session and returns its location. */
  async start(): Promise<string> {
    const response = await this.client.request("POST", `/v2/${this.client.repository}/blobs/uploads/`, {
      what: "starting a blob upload",
      scopes: this.scopes,
      accept: [202],
      headers: { "content-length": "0" },
    });
    await response.body?.cancel();
    return locationOf(response, this.client.where, "starting a blob upload");
  }

  /** Closes an upload with its digest (and, for a small blob, its bytes). */
  async finish(location: string, digest: string, body?: Uint8Array): Promise<void> {
    const url = new URL(location, "http://placeholder/");
    url.searchParams.set("digest", digest);
    const target = /^https?:\/\//.test(location) ? url.href : `${url.pathname}${url.search}`;
    const response = await this.client.request("PUT", target, {
      what: `finishing the upload of blob ${digest}`,
      scopes: this.scopes,
      accept: [201, 204],
      headers: { "content-type": "application/octet-stream" },
      body: body ?? new Uint8Array(),
    });
    await response.body?.cancel();
  }

  /** Abandons an upload session (best effort: the registry expires it anyway). */
  async cancel(location: string): Promise<void> {
    await this.client
      .request("DELETE", location, { what: "cancelling an upload", scopes: this.scopes, accept: [204, 404], retry: false })
      .then((r) => r.body?.cancel())
      .catch(() => {});
  }

  /** How much of an upload the registry has, or undefined when it no longer knows the session. */
  private async status(location: string): Promise<UploadSession | undefined> {
    try {
      const response = await this.client.request("GET", location, { what: "asking how much of an upload arrived", scopes: this.scopes, accept: [204] });
      await response.body?.cancel();
      const end = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get("range") ?? "")?.[1];
      if (end === undefined) return undefined;
      // "0-0" is what registries say for an empty upload too; if a byte did arrive, the digest check at the end catches it.
      return { location: response.headers.get("location") ?? location, received: end === "0" ? 0 : Number(end) + 1 };
    } catch {
      return undefined;
    }
  }

  /**
   * Uploads a stream; `again` gives the same bytes anew for another attempt (without it, a
   * failure ends the upload); `check` may refuse what was read before the upload is closed.
   * Returns the digest and size of what was stored.
   */
  async upload(first: AsyncIterable<Uint8Array>, again?: () => AsyncIterable<Uint8Array>, check?: (written: WrittenBlob) => void): Promise<WrittenBlob> {
    let source = first;
    let session: UploadSession | undefined;
    for (let attempt = 1; ; attempt++) {
      session ??= { location: await this.start(), received: 0 };
      const resumed = session.received > 0;
      const body = new ResumedBody(source, session.received);
      let failure: unknown;
      try {
        const patched = await this.client.request("PATCH", session.location, {
          what: "uploading a blob",
          scopes: this.scopes,
          accept: [202],
          retry: false,
          headers: { "content-type": "application/octet-stream" },
          body: body.body(),
        });
        await patched.body?.cancel();
        const location = locationOf(patched, this.client.where, "uploading a blob", session.location);
        if (body.size < session.received) throw new RegistryError(`${this.client.where}: uploading a blob: the stream is ${body.size} bytes this time, fewer than the ${session.received} the registry has`);
        const written = body.written();
        check?.(written);
        try {
          await this.finish(location, written.digest);
        } catch (error) {
          if (await this.holds(written.digest)) return written;
          throw error;
        }
        return written;
      } catch (error) {
        failure = error;
      }
      await body.abandon();
      const retryable = isTransient(failure) || (resumed && failure instanceof RegistryError);
      if (again === undefined || attempt >= MAX_ATTEMPTS || !retryable) {
        await this.cancel(session.location);
        throw failure;
      }
      this.client.debug(`uploading a blob: ${(failure as Error).message}; attempt ${attempt + 1} of ${MAX_ATTEMPTS}`);
      await sleep(backoffMs(attempt));
      const status = resumed && !isTransient(failure) ? undefined : await this.status(session.location);
      if (status === undefined) await this.cancel(session.location);
      session = status;
      source = again();
    }
  }

  /** Whether the repository has the blob (after a PUT whose answer was lost). */
  private async holds(digest: string): Promise<boolean> {
    try {
      const response = await this.client.request("HEAD", `/v2/${this.client.repository}/blobs/${digest}`, { what: `checking for blob ${digest}`, scopes: this.scopes, accept: [200, 404] });
      await response.body?.cancel();
      return response.status === 200;
    } catch {
      return false;
    }
  }
}

/** The upload location a response gives (relative to the registry, or absolute). */
function locationOf(response: Response, where: string, what: string, fallback?: string): string {
  const location = response.headers.get("location") ?? fallback;
  if (!location) throw new ImageFormatError(`${where}: ${what}: the registry gave no upload location`);
  return location;
}
