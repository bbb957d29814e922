/**
 * Runs the mounts that drivers describe and counts them. Counts live in a small SQLite
 * database in the run root (so a reboot, which empties a tmpfs run root, forgets them), and a
 * count is only trusted while the kernel's mount table still shows the mount: after a process
 * holding a mount is killed, or someone unmounts behind our back, the next call sees the truth.
 * Counting a directory (vfs) loads no node: module: node:fs is loaded by kernel mounts, views,
 * and the removal of a damaged counts file.
 */
import { Database } from "bun:sqlite";
import { CorruptError, SystemError, asStorageError, errnoReason, sqliteFailure } from "../errors.ts";
import { isTokenAlive, processToken } from "../sys/liveness.ts";
import { kernelMountPoints } from "../sys/mount-table.ts";
import { pathExists } from "../sys/path-exists.ts";
import { crashPoint } from "../util/crash-points.ts";
import { immediateTransaction } from "../util/sqlite-transaction.ts";
import { type KernelMountSpec, type LayerViews, MOUNT_CHANGE_MARK, MOUNT_COUNTS_FILE, type MountSpec, type ViewRequest } from "./driver.ts";
import { nodeFs } from "../sys/node-fs.ts";


const COUNTS_TABLE = "CREATE TABLE IF NOT EXISTS mounts (layer TEXT PRIMARY KEY, path TEXT NOT NULL, count INTEGER NOT NULL, kernel INTEGER NOT NULL)";

export interface MountState {
  layer: string;
  path: string;
  count: number;
}

