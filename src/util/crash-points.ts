/**
 * Test-only crash and stop points. When OCI_STORAGE_CRASH_AT names a point, the process kills
 * itself with SIGKILL when it reaches that point; when OCI_STORAGE_STOP_AT names it, the process
 * stops itself with SIGSTOP there (the test resumes it with SIGCONT). Tests can so catch a
 * command at an exact moment instead of polling for it.
 */
const crashAt = process.env.OCI_STORAGE_CRASH_AT;
const stopAt = process.env.OCI_STORAGE_STOP_AT;

/** Dies with SIGKILL (OCI_STORAGE_CRASH_AT) or stops with SIGSTOP (OCI_STORAGE_STOP_AT) here when the variable equals name. */
export function crashPoint(name: string): void {
  if (crashAt === name) process.kill(process.pid, "SIGKILL");
  if (stopAt === name) process.kill(process.pid, "SIGSTOP");
}
