/**
 * Test-only crash points. When OCI_STORAGE_CRASH_AT names a point, the process kills itself
 * with SIGKILL when it reaches that point, so tests can stop a command at an exact moment.
 */
const crashAt = process.env.OCI_STORAGE_CRASH_AT;

/** Dies with SIGKILL here when OCI_STORAGE_CRASH_AT equals name; does nothing otherwise. */
export function crashPoint(name: string): void {
  if (crashAt === name) process.kill(process.pid, "SIGKILL");
}
