/**
 * Reading a pull's layer blobs ahead of applying them (docs/decisions/0005-registry-transport.md).
 * Layers are applied one after the other, base first, each in one streaming pass; up to
 * `maxParallel` blobs are downloaded at once. A downloaded blob is written, as it arrives, to
 * an anonymous temporary file (created and unlinked at once, so a killed pull leaves nothing
 * behind), and the apply reads it from that file when its turn comes. Where the source can save
 * a blob to a file itself (a registry: Bun writes the response), the blob to apply next goes
 * through such a file too, so that no network byte passes through JavaScript, and it is read
 * once the source has saved all of it: the file's size while Bun writes does not say which
 * bytes are there (a reader following it met bytes not yet written, in about one pull of a few
 * hundred on a busy machine). A blob the source hands out as a stream is copied by us and can
 * be read while it arrives; a source that cannot save blobs streams them straight into the apply.
 * Memory stays bounded by a few chunks per download, whatever the layer sizes; the disk holds
 * at most the blobs downloaded and not yet applied.
 */
import { closeSync, fstatSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ioError, isWriteFault } from "../errors.ts";
import type { BlobReader, Descriptor, ImageSource } from "./types.ts";

/** Where blobs wait for their turn: $TMPDIR, else /var/tmp (containers/image's place for big files). */
export function spoolDirectory(): string {
  return process.env.TMPDIR || "/var/tmp";
}

/**
 * Bytes read from a spool at a time. The decompression worker gathers its input into buffers of
 * its own anyway; reads of 256 KiB instead of 1 MiB took 4–6 MB off a registry pull's peak
 * memory at the same speed (docs/benchmarks.md).
 */
const READ_CHUNK = 256 * 1024;
/** Buffers a spooled blob is read into in turn (a chunk stays valid until two more have been read). */
const READ_BUFFERS = 3;

/** A blob being written to an unlinked temporary file while it may already be read. */
class Spool {
  private readonly fd: number;
  private written = 0;
  private finished = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  private closed = false;
  /** Set while the source writes the file itself: `written` stays 0 until it has written all of it. */
  private sourceWrites = false;

  /** The file's name while it had one, for messages. */
  private readonly path: string;

  constructor(directory: string) {
    this.path = join(directory, `oci-storage-blob-${process.pid}-${crypto.randomUUID()}`);
    try {
      this.fd = openSync(this.path, "wx+", 0o600);
      unlinkSync(this.path);
    } catch (error) {
      throw ioError("open", this.path, error);
    }
  }

  private notify(): void {
    this.wake?.();
    this.wake = undefined;
  }

  /** Puts the blob into the file: saved by the source where it can, else copied from its stream. Never throws: a failure is handed to the reader. */
  async fill(reader: BlobReader): Promise<void> {
    try {
      if (reader.saveTo) {
        this.sourceWrites = true;
        try {
          await reader.saveTo(this.fd);
        } finally {
          this.sourceWrites = false;
          // A close meanwhile was left to here (see close).
          if (this.closed) closeSync(this.fd);
        }
        if (this.closed) return;
        this.written = fstatSync(this.fd).size;
      } else {
        for await (const chunk of reader.stream) {
          if (this.closed) return;
          let offset = 0;
          while (offset < chunk.byteLength) offset += writeSync(this.fd, chunk, offset, chunk.byteLength - offset, this.written + offset);
          this.written += chunk.byteLength;
          this.notify();
        }
      }
      this.finished = true;
    } catch (error) {
      // A write to the file that failed (a full $TMPDIR) is this host's fault, not the source's: say which file.
      this.failure = isWriteFault(error) ? ioError("write", this.path, error) : error;
    }
    this.notify();
  }

  /** Whether the whole blob is in the file. */
  get complete(): boolean {
    return this.finished;
  }

  /** Ends the blob with an error the reader will meet. */
  fail(error: unknown): void {
    this.failure = error;
    this.notify();
  }

