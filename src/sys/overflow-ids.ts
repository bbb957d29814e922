/** The kernel's overflow user and group IDs: what an ID that a user namespace cannot map shows as. */
import { readFileSync } from "node:fs";
import type { OverflowIds } from "../idmap.ts";

/** 65534, unless /proc/sys/kernel/overflowuid or overflowgid says otherwise (as containers-storage reads them). */
const DEFAULT_OVERFLOW_ID = 65534;

function readId(path: string): number {
  try {
    const value = Number(readFileSync(path, "utf8").trim());
    return Number.isSafeInteger(value) && value >= 0 ? value : DEFAULT_OVERFLOW_ID;
  } catch {
    return DEFAULT_OVERFLOW_ID;
  }
}

let cached: OverflowIds | undefined;

/** The overflow IDs, read once per process. */
export function overflowIds(): OverflowIds {
  cached ??= { uid: readId("/proc/sys/kernel/overflowuid"), gid: readId("/proc/sys/kernel/overflowgid") };
  return cached;
}
