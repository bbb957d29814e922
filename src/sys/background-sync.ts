/**
 * syncfs on a thread of its own, so that the caller goes on while the kernel writes a
 * filesystem back: a pull applies its next layer while the one before is flushed. The thread is
 * made with pthread_create through bun:ffi, running libc's syncfs itself (its one argument, the
 * descriptor, passed as the thread's argument), and is joined by polling pthread_tryjoin_np from
 * the event loop. Where that is not possible the flush runs at once, as syncFilesystem.
 */
import type { Pointer } from "bun:ffi";
import { SystemError } from "../errors.ts";
import { libcNames, openForSync, syncFilesystem, syncFilesystemOf } from "./libc.ts";
import { nodeFs } from "./node-fs.ts";

const EBUSY = 16;
/** How often a running flush is asked whether it has finished. */
const POLL_MS = 1;

interface Threads {
  syncfsAt: Pointer;
  create: (thread: Pointer, attributes: null, start: Pointer, argument: number) => number;
  tryJoin: (thread: bigint, result: Pointer) => number;
}

let threads: Threads | null | undefined;

/** The thread functions, or null when this libc lacks them (then flushes run at once). */
function loadThreads(): Threads | null {
  if (threads !== undefined) return threads;
  const { FFIType, dlopen } = require("bun:ffi") as typeof import("bun:ffi");
  for (const soname of libcNames()) {
    try {
      const { symbols } = dlopen(soname, {
        dlsym: { args: [FFIType.ptr, FFIType.cstring], returns: FFIType.ptr },
        pthread_create: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
        pthread_tryjoin_np: { args: [FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
      });
      const syncfsAt = symbols.dlsym(null, Buffer.from("syncfs\0")) as Pointer | null;
      if (!syncfsAt) continue;
      const found: Threads = {
        syncfsAt,
        create: (thread, attributes, start, argument) => symbols.pthread_create(thread, attributes, start, argument as unknown as Pointer),
        tryJoin: (thread, result) => symbols.pthread_tryjoin_np(thread, result),
      };
      threads = found;
      return found;
    } catch {
      // The next candidate, or flushes at once.
    }
  }
  threads = null;
  return threads;
}

/**
 * Flushes the whole filesystem holding `path` to disk (syncfs) on a thread of its own; the
 * promise settles when what was written before the call is on disk. The thread's errno does not
 * reach this one, so a failed flush is reported by a second syncfs here, through a descriptor
 * opened before the first: the filesystem keeps write-back errors for every descriptor opened
 * before them, so that one says what failed.
 */
export async function syncFilesystemInBackground(path: string): Promise<void> {
  const lib = loadThreads();
  if (lib === null) return syncFilesystem(path);
  const { closeSync } = nodeFs();
  const { ptr } = require("bun:ffi") as typeof import("bun:ffi");
  const reportFd = openForSync(path);
  let threadFd: number | undefined;
  try {
    threadFd = openForSync(path);
    const thread = new BigUint64Array(1);
    const result = new BigUint64Array(1);
    if (lib.create(ptr(thread), null, lib.syncfsAt, threadFd) !== 0) return syncFilesystemOf(reportFd, path);
    let joined: number;
    while ((joined = lib.tryJoin(thread[0]!, ptr(result))) === EBUSY) await Bun.sleep(POLL_MS);
    if (joined !== 0) return syncFilesystemOf(reportFd, path); // not joinable: flushed here instead
    // syncfs returns an int: the low 32 bits of the thread's result.
    if ((Number(result[0]! & 0xffffffffn) | 0) !== 0) {
      syncFilesystemOf(reportFd, path);
      throw new SystemError(`syncfs ${path}: input/output error`, "EIO");
    }
  } finally {
    if (threadFd !== undefined) closeSync(threadFd);
    closeSync(reportFd);
  }
}
