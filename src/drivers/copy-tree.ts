/**
 * The vfs layer copy: a faithful copy of a directory tree (types, modes, owners, nanosecond
 * times, xattrs, hard links, devices), optionally shifting owners between ID maps.
 * fs.cpSync cannot do this (see docs/decisions/0003-vfs-copy.md).
 */
import * as fs from "node:fs";
import { InvalidArgumentError, StorageError, SystemError, errnoReason } from "../errors.ts";
import { NO_ID_MAPS, sameMaps, shiftOwner, toContainer, type IdMaps } from "../idmap.ts";
import type { CopyOmissions } from "../archive/layer-removals.ts";
import { overflowIds } from "../sys/overflow-ids.ts";
import { nowNs } from "../util/time.ts";
import { devMajorMinor, getXattr, listXattrs, mknod, setTimes, setXattr, type CPath } from "../sys/libc.ts";

/** A path that is a string, or raw bytes when a name in it is not valid UTF-8. */
export type TreePath = string | Buffer;

/**
 * How file contents are copied: fs.copyFileSync one file at a time, or up to `inFlight` asynchronous
 * copies (fs.promises.copyFile unless `copy` is given; `copy` must leave the file with src's mode).
 */
export type DataCopyMode =
  | { kind: "sync" }
  | { kind: "pool"; inFlight: number; copy?: (src: TreePath, dst: TreePath) => Promise<void> };

/** The mode copyTree uses; chosen by measurement (docs/decisions/0003-vfs-copy.md). */
export const DEFAULT_DATA_COPY: DataCopyMode = { kind: "sync" };

export interface CopyTreeOptions {
  /** ID maps of the source tree's owners (host IDs are turned into container IDs through these). */
  from?: IdMaps;
  /** ID maps of the destination (container IDs are turned into host IDs through these). */
  to?: IdMaps;
  /**
   * Paths (relative to src) not to copy, and directories whose contents not to copy: what the
   * layer about to be applied removes (archive/layer-removals.ts). A directory that loses an
   * entry this way gets the copy's time as its modification time, as the removal would give it.
   */
  omit?: CopyOmissions;
}

const S_IFMT = 0o170000n;
const S_IFREG = 0o100000n;
const S_IFDIR = 0o040000n;
const S_IFLNK = 0o120000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFIFO = 0o010000n;
const SETID_BITS = 0o6000;
const SLASH = Buffer.from("/");

/**
 * Copies the tree at src into dst (dst may exist and be empty), keeping types, modes (incl. setuid/sgid/sticky),
 * owners, nanosecond atime/mtime, xattrs (all namespaces readable: user., trusted., security.), hard links (inode map),
 * symlinks (not followed), char/block devices and fifos; sockets are skipped. Owners, the top directory's included, are
 * shifted from the source's ID maps to the destination's when they differ, as containers-storage 1.43 shifts them
 * (src/idmap.ts shiftOwner: unmappable IDs become the overflow ID; an owner the source's maps lack fails the copy).
 */
export async function copyTree(src: string, dst: string, options: CopyTreeOptions = {}): Promise<void> {
  await copyTreeWith(src, dst, options, DEFAULT_DATA_COPY);
}

/** copyTree with an explicit data copy mode (for benchmarks and tests). */
export async function copyTreeWith(src: string, dst: string, options: CopyTreeOptions, mode: DataCopyMode): Promise<void> {
  try {
    const copier = new TreeCopier(options.from ?? NO_ID_MAPS, options.to ?? NO_ID_MAPS, mode, options.omit);
    await copier.copyRoot(src, dst);
  } catch (error) {
    if (error instanceof StorageError) throw error;
    // Name the file that failed: "copying A/f to B/f: no space left on device", or the call and its path.
    const { code, path, dest, syscall } = error as NodeJS.ErrnoException & { dest?: string };
    if (path !== undefined && dest !== undefined) throw new SystemError(`copying ${path} to ${dest}: ${errnoReason(error)}`, code);
    const call = path !== undefined && syscall !== undefined ? `${syscall} ${path}: ` : "";
    throw new SystemError(`copying ${src} to ${dst}: ${call}${errnoReason(error)}`, code);
  }
}

/** Waits for every promise (so nothing still writes when the copy has failed), then throws the first failure. */
async function settleAll(pending: Promise<unknown>[]): Promise<void> {
  const outcomes = await Promise.allSettled(pending);
  for (const outcome of outcomes) if (outcome.status === "rejected") throw outcome.reason;
}

function join(parent: TreePath, name: TreePath): TreePath {
  if (typeof parent === "string" && typeof name === "string") return `${parent}/${name}`;
  return Buffer.concat([toBytes(parent), SLASH, toBytes(name)]);
}

function toBytes(path: TreePath): Buffer {
  return typeof path === "string" ? Buffer.from(path) : path;
}

