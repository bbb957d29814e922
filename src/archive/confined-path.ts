/**
 * The one resolver of paths inside a tree root (DESIGN.md invariant 4: a tar never writes
 * outside its layer). Paths are walked component by component with the root as "/": ".."
 * stops at the root, absolute symlink targets restart at the root, and symlinks are resolved
 * inside the root, never on the host. Apply, copy and layout reproduction all resolve
 * through here; what differs between them is a policy option, not another walker.
 */
import { lstatSync, mkdirSync, readlinkSync } from "node:fs";

/** Symlinks followed while resolving one path before giving up, as Linux does (MAXSYMLINKS, ELOOP). */
export const MAX_SYMLINKS = 40;
const S_ISGID = 0o2000;

/** Why a path did not resolve; `at` is the relative path (resolved so far) where it stopped. */
export interface ConfinedFailure {
  problem: "missing" | "dangling" | "not-directory" | "too-many-links";
  at: string;
}

/**
 * Relative paths ("" = root) known to be real directories (no symlink in them), mapped to
 * whether the directory has the set-group-ID bit. A caller that changes the tree keeps it true.
 */
export type DirectoryCache = Map<string, boolean>;

export interface ConfinedPathOptions {
  /** Makes missing directories of the path itself (mode 0755); a missing symlink target still fails as "dangling". */
  createMissing?: boolean;
  /**
   * Resolves a symlink in the last component too (default). When false, the last component is
   * appended as it is: the caller acts on the name itself (replacing it, opening it with O_NOFOLLOW).
   */
  followLast?: boolean;
  /**
   * Where a component is missing or not a directory, returns what was resolved followed by the
   * rest of the path (cleaned) instead of failing: the answer to "where would this path be".
   */
  keepUnresolvedRest?: boolean;
  /** Directories already known, consulted and filled in; without it every component is looked up. */
  cache?: DirectoryCache;
}

function joinRel(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

/** Appends path components lexically ("." skipped, ".." clamped at the root). */
function appendClean(into: string[], names: string[]): void {
  for (const name of names) {
    if (name === "" || name === ".") continue;
    if (name === "..") into.pop();
    else into.push(name);
  }
}

/**
 * Resolves path components inside root and returns the resolved relative path ("" = root), in
 * which every component but (with followLast false) the last is a real directory, or a failure.
 */
export function resolveConfined(root: string, parts: readonly string[], options: ConfinedPathOptions = {}): string | ConfinedFailure {
  const cache = options.cache;
  const followLast = options.followLast ?? true;
  let names = parts;
  let last: string | undefined;
  if (!followLast) {
    names = parts.slice(0, -1);
    last = parts[parts.length - 1];
  }
  const direct = names.join("/");
  if (cache?.has(direct) && !names.some((n) => n === "" || n === "." || n === "..")) return last === undefined ? direct : joinRel(direct, last);
  const resolved: string[] = [];
  /** Components still to walk, the next one last; fromLink marks those that came from a symlink target. */
  const pending: Array<{ name: string; fromLink: boolean }> = [];
  for (let i = names.length - 1; i >= 0; i--) pending.push({ name: names[i]!, fromLink: false });
  const rest = (): string[] => pending.map((p) => p.name).reverse();
  const finish = (): string => {
    if (last !== undefined) appendClean(resolved, [last]);
    return resolved.join("/");
  };
  let linksFollowed = 0;
  while (pending.length > 0) {
    const { name, fromLink } = pending.pop()!;
    if (name === "" || name === ".") continue;
    if (name === "..") {
      resolved.pop();
      continue;
    }
    const at = resolved.join("/");
    const candidate = joinRel(at, name);
    if (cache?.has(candidate)) {
      resolved.push(name);
      continue;
    }
    let stats;
    try {
      stats = lstatSync(`${root}/${candidate}`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw error;
      if (options.keepUnresolvedRest) {
        appendClean(resolved, [name, ...rest()]);
        return finish();
      }
      if (!options.createMissing) return { problem: "missing", at: candidate };
      if (fromLink) return { problem: "dangling", at: candidate };
      mkdirSync(`${root}/${candidate}`, 0o755);
      cache?.set(candidate, cache.get(at) ?? false);
      resolved.push(name);
      continue;
    }
    if (stats.isDirectory()) {
      cache?.set(candidate, (stats.mode & S_ISGID) !== 0);
      resolved.push(name);
    } else if (stats.isSymbolicLink()) {
      if (++linksFollowed > MAX_SYMLINKS) return { problem: "too-many-links", at: candidate };
      const target = readlinkSync(`${root}/${candidate}`);
      if (target.startsWith("/")) resolved.length = 0;
      const targetParts = target.split("/");
      for (let i = targetParts.length - 1; i >= 0; i--) pending.push({ name: targetParts[i]!, fromLink: true });
    } else if (options.keepUnresolvedRest) {
      appendClean(resolved, [name, ...rest()]);
      return finish();
    } else {
      return { problem: "not-directory", at: candidate };
    }
  }
  return finish();
}

/** True when resolveConfined failed. */
export function isConfinedFailure(result: string | ConfinedFailure): result is ConfinedFailure {
  return typeof result !== "string";
}
