/**
 * Small real file systems for full-disk and read-only tests: a size-limited tmpfs, or an ext4
 * image on a loop device (found with `losetup -f --show`), mounted in a temp dir of the test's
 * own. They can be filled to the last block, freed again, remounted read-only, and always
 * removed: `destroy` unmounts (lazily if something still holds it), detaches the loop device
 * and deletes the image, and every file system made is also destroyed when the process exits.
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
  for (const fs of live) fs.destroy();
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

/** A mounted small file system. */
export class SmallFs {
  /** Where it is mounted. */
  readonly path: string;
  private readonly work: string;
  private loop: string | undefined;
  private fillers = 0;
  private destroyed = false;

  /** Mounts a new file system of the kind with room for about `megabytes` MiB; ext4 with blocks of `blockBytes`. */
  constructor(
    readonly kind: SmallFsKind,
    megabytes: number,
    blockBytes = 4096,
  ) {
    this.work = mkdtempSync(join(tmpdir(), `oci-smallfs-${kind}-`));
    this.path = join(this.work, "mnt");
    must(["mkdir", this.path]);
    live.add(this);
    try {
      if (kind === "tmpfs") {
        must(["mount", "-t", "tmpfs", "-o", `size=${megabytes}m,mode=0755`, "tmpfs", this.path]);
      } else {
        const image = join(this.work, "ext4.img");
        must(["truncate", "-s", `${megabytes}M`, image]);
        // No blocks reserved for root (the tests run as root, which could use them anyway), and
        // by default 4 KiB blocks as on any real-sized ext4 (mkfs picks 1 KiB for a small image,
        // which small-blocks.test.ts asks for on purpose).
        must(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", `${blockBytes}`, image]);
        this.loop = must(["losetup", "-f", "--show", image]);
        must(["mount", "-t", "ext4", this.loop, this.path]);
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
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
    // Mounts a failed test left inside (overlay layer mounts), deepest first.
    const inside = run(["findmnt", "-rn", "-o", "TARGET", "-R", this.path]).out.split("\n").filter((p) => p !== "" && p !== this.path);
    for (const target of inside.reverse()) if (run(["umount", target]).code !== 0) run(["umount", "-l", target]);
    if (run(["umount", this.path]).code !== 0) run(["umount", "-l", this.path]);
    if (this.loop !== undefined) run(["losetup", "-d", this.loop]);
    // Never remove through a mount that would not go away.
    if (run(["findmnt", "-rn", this.path]).out === "") rmSync(this.work, { recursive: true, force: true });
  }
}