/** Directory entries; names that are not valid UTF-8 come back as raw bytes so they survive the copy. */
function listDirectory(dir: TreePath): TreePath[] {
  if (typeof dir !== "string") return fs.readdirSync(dir, { encoding: "buffer" });
  const names = fs.readdirSync(dir);
  if (!names.some((name) => name.includes("\uFFFD"))) return names;
  return fs.readdirSync(dir, { encoding: "buffer" }).map((raw) => {
    const text = raw.toString("utf8");
    return Buffer.byteLength(text) === raw.length && Buffer.from(text).equals(raw) ? text : raw;
  });
}

class TreeCopier {
  private readonly shift: boolean;
  private readonly overflow = overflowIds();
  private readonly processUid = process.geteuid?.() ?? 0;
  private readonly processGid = process.getegid?.() ?? 0;
  /** "dev:ino" of multiply-linked sources -> the first destination path (or its pending copy). */
  private readonly firstLinks = new Map<string, TreePath | Promise<TreePath>>();
  private inFlight = 0;
  /** Set on the first failure in pool mode, so no new work starts while in-flight copies finish. */
  private failed = false;
  private readonly slotWaiters: Array<() => void> = [];
  /** Relative directories at or above an omitted path, where entries are checked against the omissions. */
  private readonly aboveOmissions = new Set<string>();

  constructor(
    private readonly from: IdMaps,
    private readonly to: IdMaps,
    private readonly mode: DataCopyMode,
    private readonly omit: CopyOmissions | undefined,
  ) {
    this.shift = !sameMaps(from, to);
    for (const path of [...(omit?.paths ?? []), ...(omit?.contentsOf ?? [])]) {
      for (let at = path; at !== ""; at = at.slice(0, Math.max(0, at.lastIndexOf("/")))) this.aboveOmissions.add(at);
      this.aboveOmissions.add("");
    }
  }

  /** The destination root, for naming entries relative to it. */
  private dstRoot = "";

  /** An entry's path below the destination root ("." for the root). */
  private relative(dst: TreePath): string {
    const text = typeof dst === "string" ? dst : dst.toString();
    return text === this.dstRoot ? "." : text.slice(this.dstRoot.length + 1);
  }

  async copyRoot(src: string, dst: string): Promise<void> {
    this.dstRoot = dst;
    const rootStat = fs.lstatSync(src, { bigint: true });
    if ((rootStat.mode & S_IFMT) !== S_IFDIR) throw new SystemError(`copying ${src} to ${dst}: source is not a directory`, "ENOTDIR");
    try {
      fs.mkdirSync(dst, 0o700);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    // No setgid on the root while filling it, so new entries are owned by this process's group.
    fs.chmodSync(dst, 0o700);
    const omitted = await this.copyDirectoryContents(src, dst, this.aboveOmissions.has("") ? "" : undefined);
    this.finishDirectory(src, dst, rootStat, omitted);
  }

  private async copyDirectory(src: TreePath, dst: TreePath, st: fs.BigIntStats, rel: string | undefined): Promise<void> {
    const omitted = await this.copyDirectoryContents(src, dst, rel);
    this.finishDirectory(src, dst, st, omitted);
  }

  /** Copies a directory's entries; rel is its path below the root where omissions may apply. True when an entry was omitted. */
  private async copyDirectoryContents(srcDir: TreePath, dstDir: TreePath, rel: string | undefined): Promise<boolean> {
    const pending: Promise<void>[] = [];
    let omitted: boolean;
    try {
      omitted = this.copyEntries(srcDir, dstDir, pending, rel);
    } catch (error) {
      this.failed = true;
      await Promise.allSettled(pending);
      throw error;
    }
    if (pending.length > 0) await settleAll(pending);
    return omitted;
  }

  /** The path below the root of an entry of directory rel when omissions apply below it, null when it is left out. */
  private omission(rel: string, name: TreePath): string | null | undefined {
    // A name that is not valid UTF-8 is in no layer's whiteouts: copied.
    if (typeof name !== "string") return undefined;
    if (this.omit!.contentsOf.has(rel)) return null;
    const path = rel === "" ? name : `${rel}/${name}`;
    if (this.omit!.paths.has(path)) return null;
    return this.aboveOmissions.has(path) ? path : undefined;
  }

  /** Copies the entries of one directory; subdirectories and pooled file copies are added to `pending`. True when one was omitted. */
  private copyEntries(srcDir: TreePath, dstDir: TreePath, pending: Promise<void>[], rel: string | undefined): boolean {
    let omitted = false;
    for (const name of listDirectory(srcDir)) {
      if (this.failed) break;
      const childRel = rel === undefined ? undefined : this.omission(rel, name);
      if (childRel === null) {
        omitted = true;
        continue;
      }
      const src = join(srcDir, name);
      const dst = join(dstDir, name);
      const st = fs.lstatSync(src, { bigint: true });
      const type = st.mode & S_IFMT;
      if (type === S_IFDIR) {
        fs.mkdirSync(dst, 0o700);
        pending.push(this.copyDirectory(src, dst, st, childRel));
        continue;
      }
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = this.firstLinks.get(key);
        if (first !== undefined) {
          if (first instanceof Promise) pending.push(first.then((target) => fs.linkSync(target, dst)));
          else fs.linkSync(first, dst);
          continue;
        }
        if (type === S_IFREG && this.mode.kind === "pool") {
          const copied = this.copyFileInPool(src, dst, st).then(() => dst);
          this.firstLinks.set(key, copied);
          pending.push(copied.then(() => undefined));
          continue;
        }
        this.firstLinks.set(key, dst);
      }
      if (type === S_IFREG) {
        if (this.mode.kind === "pool") pending.push(this.copyFileInPool(src, dst, st));
        else {
          fs.copyFileSync(src, dst);
          this.finishFile(src, dst, st);
        }
      } else if (type === S_IFLNK) {
        fs.symlinkSync(fs.readlinkSync(src, { encoding: "buffer" }), dst);
        this.finishEntry(src, dst, st, false);
      } else if (type === S_IFCHR || type === S_IFBLK) {
        const [major, minor] = devMajorMinor(st.rdev);
        mknod(dst, type === S_IFCHR ? "char" : "block", Number(st.mode & 0o7777n), major, minor);
        this.finishEntry(src, dst, st, true);
      } else if (type === S_IFIFO) {
        mknod(dst, "fifo", Number(st.mode & 0o7777n), 0, 0);
        this.finishEntry(src, dst, st, true);
      }
      // Sockets belong to a running process, not to a layer: skipped.
    }
    return omitted;
  }

