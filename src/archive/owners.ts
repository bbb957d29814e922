/** Giving extracted entries their owners, and what happens when the kernel refuses one. */
import { SystemError, errnoReason } from "../errors.ts";
import type { ApplyOptions } from "./types.ts";
import { shownPath } from "./paths.ts";

const REFUSAL_HINT = "not mapped in this user namespace? the driver option ignore_chown_errors=true leaves such owners as created";

/** Whether a chown failed because the kernel refuses that owner (EPERM; EINVAL: the ID is not mapped in this user namespace). */
export function isOwnerRefused(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EPERM" || code === "EINVAL";
}

/**
 * Runs chown for an entry. An owner the kernel refuses (EPERM; EINVAL: the ID is not mapped in
 * this user namespace) is left as created when options.ignoreChownErrors asks, as 1.43 does;
 * otherwise the failure names the entry, the owner and that option.
 */
export function setOwner(entryPath: string, uid: number, gid: number, options: ApplyOptions, chown: () => void): void {
  try {
    chown();
  } catch (error) {
    if (!isOwnerRefused(error)) throw error;
    if (options.ignoreChownErrors) return;
    throw new SystemError(`extracting ${shownPath(entryPath)}: setting owner ${uid}:${gid}: ${errnoReason(error)} (${REFUSAL_HINT})`, (error as NodeJS.ErrnoException).code);
  }
}