  /**
   * The bytes from the start, waiting for the writer where the reader catches up with it. The
   * chunks are read into READ_BUFFERS buffers in turn: a chunk stays valid until two more have
   * been read, as the Store's import expects of its input (a fresh buffer per chunk left a
   * layer's worth of garbage for the collector).
   */
  async *read(): AsyncGenerator<Uint8Array> {
    let position = 0;
    const buffers: Uint8Array[] = [];
    let turn = 0;
    for (;;) {
      if (position < this.written) {
        const buffer = (buffers[turn++ % READ_BUFFERS] ??= new Uint8Array(READ_CHUNK));
        const n = readSync(this.fd, buffer, 0, Math.min(READ_CHUNK, this.written - position), position);
        position += n;
        yield buffer.subarray(0, n);
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // While the source writes the file, its descriptor stays open until the write ends (fill
    // closes it then): a closed number can be given to the next file opened, which the source
    // would then write into.
    if (!this.sourceWrites) closeSync(this.fd);
  }
}

interface Slot {
  descriptor: Descriptor;
  /** Set once its download into a file started (ahead of its turn, or at it when the source saves blobs itself). */
  spool?: Spool;
  opening?: Promise<BlobReader>;
}

/** A blob's reader, and where its bytes are local, a way to read them once more before the stream (a look ahead at a layer). */
export interface PrefetchedBlob extends BlobReader {
  reread?: () => AsyncIterable<Uint8Array>;
  /** The bytes read again are those of the private file the stream reads too (a finished download ahead): they cannot differ. */
  rereadPrivate?: boolean;
}

/**
 * Hands out the blobs of a pull in order, downloading up to `maxParallel` at once. With
 * `maxParallel` 0 nothing is read ahead: each blob is opened when its turn comes and streams
 * straight into the apply (local files, which a copy ahead would only write twice).
 */
export class BlobPrefetcher {
  private readonly slots: Slot[];
  private nextIndex = 0;
  private active = 0;
  private started = 0;
  private closed = false;

  constructor(
    private readonly source: ImageSource,
    descriptors: Descriptor[],
    private readonly maxParallel: number,
  ) {
    this.slots = descriptors.map((descriptor) => ({ descriptor }));
  }

  /**
   * The reader of the next blob in order. A local blob (maxParallel 0), or one whose download
   * ahead has finished, can also be read again (`reread`); one that streams from the network cannot.
   */
  async next(): Promise<PrefetchedBlob> {
    const index = this.nextIndex++;
    const slot = this.slots[index]!;
    if (this.started <= index) {
      // Its turn came before its download started.
      this.started = index + 1;
      this.active++;
      const reader = await this.source.blob(slot.descriptor);
      if (reader.saveTo && this.maxParallel > 0) {
        this.download(slot, Promise.resolve(reader));
        return this.fromSpool(slot);
      }
      // A source that cannot save it: stream it straight into the apply.
      const self = this;
      const stream = (async function* () {
        try {
          yield* reader.stream;
        } finally {
          self.active--;
          self.fillSlots();
        }
      })();
      this.fillSlots();
      const { source } = this;
      const reread = this.maxParallel === 0 ? async function* () { yield* (await source.blob(slot.descriptor)).stream; } : undefined;
      return { stream, size: reader.size, reread };
    }
    return this.fromSpool(slot);
  }

  /** The reader of a blob whose download into its spool has started. */
  private async fromSpool(slot: Slot): Promise<PrefetchedBlob> {
    const reader = await slot.opening!;
    this.fillSlots();
    const spool = slot.spool!;
    const stream = (async function* () {
      try {
        yield* spool.read();
      } finally {
        spool.close();
      }
    })();
    return { stream, size: reader.size, reread: spool.complete ? () => spool.read() : undefined, rereadPrivate: true };
  }

  /** Starts downloads ahead while fewer than maxParallel run. */
  private fillSlots(): void {
    while (!this.closed && this.active < this.maxParallel && this.started < this.slots.length) {
      const slot = this.slots[this.started++]!;
      this.active++;
      this.download(slot, this.source.blob(slot.descriptor));
    }
  }

  /** Downloads a blob into a spool of its own (counted in `active` until it ends). */
  private download(slot: Slot, opening: Promise<BlobReader>): void {
    const spool = new Spool(spoolDirectory());
    slot.spool = spool;
    slot.opening = opening;
    opening
      .then(
        (reader) => spool.fill(reader),
        (error) => spool.fail(error),
      )
      .finally(() => {
        this.active--;
        this.fillSlots();
      });
  }

  /** Stops downloads ahead and frees their files. */
  close(): void {
    this.closed = true;
    for (const slot of this.slots) slot.spool?.close();
  }
}