  private async copyFileInPool(src: TreePath, dst: TreePath, st: fs.BigIntStats): Promise<void> {
    const mode = this.mode as Extract<DataCopyMode, { kind: "pool" }>;
    if (this.inFlight >= mode.inFlight) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    this.inFlight++;
    try {
      if (this.failed) return;
      await (mode.copy ? mode.copy(src, dst) : fs.promises.copyFile(src, dst));
      this.finishFile(src, dst, st);
    } catch (error) {
      this.failed = true;
      throw error;
    } finally {
      this.inFlight--;
      this.slotWaiters.shift()?.();
    }
  }

  /** A copied regular file already has its mode (copyFile sets it); owner, xattrs and times remain. */
  private finishFile(src: TreePath, dst: TreePath, st: fs.BigIntStats): void {
    const mode = Number(st.mode & 0o7777n);
    const chowned = this.applyOwner(dst, st, false);
    // chown clears setuid/setgid, so they are put back afterwards.
    if (chowned && (mode & SETID_BITS) !== 0) fs.chmodSync(dst, mode);
    this.copyXattrs(src, dst);
    setTimes(dst as CPath, st.atimeNs, st.mtimeNs);
  }

  /** Symlinks (chmod does not apply), devices and FIFOs (mknod's mode went through the umask). */
  private finishEntry(src: TreePath, dst: TreePath, st: fs.BigIntStats, setMode: boolean): void {
    this.applyOwner(dst, st, false);
    if (setMode) fs.chmodSync(dst, Number(st.mode & 0o7777n));
    this.copyXattrs(src, dst);
    setTimes(dst as CPath, st.atimeNs, st.mtimeNs);
  }

  /** After its contents: owner, mode (the directory was made 0700), xattrs, then times (children changed mtime; an omission: now). */
  private finishDirectory(src: TreePath, dst: TreePath, st: fs.BigIntStats, omitted: boolean): void {
    this.applyOwner(dst, st, true);
    fs.chmodSync(dst, Number(st.mode & 0o7777n));
    this.copyXattrs(src, dst);
    setTimes(dst as CPath, st.atimeNs, omitted ? nowNs() : st.mtimeNs);
  }

  /** Sets the (shifted) owner unless a new entry already has it; true when chown was called. */
  private applyOwner(dst: TreePath, st: fs.BigIntStats, always: boolean): boolean {
    let uid = Number(st.uid);
    let gid = Number(st.gid);
    if (this.shift) {
      const shifted = shiftOwner(this.from, this.to, uid, gid, this.overflow);
      if (!shifted) {
        const unmapped = toContainer(this.from.uidMap, uid) < 0 ? uid : gid;
        throw new InvalidArgumentError(`mapping host ID pair ${uid}:${gid} for "${this.relative(dst)}" to container: host ID ${unmapped} cannot be mapped to a container ID`);
      }
      ({ uid, gid } = shifted);
    }
    if (!always && uid === this.processUid && gid === this.processGid) return false;
    fs.lchownSync(dst, uid, gid);
    return true;
  }

  private copyXattrs(src: TreePath, dst: TreePath): void {
    const names = listXattrs(src as CPath);
    for (const name of names) {
      const value = getXattr(src as CPath, name);
      if (value !== null) setXattr(dst as CPath, name, value);
    }
  }
}