/** Runs mount(8), umount(8) or a mount program; one that cannot be started is named with why (a minimal image without util-linux). */
function run(argv: string[], cwd?: string): void {
  let proc: Bun.SyncSubprocess<"pipe", "pipe">;
  try {
    proc = Bun.spawnSync(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SystemError(`running ${argv[0]}: ${code === "ENOENT" ? "not found in $PATH" : errnoReason(error)}`, code);
  }
  if (proc.exitCode !== 0) {
    const detail = (proc.stderr.toString() || proc.stdout.toString()).split("\n").map((line) => line.trim()).filter(Boolean).join("; ");
    throw new SystemError(`${argv[0]} failed: ${detail || `exit status ${proc.exitCode}`}`);
  }
}

/**
 * Runs one kernel (or FUSE program) mount described by a spec, with no counting: first the
 * spec's preparation (directories to make, paths to remove), then mount(8) in the spec's cwd.
 */
function mountNow(spec: KernelMountSpec): void {
  const { mkdirSync, rmSync, symlinkSync } = nodeFs();
  for (const dir of spec.prepare?.directories ?? []) mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const path of spec.prepare?.remove ?? []) rmSync(path, { recursive: true, force: true });
  for (const { path, target } of spec.prepare?.links ?? []) {
    try {
      symlinkSync(target, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  mkdirSync(spec.target, { recursive: true, mode: 0o700 });
  if (spec.program) run([spec.program, "-o", spec.options, spec.target], spec.cwd);
  else run(["mount", "-t", "overlay", "overlay", "-o", spec.options, spec.target], spec.cwd);
}

/** Mounts a spec and unmounts it again (a driver's probe of kernel support); returns why it failed, or undefined. */
export function probeMount(spec: KernelMountSpec): string | undefined {
  try {
    mountNow(spec);
  } catch (e) {
    return (e as Error).message;
  }
  unmountPath(spec.target);
  return undefined;
}

const VIEW_PREFIX = "view-";

/** The liveness token of a view directory's owner: view-<token with "/" as "_">-XXXXXX. */
function viewOwner(name: string): string {
  return name.slice(VIEW_PREFIX.length, -7).replaceAll("_", "/");
}

/** False when a mount point in the table no longer answers (a FUSE mount whose program was killed). */
function answers(path: string): boolean {
  try {
    nodeFs().statSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ENOTCONN";
  }
}

/**
 * Mounts and unmounts driver mount specs, keeping per-layer counts in the run root. The counts
 * database is opened on first use and created by the first mount: until then, no file means
 * no counts, and commands that never mount do not pay for opening it.
 */
export class Mounter {
  private database: Database | undefined;
  private readonly path: string;
  private readonly changeMark: string;

  constructor(private readonly runRoot: string) {
    this.path = `${runRoot}/${MOUNT_COUNTS_FILE}`;
    this.changeMark = `${runRoot}/${MOUNT_CHANGE_MARK}`;
  }

  private get db(): Database {
    this.database ??= this.open();
    return this.database;
  }

  private open(): Database {
    const creating = !pathExists(this.path);
    if (creating) nodeFs().mkdirSync(this.runRoot, { recursive: true, mode: 0o700 });
    let db: Database | undefined;
    try {
      db = new Database(this.path, { create: true, strict: true });
      // One round trip. WAL is kept in the file, so it is asked for when the file is made. Counts
      // are runtime state, checked against the kernel's mount table on every use and meaningless
      // after a reboot. WAL survives a killed process; with synchronous=OFF nothing is fsynced,
      // so a machine that stops may leave the file damaged, which `counted` starts again empty:
      // the mounts it counted ended with that machine.
      // The busy timeout first: a second process making the file at the same time waits for the first.
      db.run(`PRAGMA busy_timeout = 60000; PRAGMA synchronous = OFF; ${creating ? "PRAGMA journal_mode = WAL; " : ""}${COUNTS_TABLE}`);
      return db;
    } catch (e) {
      db?.close();
      throw this.failure(e);
    }
  }

  /**
   * Runs fn on the counts; when SQLite finds the file damaged (what a machine that stopped while
   * writing it can leave, see open), removes it and runs fn once more on an empty one.
   */
  private counted<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      // SQLite's word that the file is damaged (not a database, a broken page), raw or as sqliteFailure words it.
      if (!(asStorageError(e) instanceof CorruptError)) throw e;
      this.database?.close();
      this.database = undefined;
      const { rmSync } = nodeFs();
      for (const suffix of ["", "-wal", "-shm"]) rmSync(`${this.path}${suffix}`, { force: true });
      return fn();
    }
  }

  /** An SQLite refusal of the counts database (a full or read-only run root) as one line naming it. */
  private failure(e: unknown): unknown {
    return sqliteFailure(e, `writing database ${this.path}`) ?? e;
  }

  /** True while no mount was ever counted in this run root (no database yet): there are no counts to read. */
  private get neverCounted(): boolean {
    return this.database === undefined && !pathExists(this.path);
  }

  /** Runs fn holding the run root's write lock, so that counting and mounting are one step. */
  private locked<T>(fn: () => T): T {
    try {
      return immediateTransaction(this.db, fn);
    } catch (e) {
      throw this.failure(e);
    }
  }

  /**
   * Runs fn holding the lock; fn calls beginChange before it runs mount(8) or umount(8), which
   * makes the change mark. The mark this call made is removed once fn's count is committed (under
   * the lock again, so no other change is under way). A mark found already was left by a process
   * that died under way: it stays for recovery to release what that process left.
   */
  private lockedChange<T>(fn: (beginChange: () => void) => T): T {
    let marked = false;
    const beginChange = () => {
      if (marked || pathExists(this.changeMark)) return;
      nodeFs().writeFileSync(this.changeMark, "");
      marked = true;
    };
    try {
      return this.locked(() => fn(beginChange));
    } finally {
      if (marked) this.locked(() => this.forgetChangeMark());
    }
  }

  /** True when a kernel mount or unmount was left half done (or is under way in another process). */
  get changeMarked(): boolean {
    return pathExists(this.changeMark);
  }

  private row(layer: string): { path: string; count: number; kernel: number } | undefined {
    if (this.neverCounted) return undefined;
    return (this.db.query("SELECT path, count, kernel FROM mounts WHERE layer = ?").get(layer) as { path: string; count: number; kernel: number } | null) ?? undefined;
  }

  /** Every row, by layer. */
  private allRows(): Array<MountState & { kernel: number }> {
    return this.db.query("SELECT layer, path, count, kernel FROM mounts ORDER BY layer").all() as Array<MountState & { kernel: number }>;
  }

  /** The live count: a kernel mount that is no longer in the mount table counts as 0. */
  private liveCount(layer: string, points?: Set<string>): number {
    const row = this.row(layer);
    if (!row || row.count <= 0) return 0;
    if (row.kernel && (!(points ?? kernelMountPoints()).has(row.path) || !answers(row.path))) return 0;
    return row.count;
  }

  /** Mounts the layer (or counts one more user of an existing mount) and returns the mount point. */
  mount(layer: string, spec: MountSpec): string {
    return this.counted(() => this.mountCounted(layer, spec));
  }

  private mountCounted(layer: string, spec: MountSpec): string {
    return this.lockedChange((beginChange) => {
      const path = spec.kind === "directory" ? spec.path : spec.target;
      const count = this.liveCount(layer);
      if (count === 0 && spec.kind !== "directory") {
        beginChange();
        // A mount left by a process that died before counting it, or a dead FUSE mount.
        if (kernelMountPoints().has(spec.target)) unmountPath(spec.target);
        mountNow(spec);
        crashPoint("after-kernel-mount");
      }
      const existing = this.row(layer);
      const mountedPath = count > 0 && existing ? existing.path : path;
      const kernel = count > 0 && existing ? existing.kernel : spec.kind === "directory" ? 0 : 1;
      this.db.query("INSERT OR REPLACE INTO mounts (layer, path, count, kernel) VALUES (?, ?, ?, ?)").run(layer, mountedPath, count + 1, kernel);
      return mountedPath;
    });
  }

  /**
   * Drops one user of the layer's mount (all of them with force); unmounts when none is left.
   * Returns true when the layer is no longer mounted afterwards.
   */
  unmount(layer: string, force: boolean): boolean {
    return this.counted(() => this.unmountCounted(layer, force));
  }

  private unmountCounted(layer: string, force: boolean): boolean {
    if (this.neverCounted) return true;
    return this.lockedChange((beginChange) => {
      const row = this.row(layer);
      const points = row?.kernel ? kernelMountPoints() : undefined;
      const count = this.liveCount(layer, points);
      if (row && count > 1 && !force) {
        this.db.query("UPDATE mounts SET count = ? WHERE layer = ?").run(count - 1, layer);
        return false;
      }
      if (row?.kernel && points!.has(row.path)) {
        beginChange();
        unmountPath(row.path);
        crashPoint("after-kernel-unmount");
      }
      this.db.query("DELETE FROM mounts WHERE layer = ?").run(layer);
      return true;
    });
  }

  /**
   * Removes the mark of a change left half done; called holding the lock (whileLocked), by
   * recovery once it has released every kernel mount that no row counts.
   */
  forgetChangeMark(): void {
    nodeFs().rmSync(this.changeMark, { force: true });
  }

  /** The current mount count of a layer, checked against the kernel. */
  count(layer: string): number {
    return this.counted(() => this.liveCount(layer));
  }

  /** The mount point of a mounted layer. */
  mountPoint(layer: string): string | undefined {
    return this.counted(() => (this.liveCount(layer) > 0 ? this.row(layer)?.path : undefined));
  }

  /** Every layer with a live mount. */
  mounted(): MountState[] {
    if (this.neverCounted) return [];
    const rows = this.counted(() => this.allRows());
    const points = rows.some((r) => r.kernel) ? kernelMountPoints() : new Set<string>();
    return rows.filter((r) => r.count > 0 && (!r.kernel || (points.has(r.path) && answers(r.path)))).map(({ layer, path, count }) => ({ layer, path, count }));
  }

  /** Rows whose kernel mount has disappeared; points is the kernel's mount table when the caller has read it already. */
  staleMounts(points?: Set<string>): MountState[] {
    if (this.neverCounted) return [];
    points ??= kernelMountPoints();
    const rows = this.counted(() => this.allRows());
    return rows.filter((r) => r.kernel && !points.has(r.path)).map(({ layer, path, count }) => ({ layer, path, count }));
  }

  /** Runs fn with every mount row while holding the run root's lock, so that no mount starts or ends meanwhile (for `check`). */
  whileLocked<T>(fn: (rows: Array<MountState & { kernel: boolean }>) => T): T {
    // Read once before the lock, so that a damaged file is started again before fn runs.
    this.counted(() => this.allRows());
    return this.locked(() => {
      const rows = this.allRows();
      return fn(rows.map((r) => ({ ...r, kernel: r.kernel !== 0 })));
    });
  }

  /** Unmounts a mount point that no count accounts for (left by a process killed between mounting and counting). */
  releaseUncounted(path: string, points?: Set<string>): void {
    if ((points ?? kernelMountPoints()).has(path)) unmountPath(path);
  }

  /**
   * Mounts a temporary, uncounted view (a read-only merged tree to compare) in a fresh directory
   * under dir, named after this process so that releaseStaleViews can tell when its owner died.
   * spec receives the target; releaseView ends the view.
   */
  private mountView(dir: string, spec: (target: string) => KernelMountSpec): string {
    const { mkdirSync, mkdtempSync, rmSync } = nodeFs();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const target = mkdtempSync(`${dir}/${VIEW_PREFIX}${processToken().replaceAll("/", "_")}-`);
    try {
      mountNow(spec(target));
    } catch (e) {
      rmSync(target, { recursive: true, force: true });
      throw e;
    }
    return target;
  }

  /** Unmounts a view and removes its directory. */
  private releaseView(target: string, points?: Set<string>): void {
    this.releaseUncounted(target, points);
    nodeFs().rmSync(target, { recursive: true, force: true });
  }

  /** Releases the views under dir whose owning process no longer runs. */
  private releaseStaleViews(dir: string): void {
    let names: string[];
    try {
      names = nodeFs().readdirSync(dir).filter((name) => name.startsWith(VIEW_PREFIX));
    } catch {
      return;
    }
    if (names.length === 0) return;
    const points = kernelMountPoints();
    for (const name of names) if (!isTokenAlive(viewOwner(name))) this.releaseView(`${dir}/${name}`, points);
  }

  /** The temporary read-only views a driver may ask for, kept in dir (a directory of the driver's in the run root). */
  views(dir: string): LayerViews {
    return {
      withViews: (requests, fn) => this.withViews(dir, requests, fn),
      releaseStale: () => this.releaseStaleViews(dir),
    };
  }

  /** Runs fn with each requested layer's live mount, or a temporary view under dir released afterwards. */
  private async withViews<T>(dir: string, requests: ViewRequest[], fn: (paths: string[]) => Promise<T>): Promise<T> {
    const made = new Map<string, string>();
    const view = ({ layer, describe }: ViewRequest): string => {
      const existing = this.mountPoint(layer) ?? made.get(layer);
      if (existing !== undefined) return existing;
      const target = this.mountView(dir, describe);
      made.set(layer, target);
      return target;
    };
    try {
      return await fn(requests.map(view));
    } finally {
      for (const target of made.values()) this.releaseView(target);
    }
  }

  close(): void {
    this.database?.close();
  }
}

/** Unmounts a path; when it is busy, detaches it lazily so that callers never hang. */
export function unmountPath(path: string): void {
  try {
    run(["umount", path]);
  } catch (e) {
    if (!kernelMountPoints().has(path)) return;
    try {
      run(["umount", "-l", path]);
    } catch {
      throw e;
    }
  }
}
