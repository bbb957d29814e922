/**
 * Small real file systems for full-disk, read-only and I/O-error tests: a size-limited tmpfs,
 * or an ext4 image on a loop device (found with `losetup -f --show`), mounted in a temp dir of
 * the test's own. They can be filled to the last block, freed again, remounted read-only, and
 * always removed: `destroy` unmounts (lazily if something still holds it), detaches the loop
 * device and deletes the image, and every file system made is also destroyed when the process
 * exits. An ext4 image can also live, sparse, on a tmpfs of its own much smaller than itself
 * (`onDeviceOf`): once that tmpfs is full the loop device fails the writes ext4 sends it, as a
 * failing disk does; freeing the tmpfs heals it, and `repair` brings ext4 back after an abort.
 */
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type SmallFsKind = "tmpfs" | "ext4";

function run(argv: string[]): { code: number; out: string } {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: `${p.stdout.toString()}${p.stderr.toString()}`.trim() };
}

function must(argv: string[]): string {
  const r = run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed: ${r.out}`);
  return r.out;
}

const live = new Set<SmallFs>();
process.on("exit", () => {
  // The latest first: an ext4 image before the tmpfs holding it.
  for (const fs of [...live].reverse()) fs.destroy();
});

let skipReason: string | undefined | null = null;

/** Why small file systems cannot be made here (not root, no loop devices, no mkfs.ext4), or undefined when they can. */
export function smallFsSkipReason(): string | undefined {
  if (skipReason !== null) return skipReason;
  skipReason = undefined;
  if (process.getuid?.() !== 0) skipReason = "mounting file systems needs root";
  else if (run(["mkfs.ext4", "-V"]).code !== 0) skipReason = "mkfs.ext4 is missing (apt-get install e2fsprogs)";
  else if (run(["losetup", "-f"]).code !== 0) skipReason = "no free loop device";
  if (skipReason) console.log(`skipping full-disk tests: ${skipReason}`);
  return skipReason;
}

/** How an ext4 image is made and mounted (a tmpfs takes none of these). */
export interface Ext4Options {
  /** Block size (default 4096, as on any real-sized ext4; mkfs would pick 1 KiB for a small image). */
  blockBytes?: number;
  /** Extra mount options, such as "sync" (each write(2) reaches the device before it returns). */
  mountOptions?: string[];
  /** Put the sparse image on a tmpfs of this many MiB (the failing device, `device`), not in the temp dir. */
  onDeviceOf?: number;
}

/** A mounted small file system. */
export class SmallFs {
  /** Where it is mounted. */
  readonly path: string;
  /** The tmpfs holding an ext4 image made with `onDeviceOf`: fill it and the device fails writes, free it and it heals. */
  readonly device: SmallFs | undefined;
  private readonly work: string;
  private readonly mountOptions: string;
  private loop: string | undefined;
  private fillers = 0;
  private destroyed = false;

  /** Mounts a new file system of the kind with room for about `megabytes` MiB; an ext4 one made as `ext4` says. */
  constructor(
    readonly kind: SmallFsKind,
    megabytes: number,
    ext4: Ext4Options = {},
  ) {
    this.work = mkdtempSync(join(tmpdir(), `oci-smallfs-${kind}-`));
    this.path = join(this.work, "mnt");
    this.mountOptions = (ext4.mountOptions ?? ["defaults"]).join(",");
    must(["mkdir", this.path]);
    live.add(this);
    try {
      if (kind === "tmpfs") {
        must(["mount", "-t", "tmpfs", "-o", `size=${megabytes}m,mode=0755`, "tmpfs", this.path]);
      } else {
        if (ext4.onDeviceOf !== undefined) this.device = new SmallFs("tmpfs", ext4.onDeviceOf);
        const image = join(this.device?.path ?? this.work, "ext4.img");
        must(["truncate", "-s", `${megabytes}M`, image]);
        // No blocks reserved for root (the tests run as root, which could use them anyway).
        must(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", `${ext4.blockBytes ?? 4096}`, image]);
        this.loop = must(["losetup", "-f", "--show", image]);
        must(["mount", "-t", "ext4", "-o", this.mountOptions, this.loop, this.path]);
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** The options the kernel shows for this mount now ("rw,sync,relatime,emergency_ro", say). */
  get kernelOptions(): string {
    return must(["findmnt", "-rn", "-o", "OPTIONS", this.path]);
  }

  /**
   * Brings an ext4 file system back after its device failed (after `device.free()`, say): unmounts
   * it, repairs it with e2fsck, mounts it again as it was. Throws when e2fsck could not repair it.
   */
  repair(): void {
    this.unmountInside();
    must(["umount", this.path]);
    const fsck = run(["e2fsck", "-f", "-y", this.loop!]);
    // 0: clean, 1: errors corrected (what a journal abort leaves).
    if (fsck.code !== 0 && fsck.code !== 1) throw new Error(`e2fsck -f -y ${this.loop} exited ${fsck.code}: ${fsck.out}`);
    must(["mount", "-t", "ext4", "-o", this.mountOptions, this.loop!, this.path]);
  }

  /**
   * Shuts ext4 down as when its disk is gone (EXT4_IOC_SHUTDOWN, what xfs_io's "shutdown" does,
   * after flushing what is written): from then on every read and write on it fails with EIO,
   * until `repair`.
   */
  shutDown(): void {
    const EXT4_IOC_SHUTDOWN = 0x8004587d;
    const script = "import fcntl, os, struct, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.ioctl(fd, int(sys.argv[2]), struct.pack('I', 0))";
    must(["python3", "-c", script, this.path, `${EXT4_IOC_SHUTDOWN}`]);
  }

  /** Free bytes right now. */
  get freeBytes(): number {
    const s = statfsSync(this.path);
    return Number(s.bavail) * Number(s.bsize);
  }

  /**
   * Fills the file system until writes fail, leaving about `leaveBytes` free (0: full to the
   * last block), with files named .filler-N in its root.
   */
  fill(leaveBytes = 0): void {
    const chunk = new Uint8Array(1024 * 1024).fill(0x5a);
    const path = join(this.path, `.filler-${this.fillers++}`);
    const fd = openSync(path, "w");
    try {
      for (const size of [chunk.byteLength, 64 * 1024, 4096, 512, 1]) {
        for (;;) {
          if (leaveBytes > 0 && this.freeBytes - size < leaveBytes) break;
          try {
            writeSync(fd, chunk, 0, size);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
            throw e;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    Bun.spawnSync(["sync", "-f", this.path]);
  }

  /** Removes every filler file. */
  free(): void {
    for (const name of readdirSync(this.path)) if (name.startsWith(".filler-")) rmSync(join(this.path, name), { force: true });
    Bun.spawnSync(["sync", "-f", this.path]);
  }

  /** Remounts read-only (true) or read-write (false). */
  setReadOnly(readOnly: boolean): void {
    must(["mount", "-o", `remount,${readOnly ? "ro" : "rw"}`, this.path]);
  }

  /** Unmounts everything below and the file system itself, detaches the loop device, removes the temp dir. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    this.unmountInside();
    if (run(["umount", this.path]).code !== 0) run(["umount", "-l", this.path]);
    if (this.loop !== undefined) run(["losetup", "-d", this.loop]);
    this.device?.destroy();
    // Never remove through a mount that would not go away.
    if (run(["findmnt", "-rn", this.path]).out === "") rmSync(this.work, { recursive: true, force: true });
  }

  /** Unmounts what a failed test left mounted inside (overlay layer mounts), deepest first. */
  private unmountInside(): void {
    const inside = run(["findmnt", "-rn", "-o", "TARGET", "-R", this.path]).out.split("\n").filter((p) => p !== "" && p !== this.path);
    for (const target of inside.reverse()) if (run(["umount", target]).code !== 0) run(["umount", "-l", target]);
  }
}
