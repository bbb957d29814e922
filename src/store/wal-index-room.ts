/**
 * SQLite keeps a WAL database's index in a memory-mapped `-shm` file, which the first connection
 * truncates and grows again by writing one byte at the end of each 4 KiB page. On a file system
 * whose blocks are smaller than that (ext4 on a device under 512 MiB picks 1 KiB), the rest of
 * each page has no blocks behind it: on a full disk SQLite's first write there through the map
 * kills the process with SIGBUS, before any error could be reported. So a store on such a file
 * system is marked when its database is made or upgraded, and a marked store with little room
 * left is opened with the index in memory (read-only-database.ts) instead.
 */

import { nodeFs } from "../sys/node-fs.ts";
import { pathExists } from "../sys/path-exists.ts";

/** The mark, in the directory of the database. */
export const SMALL_BLOCKS_MARK = "oci-storage.small-blocks";
/** The memory page size SQLite grows the index by (4 KiB on x86-64 and on most arm64 kernels). */
const PAGE_BYTES = 4096;
/** Below this much free space a marked store keeps the index in memory: the index's first 32 KiB and room for the WAL. */
export const WAL_INDEX_ROOM_BYTES = 256 * 1024;

/** Marks dir when its file system's blocks are smaller than a page; best effort (called when the database is made or upgraded). */
export function markIfSmallBlocks(dir: string): void {
  const fs = nodeFs();
  try {
    if (Number(fs.statfsSync(dir).bsize) < PAGE_BYTES) fs.writeFileSync(`${dir}/${SMALL_BLOCKS_MARK}`, "");
  } catch {
    // Unmarked, the store works as before; only a full disk can then crash a command.
  }
}

/** True when dir is marked and its file system has too little room left to grow the index safely: one stat when unmarked. */
export function walIndexMayFault(dir: string): boolean {
  if (!pathExists(`${dir}/${SMALL_BLOCKS_MARK}`)) return false;
  const fs = nodeFs().statfsSync(dir);
  return Number(fs.bavail) * Number(fs.bsize) < WAL_INDEX_ROOM_BYTES;
}
