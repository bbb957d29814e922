/**
 * Test-only crash and stop points. When OCI_STORAGE_CRASH_AT names a point, the process kills
 * itself with SIGKILL when it reaches that point; when OCI_STORAGE_STOP_AT names it, the process
 * stops itself with SIGSTOP there (the test resumes it with SIGCONT). `name#n` stands for the
 * n-th time the point is reached. Tests can so catch a command at an exact moment instead of
 * polling for it.
 */
const crashAt = process.env.OCI_STORAGE_CRASH_AT;
const stopAt = process.env.OCI_STORAGE_STOP_AT;
/** Times each point was reached, for a variable that names a later time ("before-complete#2"); made only in tests. */
let reached: Map<string, number> | undefined;

/** True when `wanted` is this point ("name"), or this point reached for the n-th time now ("name#n"). */
function isNow(wanted: string | undefined, name: string, times: number): boolean {
  return wanted === name || wanted === `${name}#${times}`;
}

/** Dies with SIGKILL (OCI_STORAGE_CRASH_AT) or stops with SIGSTOP (OCI_STORAGE_STOP_AT) here when the variable names this point (and time). */
export function crashPoint(name: string): void {
  if (crashAt === undefined && stopAt === undefined) return;
  reached ??= new Map();
  const times = (reached.get(name) ?? 0) + 1;
  reached.set(name, times);
  if (isNow(crashAt, name, times)) process.kill(process.pid, "SIGKILL");
  if (isNow(stopAt, name, times)) process.kill(process.pid, "SIGSTOP");
}
