/**
 * What a write to a reader that went away (`oci-storage diff | head`) should end in. Go programs
 * such as containers-storage die of SIGPIPE there, silently (status 141 in a shell), unless
 * SIGPIPE was ignored when they started, in which case the write fails and they say so. Bun
 * ignores SIGPIPE itself before our code runs, so the disposition we started with is gone; the
 * process that started us still shows it (a shell's `trap '' PIPE` is inherited by what it runs).
 */

/** SIGPIPE's bit in the SigIgn mask of /proc/PID/status (signal 13). */
const SIGPIPE_BIT = 1n << 12n;

/** Whether the process that started this one ignores SIGPIPE; false when that cannot be read. */
export async function parentIgnoresSigpipe(): Promise<boolean> {
  try {
    const status = await Bun.file(`/proc/${process.ppid}/status`).text();
    const mask = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & SIGPIPE_BIT) !== 0n;
  } catch {
    return false;
  }
}

/** The exit status of a process killed by SIGPIPE, as a shell reports it. */
export const KILLED_BY_SIGPIPE = 141;
