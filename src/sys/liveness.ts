/**
 * Telling a crashed writer from a running one. Rows being created or deleted carry the token of
 * the process doing it; recovery only cleans up after processes that no longer exist, so a
 * second process never removes a layer that a first one is still importing.
 */
import { nodeFs } from "./node-fs.ts";

/** A small file's text; node:fs is loaded by the first caller (a writer or recovery), not by every importer. */
function readText(path: string): string {
  return nodeFs().readFileSync(path, "utf8");
}

let ownToken: string | undefined;

function bootId(): string {
  try {
    return readText("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return "unknown-boot";
  }
}

/** The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined if it is gone. */
function startTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readText(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19];
}

/** This process's token: boot ID, PID and start time, unique across PID reuse and reboots. */
export function processToken(): string {
  ownToken ??= `${bootId()}/${process.pid}/${startTime(process.pid) ?? "0"}`;
  return ownToken;
}

/** True when the process that wrote token is still running. */
export function isTokenAlive(token: string): boolean {
  const [boot, pidText, start] = token.split("/");
  if (boot !== bootId()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return startTime(pid) === start;
}
