/** End-to-end: what only the overlay driver does (docs/cli-contract.md §3.6, §3.8.1, §6.3), through the compiled binary. */
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore, overlaySkipReason, runBinary } from "../helpers/cli.ts";
import { makeTar } from "../helpers/fixtures.ts";

const BASE = { "etc/": "", "etc/hosts": "127.0.0.1 localhost\n", "data/": "", "data/file1": "one" };
const FUSE_OVERLAYFS = ["/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs"].find((p) => existsSync(p));

interface MountEntry {
  fstype: string;
  options: string[];
}

/** The kernel's view of a mount point: filesystem type and all its options (per mount and superblock). */
function mountEntry(path: string): MountEntry | undefined {
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    if (fields[4] !== path) continue;
    const dash = fields.indexOf("-");
    return { fstype: fields[dash + 1]!, options: [...fields[5]!.split(","), ...fields[dash + 3]!.split(",")] };
  }
  return undefined;
}

/** Starts a process whose working directory is inside dir, so that dir's mount is busy. */
function holdBusy(dir: string): Bun.Subprocess {
  return Bun.spawn(["sleep", "600"], { cwd: dir, stdout: "ignore", stderr: "ignore" });
}

const skip = overlaySkipReason();

describe.skipIf(skip !== undefined)("overlay driver", () => {
  let s: TestStore;
  beforeEach(() => {
    s = new TestStore("overlay");
  });
  afterEach(() => s.destroy());

  test("status prints the overlay lines on stderr, and as pairs with -j", () => {
    const r = s.cli(["status"]);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split("\n");
    expect(lines.slice(2, 4)).toEqual(["Driver Name: overlay", "Driver Options: []"]);
    expect(lines[4]).toMatch(/^Backing Filesystem: \S+$/);
    expect(lines.slice(5)).toEqual(["Supports d_type: true", `Native Overlay Diff: ${readParameter("redirect_dir") || readParameter("metacopy") ? "false" : "true"}`, `Using metacopy: ${readParameter("metacopy")}`]);
    const pairs = s.json(["status", "-j"]);
    expect(pairs.map((p: string[]) => p[0])).toEqual(["Root", "Run Root", "Driver Name", "Driver Options", "Backing Filesystem", "Supports d_type", "Native Overlay Diff", "Using metacopy"]);
  });

  test("a new store without -s uses overlay; an existing store keeps its driver; another one asked for is an error", () => {
    const dir = mkdtempSync(join(tmpdir(), "oci-overlay-default-"));
    try {
      const fresh = ["--graph", join(dir, "a"), "--run", join(dir, "ar")];
      expect(runBinary([...fresh, "status"]).stderr).toContain("Driver Name: overlay\n");
      const vfs = ["--graph", join(dir, "b"), "--run", join(dir, "br")];
      expect(runBinary([...vfs, "-s", "vfs", "create-layer", "-i", "L"]).code).toBe(0);
      expect(runBinary([...vfs, "layers"]).stdout).toBe("L\n");
      expect(runBinary([...vfs, "status"]).stderr).toContain("Driver Name: vfs\n");
      const r = runBinary([...vfs, "-s", "overlay", "layers"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe(`error initializing: the store at ${join(dir, "b")} uses the vfs driver, not overlay; use -s vfs or another --graph\n`);
    } finally {
      runBinary(["--graph", join(dir, "a"), "--run", join(dir, "ar"), "shutdown", "-f"]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("driver options: unknown keys and relative image stores are refused; mountopt and mount -o reach the kernel", () => {
    let r = s.cli(["--storage-opt", "overlay.bogus=1", "layers"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("error initializing: overlay: Unknown option overlay.bogus\n");
    r = s.cli(["--storage-opt", "vfs.imagestore=/x", "layers"]);
    expect(r.stdout).toBe("error initializing: overlay: Unknown option vfs.imagestore\n");
    r = s.cli(["--storage-opt", "overlay.imagestore=relative/dir", "layers"]);
    expect(r.stdout).toBe('error initializing: overlay: image path "relative/dir" is not absolute.  Can not be relative\n');
    s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
    for (const prefix of ["overlay.", "overlay2.", "."]) {
      const path = s.ok(["--storage-opt", `${prefix}mountopt=nodev`, "mount", "-o", "noexec", "L"]).trim();
      expect(mountEntry(path)!.options).toEqual(expect.arrayContaining(["nodev", "noexec"]));
      s.ok(["unmount", "L"]);
    }
  });

  test("layout: short l/ links, link and lower files, empty/ only in base layers; deleting a layer removes its link", () => {
    s.ok(["import-layer", "-i", "P", "-f", makeTar(BASE)]);
    s.ok(["create-layer", "-i", "C", "P"]);
    const home = join(s.graph, "overlay");
    const parentLink = readFileSync(join(home, "P", "link"), "utf8");
    const childLink = readFileSync(join(home, "C", "link"), "utf8");
    expect(parentLink).toMatch(/^[A-Z2-7]{6}$/);
    expect(readlinkSync(join(home, "l", parentLink))).toBe("../P/diff");
    expect(readlinkSync(join(home, "l", childLink))).toBe("../C/diff");
    expect(readFileSync(join(home, "C", "lower"), "utf8")).toBe(`l/${parentLink}`);
    expect(existsSync(join(home, "P", "lower"))).toBe(false);
    expect(existsSync(join(home, "P", "empty"))).toBe(true);
    expect(existsSync(join(home, "C", "empty"))).toBe(false);
    expect(readFileSync(join(home, "P", "diff", "etc", "hosts"), "utf8")).toBe("127.0.0.1 localhost\n");
    expect(lstatSync(join(home, "P", "diff")).mode & 0o7777).toBe(0o555);
    expect(readFileSync(join(home, ".has-mount-program"), "utf8")).toBe("false");
    const path = s.ok(["mount", "C"]).trim();
    expect(path).toBe(join(home, "C", "merged"));
    expect(mountEntry(path)!.fstype).toBe("overlay");
    writeFileSync(join(path, "added"), "x");
    expect(readFileSync(join(home, "C", "diff", "added"), "utf8")).toBe("x");
    s.ok(["unmount", "C"]);
    // The link directory's name cannot become a layer, and trying leaves the links alone.
    const r = s.cli(["create-layer", "-i", "l"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('layer ID "l" is reserved by the overlay driver\n');
    expect(readdirSync(join(home, "l")).sort()).toEqual([parentLink, childLink].sort());
    s.ok(["delete-layer", "C"]);
    expect(existsSync(join(home, "C"))).toBe(false);
    expect(readdirSync(join(home, "l"))).toEqual([parentLink]);
  });

  test("short links removed from l/ (one, all, or the directory): mount recreates those it needs, check reports the rest, check --repair recreates them", () => {
    s.ok(["import-layer", "-i", "BASE", "-f", makeTar(BASE)]);
    s.ok(["create-layer", "-i", "MID", "BASE"]);
    s.ok(["create-layer", "-i", "TOP", "MID"]);
    s.ok(["create-image", "-i", "IMG", "TOP"]);
    s.ok(["create-container", "-i", "CTR", "IMG"]);
    const layer = s.json(["container", "-j", "CTR"])[0].layer as string;
    const home = join(s.graph, "overlay");
    const linkOf = (id: string) => readFileSync(join(home, id, "link"), "utf8");
    const missing = (id: string) => `layer ${id}: overlay short link l/${linkOf(id)} is missing\n`;
    const links = () => readdirSync(join(home, "l")).sort();
    const all = ["BASE", "MID", "TOP", layer].map(linkOf).sort();
    expect(s.cli(["check"])).toMatchObject({ code: 0, stdout: "" });

    // One link gone: check names it, --repair puts it back.
    rmSync(join(home, "l", linkOf("MID")));
    expect(s.cli(["check"])).toMatchObject({ code: 1, stdout: missing("MID") });
    expect(s.cli(["check", "--repair"])).toMatchObject({ code: 0, stdout: missing("MID").replace("\n", "; repaired\n") });
    expect(readlinkSync(join(home, "l", linkOf("MID")))).toBe("../MID/diff");

    // The whole directory gone: the container mounts with its image's content, and the links its mount names (its own and
    // its lower layers') are back.
    rmSync(join(home, "l"), { recursive: true });
    const merged = s.ok(["mount", "CTR"]).trim();
    expect(readFileSync(join(merged, "etc", "hosts"), "utf8")).toBe("127.0.0.1 localhost\n");
    s.ok(["unmount", "CTR"]);
    expect(links()).toEqual(all);
    expect(s.cli(["check"])).toMatchObject({ code: 0, stdout: "" });
    // A mount of the middle layer brings back its own link and its parent's, not those of the layers above.
    for (const link of links()) rmSync(join(home, "l", link));
    s.ok(["mount", "MID"]);
    s.ok(["unmount", "MID"]);
    expect(links()).toEqual(["BASE", "MID"].map(linkOf).sort());
    expect(s.cli(["check"]).stdout.split("\n").filter(Boolean).sort()).toEqual(["TOP", layer].map(missing).map((l) => l.trim()).sort());

    // Every link gone: check lists them all; --repair recreates them; a link leading elsewhere is put right too.
    for (const link of links()) rmSync(join(home, "l", link));
    expect(s.cli(["check"]).stdout.split("\n").filter(Boolean).sort()).toEqual(["BASE", "MID", "TOP", layer].map(missing).map((l) => l.trim()).sort());
    s.ok(["check", "--repair"]);
    expect(links()).toEqual(all);
    rmSync(join(home, "l", linkOf("TOP")));
    Bun.spawnSync(["ln", "-s", "../BASE/diff", join(home, "l", linkOf("TOP"))]);
    expect(s.cli(["check"]).stdout).toBe(`layer TOP: overlay short link l/${linkOf("TOP")} leads to ../BASE/diff, not ../TOP/diff\n`);
    s.ok(["check", "--repair"]);
    expect(readlinkSync(join(home, "l", linkOf("TOP")))).toBe("../TOP/diff");
    expect(s.cli(["check"])).toMatchObject({ code: 0, stdout: "" });
    expect(readFileSync(join(s.ok(["mount", "TOP"]).trim(), "data", "file1"), "utf8")).toBe("one");
    s.ok(["unmount", "TOP"]);
  });

  test("a volatile container mounts with the volatile option, and mounts again after unmounting", () => {
    s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
    s.ok(["create-image", "-i", "I", "L"]);
    s.ok(["create-container", "--volatile", "-i", "V", "I"]);
    s.ok(["create-container", "-i", "N", "I"]);
    for (let round = 0; round < 2; round++) {
      const path = s.ok(["mount", "V"]).trim();
      // The kernel lists the volatile option as fsync=volatile since 6.x.
      expect(mountEntry(path)!.options.some((o) => o === "volatile" || o === "fsync=volatile")).toBe(true);
      writeFileSync(join(path, `round${round}`), "r");
      s.ok(["unmount", "V"]);
    }
    const plain = s.ok(["mount", "N"]).trim();
    expect(mountEntry(plain)!.options.some((o) => o.includes("volatile"))).toBe(false);
    s.ok(["unmount", "N"]);
  });

  test("a layer unmounted behind the store's back counts as unmounted and mounts again", () => {
    s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
    const path = s.ok(["mount", "L"]).trim();
    s.ok(["mount", "L"]);
    expect(Bun.spawnSync(["umount", path]).exitCode).toBe(0);
    expect(s.ok(["mounted", "L"])).toBe("");
    expect(s.ok(["mount", "L"]).trim()).toBe(path);
    expect(readFileSync(join(path, "data", "file1"), "utf8")).toBe("one");
    expect(s.ok(["unmount", "L"])).toBe("L mountpoint unmounted\n");
    expect(mountEntry(path)).toBeUndefined();
  });

  test("without mount(8) and umount(8) in $PATH (a minimal image), mount and unmount say so in one line and the count stays true", () => {
    s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
    const noTools = { env: { PATH: "/nonexistent" } };
    // A failed mount prints an empty line for its reference, as 1.43 does.
    let r = s.cli(["mount", "L"], noTools);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 1, stdout: "\n", stderr: "running mount: not found in $PATH while mounting L\n" });
    expect(s.ok(["mounted", "L"])).toBe("");
    const path = s.ok(["mount", "L"]).trim();
    r = s.cli(["unmount", "L"], noTools);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: "running umount: not found in $PATH while unmounting L\n" });
    expect(s.ok(["mounted", "L"])).toBe("L mounted\n");
    expect(mountEntry(path)?.fstype).toBe("overlay");
    expect(s.ok(["unmount", "L"])).toBe("L mountpoint unmounted\n");
    expect(mountEntry(path)).toBeUndefined();
  });

  test("after kill -9 of a process holding a mount, unmount and shutdown work; a live holder never makes them hang", async () => {
    s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
    s.ok(["create-layer", "-i", "M", "L"]);
    let path = s.ok(["mount", "L"]).trim();
    const holder = holdBusy(join(path, "data"));
    holder.kill(9);
    await holder.exited;
    expect(s.ok(["unmount", "L"])).toBe("L mountpoint unmounted\n");
    expect(mountEntry(path)).toBeUndefined();
    // A holder still running: the mount is detached lazily instead of failing or hanging.
    path = s.ok(["mount", "L"]).trim();
    const pathM = s.ok(["mount", "M"]).trim();
    const busy = [holdBusy(path), holdBusy(pathM)];
    try {
      expect(s.ok(["unmount", "L"])).toBe("L mountpoint unmounted\n");
      expect(mountEntry(path)).toBeUndefined();
      expect(s.cli(["shutdown"]).stderr).toBe("shutdown: a layer is mounted: layer is in use by a container\n");
      expect(s.cli(["shutdown", "-f"]).code).toBe(0);
      expect(mountEntry(pathM)).toBeUndefined();
    } finally {
      for (const p of busy) p.kill(9);
    }
  });

  test("a mount left uncounted by a process killed while mounting is replaced by the next mount and released by shutdown", () => {
    s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
    const forgetCounts = () => {
      // What a process killed between mount(8) and recording the count leaves: a kernel mount and no count.
      const db = new Database(join(s.run, "mounts.db"));
      db.run("DELETE FROM mounts");
      db.close();
    };
    const path = s.ok(["mount", "L"]).trim();
    forgetCounts();
    expect(s.ok(["mounted", "L"])).toBe("");
    expect(s.ok(["mount", "L"]).trim()).toBe(path);
    expect(readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.split(" ")[4] === path)).toHaveLength(1);
    forgetCounts();
    expect(s.cli(["shutdown"]).code).toBe(0);
    expect(mountEntry(path)).toBeUndefined();
  });

  test("while every kernel mount is counted, mounted or not, a command does not read the mount table at start; a mount or unmount killed before its count was written is finished by the next command", () => {
    s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
    s.ok(["create-layer", "-i", "M", "L"]);
    /** Whether a `layers` run opened the kernel's mount table (recovery comparing it with the counts). */
    const layersReadMountTable = () => {
      const r = Bun.spawnSync(["strace", "-f", "-e", "trace=openat", BINARY, ...s.globals, "layers"], { stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(0);
      return r.stderr.toString().includes("/proc/self/mountinfo");
    };
    const pathM = s.ok(["mount", "M"]).trim();
    expect(layersReadMountTable()).toBe(false);
    const path = s.ok(["mount", "L"]).trim();
    s.ok(["unmount", "L"]);
    expect(layersReadMountTable()).toBe(false);

    // Killed after mount(8), before counting: the next command unmounts L and leaves M, which is counted.
    const crashed = s.cli(["mount", "L"], { env: { OCI_STORAGE_CRASH_AT: "after-kernel-mount" } });
    expect(crashed.code).not.toBe(0);
    expect(mountEntry(path)).toBeDefined();
    expect(layersReadMountTable()).toBe(true);
    expect(mountEntry(path)).toBeUndefined();
    expect(mountEntry(pathM)).toBeDefined();
    expect(s.ok(["mounted", "L", "M"])).toBe("M mounted\n");
    expect(layersReadMountTable()).toBe(false);

    // Killed after umount(8), before dropping the count: check sees the stale row, the next command drops it.
    const killed = s.cli(["unmount", "M"], { env: { OCI_STORAGE_CRASH_AT: "after-kernel-unmount" } });
    expect(killed.code).not.toBe(0);
    expect(mountEntry(pathM)).toBeUndefined();
    const before = s.cli(["check", "--json"]);
    expect(before.code).toBe(1);
    expect(JSON.parse(before.stdout)).toEqual([{ kind: "mount", id: "M", problem: `recorded as mounted at ${pathM}, but the kernel has no such mount (stale)`, repairable: true }]);
    expect(layersReadMountTable()).toBe(true);
    expect(s.ok(["mounted", "M"])).toBe("");
    expect(layersReadMountTable()).toBe(false);
  });

  test.skipIf(FUSE_OVERLAYFS === undefined)(`a mount program (fuse-overlayfs) mounts instead of mount(8)${FUSE_OVERLAYFS ? "" : " [skipped: fuse-overlayfs is not installed]"}`, async () => {
    const program = ["--storage-opt", `overlay.mount_program=${FUSE_OVERLAYFS}`];
    expect(s.cli([...program, "status"]).stderr).toContain("Native Overlay Diff: false\n");
    s.ok([...program, "import-layer", "-i", "P", "-f", makeTar(BASE)]);
    s.ok([...program, "create-layer", "-i", "C", "P"]);
    let path = s.ok([...program, "mount", "C"]).trim();
    expect(mountEntry(path)!.fstype).toBe("fuse.fuse-overlayfs");
    writeFileSync(join(path, "added"), "x");
    rmSync(join(path, "etc", "hosts"));
    s.ok([...program, "unmount", "C"]);
    expect(s.ok([...program, "changes", "C"])).toBe('Add "/added"\nModify "/etc"\nDelete "/etc/hosts"\n');
    // The program dies: the dead mount no longer counts, and mount, unmount and shutdown recover.
    path = s.ok([...program, "mount", "C"]).trim();
    const pid = fusePidFor(path);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, "SIGKILL");
    for (let i = 0; i < 100 && processExists(pid!); i++) await Bun.sleep(20);
    expect(s.ok([...program, "mounted", "C"])).toBe("");
    expect(s.ok([...program, "mount", "C"]).trim()).toBe(path);
    expect(readFileSync(join(path, "added"), "utf8")).toBe("x");
    expect(s.ok([...program, "unmount", "C"])).toBe("C mountpoint unmounted\n");
    s.ok([...program, "mount", "C"]);
    process.kill(fusePidFor(path)!, "SIGKILL");
    expect(s.cli([...program, "shutdown"]).code).toBe(0);
    expect(mountEntry(path)).toBeUndefined();
  });
});

if (skip !== undefined) {
  describe("overlay driver", () => {
    test.skip(`skipped: ${skip}`, () => {});
  });
}

function readParameter(name: string): boolean {
  try {
    return readFileSync(`/sys/module/overlay/parameters/${name}`, "utf8").trim() === "Y";
  } catch {
    return false;
  }
}

/** The fuse-overlayfs process serving the mount at path. */
function fusePidFor(path: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv[0]?.endsWith("fuse-overlayfs") && argv.includes(path)) return Number(entry);
    } catch {
      // The process ended meanwhile.
    }
  }
  return undefined;
}

function processExists(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2];
    return state !== "Z";
  } catch {
    return false;
  }
}
