/** Whether this process runs in a user namespace (rootless podman, `unshare --user`), as containers-storage decides it. */
import { readFileSync } from "node:fs";

let cached: boolean | undefined;

/**
 * True unless /proc/self/uid_map is the initial namespace's identity map of every ID
 * ("0 0 4294967295"); read once per process. Without /proc, false.
 */
export function inUserNamespace(): boolean {
  if (cached === undefined) {
    try {
      const map = readFileSync("/proc/self/uid_map", "utf8").trim().split(/\s+/);
      cached = map.join(" ") !== "0 0 4294967295";
    } catch {
      cached = false;
    }
  }
  return cached;
}
