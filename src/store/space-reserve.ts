/**
 * The space reserve: a small file in the graph root, made with the store, that work which frees
 * space (deleting, recovering, repairing) gives up when the file system is full. Deleting must
 * mark its object 'deleting' before it removes any content (DESIGN.md invariant 2), and in WAL
 * mode even a one-row UPDATE appends a page-sized frame to the -wal file: on a full file system
 * that write fails with SQLITE_FULL before anything could be freed. Removing the reserve makes
 * room for those first rows; once the deletion has freed space, the reserve is made again.
 */
import { nodeFs } from "../sys/node-fs.ts";

/** The reserve's file name in the graph root. */
export const RESERVE_FILE = "oci-storage.reserve";

/**
 * Enough for the WAL frames of the marking transactions (a few 4 KiB pages each) and, on a
 * first open that must create it, the 32 KiB WAL index, many times over.
 */
export const RESERVE_BYTES = 1024 * 1024;

/** A reserve smaller than this is not kept: it would not hold one marking transaction for sure. */
const SMALLEST_RESERVE = 128 * 1024;

const BLOCK_BYTES = 64 * 1024;

/** The reserve of one graph root; remembers whether this process freed space, or gave the reserve up. */
export class SpaceReserve {
  private freeing = false;

  constructor(private readonly graphRoot: string) {}

  private get path(): string {
    return `${this.graphRoot}/${RESERVE_FILE}`;
  }

  /**
   * Makes the reserve, as big as RESERVE_BYTES or as the free space allows (when that is at
   * least SMALLEST_RESERVE); false when there is no room for it. Random bytes, so that a
   * compressing file system really sets the space aside.
   */
  make(): boolean {
    const temporary = `${this.path}.${process.pid}`;
    try {
      const fd = nodeFs().openSync(temporary, "w", 0o600);
      let written = 0;
      try {
        const block = crypto.getRandomValues(new Uint8Array(BLOCK_BYTES));
        while (written < RESERVE_BYTES) written += nodeFs().writeSync(fd, block);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC" && (e as NodeJS.ErrnoException).code !== "EDQUOT") throw e;
      } finally {
        nodeFs().closeSync(fd);
      }
      if (written < SMALLEST_RESERVE) throw new Error("no room for a space reserve");
      nodeFs().renameSync(temporary, this.path);
      return true;
    } catch {
      nodeFs().rmSync(temporary, { force: true });
      return false;
    }
  }

  /** Makes the reserve if it is missing (best effort). */
  ensure(): void {
    if (!nodeFs().existsSync(this.path)) this.make();
  }

  /** Notes that this process is freeing space (deleting, recovering): at its end it makes a missing reserve again. */
  noteFreeing(): void {
    this.freeing = true;
  }

  /** Gives the reserve up to make room; false when there was none to give. */
  release(): boolean {
    this.freeing = true;
    try {
      nodeFs().unlinkSync(this.path);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * After this process freed space: makes the reserve again if it is missing (given up by this
   * process, or by one that died). Best effort: on a disk still full the next deletion has none.
   */
  restore(): void {
    if (this.freeing) this.ensure();
    this.freeing = false;
  }
}
