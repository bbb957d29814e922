/**
 * Whether a path exists, answered without node:fs: loading node:fs costs a command ~2.6M
 * instructions (docs/benchmarks.md), more than the whole of a vfs mount's own work. Bun.file's
 * `lastModified` stats the path synchronously (following symlinks, as existsSync does) and
 * gives Bun's "unknown" time, 2^52 - 1, when the stat fails; test/sys/path-exists.test.ts pins
 * that behaviour, so a Bun that changes it fails there rather than here.
 */
const STAT_FAILED = 2 ** 52 - 1;

/** True when path names an existing file, directory or other entry (after following symlinks). */
export function pathExists(path: string): boolean {
  return Bun.file(path).lastModified !== STAT_FAILED;
}
