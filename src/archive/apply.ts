/**
 * Applies a layer tar on top of a directory tree (docs/cli-contract.md §4.2, §4.3).
 *
 * Every path is confined to the layer root (DESIGN.md invariant 4): entry names are cleaned
 * lexically and clamped at the root, and symlinks met while walking to an entry's parent are
 * resolved inside the root (chroot semantics), never on the host. The final component of an
 * entry is never followed: whatever is there is replaced.
 */
import { closeSync, constants, copyFileSync, fchmodSync, fchownSync, lchownSync, chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync } from "node:fs";
import { openSync, readdirSync, renameSync, rm, rmSync, symlinkSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { ArchiveError, StorageError, SystemError, errnoReason } from "../errors.ts";
import { toHost } from "../idmap.ts";
import { openMeasuredInput } from "./measured-input.ts";
import { LayoutRecorder } from "./layout.ts";
import { readTar } from "./tar-reader.ts";
import { type ApplyOptions, type ApplyResult, type ByteSource, type TarEntry } from "./types.ts";
import { mknod, setTimes, setXattr } from "../sys/libc.ts";
import { inUserNamespace } from "../sys/user-namespace.ts";
import { setOwner } from "./owners.ts";
import { cleanComponents, shownPath } from "./paths.ts";
import { type DirectoryCache, isConfinedFailure, resolveConfined } from "./confined-path.ts";
import { HARDLINK_STORE, WHITEOUT_PREFIX, whiteoutMeaning } from "./whiteouts.ts";

/** Prefix of the directory inside the root where removed paths wait for their deletion (never a tar name: .wh..wh. entries are skipped). */
const TRASH_PREFIX = ".wh..wh.trash";
const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";
const CREATE_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const S_ISGID = 0o2000;

/**
 * Applies a (possibly compressed) layer tar on top of the tree at root and returns what
 * docs/cli-contract.md §4.3 records. What it writes is not flushed: the caller makes it durable
 * (one syncfs), at once or while it goes on (store/layer-lifecycle.ts).
 */
export async function applyLayerTar(root: string, source: ByteSource, options: ApplyOptions): Promise<ApplyResult> {
  const input = await openMeasuredInput(source);
  const recorder = options.onLayoutChunk ? new LayoutRecorder(options.onLayoutChunk) : undefined;
  const extractor = new LayerExtractor(resolve(root), options);
  let measured: Awaited<ReturnType<typeof input.finish>>;
  try {
    for await (const { entry, body } of readTar(input.tar, recorder ? { recorder } : {})) {
      await extractor.extract(entry, body);
    }
    // Trailing zero blocks and record padding count in diff-size and the digests (readTar
    // reads them too and finishes the recorder; finishing here also covers a reader that stops early).
    measured = await input.finish();
    await extractor.finish();
  } finally {
    await extractor.removeTemporaryDirs();
  }
  return {
    compressedDigest: measured.compressed.digest,
    compressedSize: measured.compressed.size,
    diffDigest: measured.uncompressed.digest,
    diffSize: measured.uncompressed.size,
    compression: input.compression,
    uidset: [...extractor.uids].sort((a, b) => a - b),
    gidset: [...extractor.gids].sort((a, b) => a - b),
  };
}

function joinRel(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

function parentRel(rel: string): string {
  const slash = rel.lastIndexOf("/");
  return slash < 0 ? "" : rel.slice(0, slash);
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | SystemError)?.code;
}

/** Writes the entries of one layer tar under root; keeps the per-stream state the rules need. */
class LayerExtractor {
  readonly uids = new Set<number>();
  readonly gids = new Set<number>();
  /** Relative paths (already resolved, "" = root) known to be real directories, mapped to "has setgid". */
  private readonly knownDirs: DirectoryCache = new Map();
  /** Directory times, set at the end so that writing children does not disturb them. */
  private readonly dirTimes = new Map<string, bigint>();
  /** Paths written by this stream and their ancestors, for opaque directories ("remove" style). */
  private readonly written = new Set<string>();
  /** Files stored under the top-level .wh..wh.plnk/, by their name there -> where they were put and their header. */
  private readonly hardLinkStore = new Map<string, { rel: string; entry: TarEntry }>();
  private hardLinkStoreDir: string | undefined;
  /** The directory (relative, made on first use) where removed paths are deleted in the background. */
  private trashDir: string | undefined;
  private trashCount = 0;
  /** Background deletions under trashDir; each settles without throwing and records the first failure. */
  private readonly removals: Promise<void>[] = [];
  private removalFailure: { error: unknown; entryPath: string } | undefined;
  private rootTimesBeforeTrash: [bigint, bigint] | undefined;
  /** Whether an entry added or removed a name directly in the root. */
  private topLevelChanged = false;
  private readonly umask = process.umask();
  private readonly euid = process.geteuid?.() ?? 0;
  private readonly egid = process.getegid?.() ?? 0;

  constructor(
    private readonly root: string,
    private readonly options: ApplyOptions,
  ) {
    const rootStats = lstatSync(root);
    if (!rootStats.isDirectory()) throw new ArchiveError(`layer root ${root} is not a directory`);
    this.knownDirs.set("", (rootStats.mode & S_ISGID) !== 0);
  }

  /** Applies one entry; the body must be consumed here or is skipped by the reader. */
  async extract(entry: TarEntry, body: ByteSource): Promise<void> {
    const parts = cleanComponents(entry.path);
    const name = parts[parts.length - 1] ?? "";
    if (!name.startsWith(WHITEOUT_PREFIX)) {
      this.uids.add(entry.uid);
      this.gids.add(entry.gid);
    }
    try {
      // As 1.43 does before it looks at an entry at all, the missing parents of every entry are made (0755), even of
      // whiteouts and skipped AUFS metadata: a file under .wh..wh.plnk/ leaves that directory behind, empty.
      this.makeMissingParents(parts);
      const whiteout = whiteoutMeaning(parts);
      if (whiteout === "metadata") {
        if (parts[0] === HARDLINK_STORE && parts.length > 1 && entry.type === "file") {
          await this.storeHardLinkTarget(parts.slice(1).join("/"), entry, body);
        }
        return;
      }
      if (whiteout !== undefined) {
        this.applyWhiteout(parts.slice(0, -1), whiteout, entry);
        return;
      }
      if (parts.length === 0) {
        this.applyRootEntry(entry);
        return;
      }
      const dir = this.resolveDir(parts.slice(0, -1), true, entry.path)!;
      await this.writeEntry(joinRel(dir, name), entry, body);
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw new SystemError(`extracting ${shownPath(entry.path)}: ${errnoReason(error)}`, errorCode(error));
    }
  }

  /** Waits for the removals, then sets the deferred directory times. */
  async finish(): Promise<void> {
    await this.removeTemporaryDirs();
    if (this.removalFailure) {
      const { error, entryPath } = this.removalFailure;
      throw new SystemError(`extracting ${shownPath(entryPath)}: removing what it replaces: ${errnoReason(error)}`, errorCode(error));
    }
    for (const [rel, mtimeNs] of this.dirTimes) {
      try {
        setTimes(this.host(rel), mtimeNs, mtimeNs);
      } catch (error) {
        if (errorCode(error) !== "ENOENT") throw error;
      }
    }
  }

  /**
   * Removes the temporary home of .wh..wh.plnk files (links made to them stay) and, once every
   * background deletion has settled, the trash directory.
   */
  async removeTemporaryDirs(): Promise<void> {
    if (this.hardLinkStoreDir !== undefined) {
      rmSync(this.host(this.hardLinkStoreDir), { recursive: true, force: true });
      this.forgetBelow(this.hardLinkStoreDir);
      this.hardLinkStoreDir = undefined;
    }
    if (this.trashDir === undefined) return;
    await Promise.all(this.removals);
    this.removals.length = 0;
    try {
      rmSync(this.host(this.trashDir), { recursive: true, force: true });
    } catch (error) {
      // What failed in the background fails here again; finish() reports the first failure.
      if (this.removalFailure === undefined) throw error;
    }
    this.trashDir = undefined;
    // The trash came and went in the root: keep the root's times unless an entry changed the top level.
    if (this.rootTimesBeforeTrash && !this.topLevelChanged) setTimes(this.root, ...this.rootTimesBeforeTrash);
  }

  private host(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }

  /**
   * Resolves an entry's directory components inside the root (see confined-path.ts). Missing
   * components of the entry's own path are created (0755) when create is set; a symlink whose
   * target is missing fails. Returns the resolved relative path, or null when create is off and
   * the directory does not exist.
   */
  private resolveDir(parts: string[], create: boolean, entryPath: string): string | null {
    const result = resolveConfined(this.root, parts, { createMissing: create, cache: this.knownDirs });
    if (!isConfinedFailure(result)) return result;
    switch (result.problem) {
      case "too-many-links":
        throw new ArchiveError(`${JSON.stringify(entryPath)}: too many levels of symbolic links`);
      case "dangling":
        throw new ArchiveError(`open /${cleanComponents(entryPath).join("/")}: no such file or directory`);
      case "not-directory":
        if (create) throw new ArchiveError(`${JSON.stringify(entryPath)}: /${result.at} is not a directory`);
        return null;
      case "missing":
        return null;
    }
  }

  /** Makes the missing directories above an entry (0755); a parent that exists as something else is left alone, as 1.43 leaves it. */
  private makeMissingParents(parts: string[]): void {
    if (parts.length < 2) return;
    resolveConfined(this.root, parts.slice(0, -1), { createMissing: true, cache: this.knownDirs });
  }

  private async writeEntry(rel: string, entry: TarEntry, body: ByteSource): Promise<void> {
    switch (entry.type) {
      case "file":
        await this.writeFile(rel, entry, body);
        break;
      case "dir":
        this.writeDir(rel, entry);
        break;
      case "symlink":
        this.replaceWith(rel, entry.path, () => symlinkSync(entry.linkTarget, this.host(rel)));
        this.finishNode(rel, entry, true);
        break;
      case "hardlink":
        this.writeHardLink(rel, entry);
        break;
      case "char":
      case "block":
      case "fifo":
        if (this.makeSpecialFile(rel, entry, entry.type)) this.finishNode(rel, entry, true);
        break;
    }
    if (!rel.includes("/")) this.topLevelChanged = true;
    this.markWritten(rel);
  }

  /**
   * Makes a device or FIFO. A device the kernel does not let a user namespace make is left out
   * (false), as 1.43 leaves it out there; the layer's diff still has it.
   */
  private makeSpecialFile(rel: string, entry: TarEntry, type: "char" | "block" | "fifo"): boolean {
    try {
      this.replaceWith(rel, entry.path, () => mknod(this.host(rel), type, entry.mode & 0o777, entry.devMajor, entry.devMinor));
      return true;
    } catch (error) {
      if (type !== "fifo" && errorCode(error) === "EPERM" && inUserNamespace()) return false;
      throw error;
    }
  }

  /** Runs create; when something is in the way, removes it (not following symlinks) and retries once. */
  private replaceWith<T>(rel: string, entryPath: string, create: () => T): T {
    try {
      return create();
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
    }
    this.removePath(rel, entryPath);
    return create();
  }

  private async writeFile(rel: string, entry: TarEntry, body: ByteSource): Promise<void> {
    const path = this.host(rel);
    const [uid, gid] = this.hostOwner(entry);
    const fd = this.replaceWith(rel, entry.path, () => openSync(path, CREATE_FILE_FLAGS, entry.mode & 0o777));
    try {
      for await (const chunk of body) {
        let offset = 0;
        while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset);
      }
      const parentSetgid = this.knownDirs.get(parentRel(rel)) ?? true;
      if (uid !== this.euid || gid !== this.egid || parentSetgid) setOwner(entry.path, uid, gid, this.options, () => fchownSync(fd, uid, gid));
      if (this.needsChmod(entry.mode, parentSetgid)) fchmodSync(fd, entry.mode & 0o7777);
    } finally {
      closeSync(fd);
    }
    this.setXattrs(path, entry);
    setTimes(path, entry.mtimeNs, entry.mtimeNs);
  }

  private writeDir(rel: string, entry: TarEntry): void {
    const path = this.host(rel);
    let created = true;
    try {
      mkdirSync(path, entry.mode & 0o777);
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
      if (lstatSync(path).isDirectory()) created = false;
      else {
        this.removePath(rel, entry.path);
        mkdirSync(path, entry.mode & 0o777);
      }
    }
    this.finishNode(rel, entry, created);
    this.knownDirs.set(rel, (entry.mode & S_ISGID) !== 0);
  }

  /** Owner, mode, xattrs and times of a node made by path (not a regular file). */
  private finishNode(rel: string, entry: TarEntry, created: boolean): void {
    const path = this.host(rel);
    const [uid, gid] = this.hostOwner(entry);
    const parentSetgid = rel === "" ? false : (this.knownDirs.get(parentRel(rel)) ?? true);
    if (!created || uid !== this.euid || gid !== this.egid || parentSetgid) setOwner(entry.path, uid, gid, this.options, () => lchownSync(path, uid, gid));
    if (entry.type !== "symlink" && (!created || this.needsChmod(entry.mode, parentSetgid))) chmodSync(path, entry.mode & 0o7777);
    this.setXattrs(path, entry);
    if (entry.type === "dir") this.dirTimes.set(rel, entry.mtimeNs);
    else setTimes(path, entry.mtimeNs, entry.mtimeNs);
  }

  /** True when the mode given at creation (after umask, inheritance and chown) may differ from the entry's. */
  private needsChmod(mode: number, parentSetgid: boolean): boolean {
    return (mode & 0o7000) !== 0 || (mode & this.umask) !== 0 || parentSetgid;
  }

  private applyRootEntry(entry: TarEntry): void {
    if (entry.type !== "dir") throw new ArchiveError(`invalid tar entry ${JSON.stringify(entry.path)}: a ${entry.type} cannot replace the layer root`);
    // overlay keeps the 0555 of a new layer's diff/ root (docs/cli-contract.md §4.2).
    if (this.options.whiteouts === "overlay") return;
    this.finishNode("", entry, false);
    this.knownDirs.set("", (entry.mode & S_ISGID) !== 0);
  }

  private writeHardLink(rel: string, entry: TarEntry): void {
    const stored = this.storedHardLinkTarget(entry);
    if (stored !== undefined) {
      // As 1.43 does, a link into .wh..wh.plnk becomes a copy of the stored file, with the stored file's header.
      this.replaceWith(rel, entry.path, () => copyFileSync(this.host(stored.rel), this.host(rel), constants.COPYFILE_EXCL));
      this.finishNode(rel, stored.entry, false);
      return;
    }
    const target = this.resolveHardLinkTarget(entry);
    if (target === rel) return;
    try {
      this.replaceWith(rel, entry.path, () => linkSync(this.host(target), this.host(rel)));
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT") throw new ArchiveError(`hard link ${JSON.stringify(entry.path)}: target ${JSON.stringify(entry.linkTarget)} does not exist in the layer`);
      if (code === "EPERM") throw new ArchiveError(`hard link ${JSON.stringify(entry.path)}: target ${JSON.stringify(entry.linkTarget)} is a directory`);
      throw error;
    }
    // As containers-storage does, the link's header sets the owner, mode, xattrs and times of the inode it shares (no mode
    // through a symlink).
    this.finishNode(rel, lstatSync(this.host(rel)).isSymbolicLink() ? { ...entry, type: "symlink" } : entry, false);
  }

  /**
   * The stored .wh..wh.plnk/ file a hard link names (relative, as 1.43 recognises them: "/.wh..wh.plnk/…" is an ordinary
   * path, which is not in the layer), or undefined for an ordinary link.
   */
  private storedHardLinkTarget(entry: TarEntry): { rel: string; entry: TarEntry } | undefined {
    const parts = cleanComponents(entry.linkTarget);
    if (entry.linkTarget.startsWith("/") || parts[0] !== HARDLINK_STORE) return undefined;
    const stored = this.hardLinkStore.get(parts.slice(1).join("/"));
    if (stored === undefined) throw this.missingLinkTarget(entry);
    return stored;
  }

  private missingLinkTarget(entry: TarEntry): ArchiveError {
    return new ArchiveError(`hard link ${JSON.stringify(entry.path)}: target ${JSON.stringify(entry.linkTarget)} does not exist in the layer`);
  }

  /** The link target cleaned and resolved inside the root; the final component is not followed. */
  private resolveHardLinkTarget(entry: TarEntry): string {
    const parts = cleanComponents(entry.linkTarget);
    const missing = () => this.missingLinkTarget(entry);
    if (parts.length === 0) throw missing();
    const dir = this.resolveDir(parts.slice(0, -1), false, entry.linkTarget);
    if (dir === null) throw missing();
    return joinRel(dir, parts[parts.length - 1]!);
  }

  /** Extracts a .wh..wh.plnk/ file into a temporary directory inside the root, as a link target only. */
  private async storeHardLinkTarget(key: string, entry: TarEntry, body: ByteSource): Promise<void> {
    if (this.hardLinkStoreDir === undefined) {
      const made = mkdtempSync(`${this.root}/${HARDLINK_STORE}-apply-`);
      this.hardLinkStoreDir = made.slice(this.root.length + 1);
      this.knownDirs.set(this.hardLinkStoreDir, false);
    }
    const rel = joinRel(this.hardLinkStoreDir, String(this.hardLinkStore.size));
    await this.writeFile(rel, entry, body);
    this.hardLinkStore.set(key, { rel, entry });
  }

  private applyWhiteout(dirParts: string[], whiteout: "opaque" | "ignored" | { hides: string }, entry: TarEntry): void {
    if (whiteout === "opaque") {
      this.applyOpaque(dirParts, entry);
      return;
    }
    if (whiteout === "ignored") return;
    const hidden = whiteout.hides;
    if (this.options.whiteouts === "remove") {
      const dir = this.resolveDir(dirParts, false, entry.path);
      if (dir !== null) this.removePath(joinRel(dir, hidden), entry.path);
      return;
    }
    const rel = joinRel(this.resolveDir(dirParts, true, entry.path)!, hidden);
    this.replaceWith(rel, entry.path, () => mknod(this.host(rel), "char", 0, 0, 0));
    const [uid, gid] = this.hostOwner(entry);
    if (uid !== this.euid || gid !== this.egid || this.knownDirs.get(parentRel(rel)) !== false) setOwner(entry.path, uid, gid, this.options, () => lchownSync(this.host(rel), uid, gid));
    setTimes(this.host(rel), entry.mtimeNs, entry.mtimeNs);
  }

  private applyOpaque(dirParts: string[], entry: TarEntry): void {
    if (this.options.whiteouts === "overlay") {
      const dir = this.resolveDir(dirParts, true, entry.path)!;
      setXattr(this.host(dir), OVERLAY_OPAQUE_XATTR, new TextEncoder().encode("y"));
      return;
    }
    const dir = this.resolveDir(dirParts, false, entry.path);
    if (dir !== null) this.removeUnwritten(dir, entry.path);
  }

  /** Removes everything below dir that this stream has not written (walking into written directories). */
  private removeUnwritten(dir: string, entryPath: string): void {
    for (const child of readdirSync(this.host(dir), { withFileTypes: true })) {
      const rel = joinRel(dir, child.name);
      if (rel === this.trashDir || rel === this.hardLinkStoreDir) continue;
      if (!this.written.has(rel)) this.removePath(rel, entryPath);
      else if (child.isDirectory()) this.removeUnwritten(rel, entryPath);
    }
  }

  /**
   * Removes whatever is at rel (a whole subtree for a directory); a missing path is fine. The path
   * is renamed into the trash directory at once and deleted there by a background thread while
   * extraction goes on: on this kind of disk an unlink waits for the freed blocks' discard.
   */
  private removePath(rel: string, entryPath: string): void {
    if (!rel.includes("/")) this.topLevelChanged = true;
    const trash = this.trashDir ?? this.makeTrashDir();
    const parked = this.host(`${trash}/${this.trashCount++}`);
    try {
      renameSync(this.host(rel), parked);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return;
      throw error;
    }
    if (this.knownDirs.has(rel)) this.forgetBelow(rel);
    // The callback form runs on the thread pool too, without loading node:fs/promises at every start.
    this.removals.push(
      new Promise((settled) =>
        rm(parked, { recursive: true, force: true }, (error) => {
          if (error) this.removalFailure ??= { error, entryPath };
          settled();
        }),
      ),
    );
  }

  private makeTrashDir(): string {
    const rootStats = lstatSync(this.root, { bigint: true });
    this.rootTimesBeforeTrash = [rootStats.atimeNs, rootStats.mtimeNs];
    const made = mkdtempSync(`${this.root}/${TRASH_PREFIX}-apply-`);
    this.trashDir = made.slice(this.root.length + 1);
    return this.trashDir;
  }

  /** Drops cached knowledge about a removed directory and everything below it. */
  private forgetBelow(rel: string): void {
    const prefix = `${rel}/`;
    for (const key of this.knownDirs.keys()) if (key === rel || key.startsWith(prefix)) this.knownDirs.delete(key);
    for (const key of this.dirTimes.keys()) if (key === rel || key.startsWith(prefix)) this.dirTimes.delete(key);
  }

  private markWritten(rel: string): void {
    if (this.options.whiteouts !== "remove") return;
    for (let path = rel; path !== "" && !this.written.has(path); path = parentRel(path)) this.written.add(path);
  }

  private hostOwner(entry: TarEntry): [number, number] {
    const uid = toHost(this.options.idMaps.uidMap, entry.uid);
    if (uid < 0) throw new ArchiveError(`${JSON.stringify(entry.path)}: container UID ${entry.uid} is not covered by the layer's UID map`);
    const gid = toHost(this.options.idMaps.gidMap, entry.gid);
    if (gid < 0) throw new ArchiveError(`${JSON.stringify(entry.path)}: container GID ${entry.gid} is not covered by the layer's GID map`);
    return [uid, gid];
  }

  private setXattrs(path: string, entry: TarEntry): void {
    for (const [name, value] of entry.xattrs) {
      try {
        setXattr(path, name, value);
      } catch (error) {
        const code = errorCode(error);
        if (code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw error;
      }
    }
  }
}
