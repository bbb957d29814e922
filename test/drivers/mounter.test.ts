/** Mount counting in the run root: the counts database exists only once something was mounted. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Mounter, kernelMountPoints, mountNow, unmountPath } from "../../src/drivers/mounter.ts";
import { overlaySkipReason } from "../helpers/cli.ts";

describe("mounter", () => {
  let dir: string;
  let runRoot: string;
  let layerDir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "oci-mounter-"));
    runRoot = join(dir, "run");
    layerDir = join(dir, "layer");
    mkdirSync(layerDir);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("before any mount, every question is answered without creating the counts database", () => {
    const mounter = new Mounter(runRoot);
    expect(mounter.count("L")).toBe(0);
    expect(mounter.mountPoint("L")).toBeUndefined();
    expect(mounter.mounted()).toEqual([]);
    expect(mounter.staleMounts()).toEqual([]);
    expect(mounter.unmount("L", true)).toBe(true);
    mounter.close();
    expect(existsSync(join(runRoot, "mounts.db"))).toBe(false);
  });

  test("the first mount creates the database; another process's mounter sees and drops the counts", () => {
    const first = new Mounter(runRoot);
    expect(first.mount("L", { kind: "directory", path: layerDir })).toBe(layerDir);
    expect(first.mount("L", { kind: "directory", path: layerDir })).toBe(layerDir);
    first.close();
    expect(existsSync(join(runRoot, "mounts.db"))).toBe(true);

    const second = new Mounter(runRoot);
    expect(second.count("L")).toBe(2);
    expect(second.mounted()).toEqual([{ layer: "L", path: layerDir, count: 2 }]);
    expect(second.unmount("L", false)).toBe(false);
    expect(second.unmount("L", false)).toBe(true);
    expect(second.count("L")).toBe(0);
    second.close();
  });
});

/** The mount options (generic and filesystem) the kernel lists for a mount point. */
function mountOptions(path: string): string[] | undefined {
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    if (fields[4] !== path) continue;
    const dash = fields.indexOf("-");
    return [...fields[5]!.split(","), ...fields[dash + 3]!.split(",")];
  }
  return undefined;
}

describe.skipIf(overlaySkipReason() !== undefined)("overlay mounts", () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "oci-mount-"));
    for (const sub of ["lower", "upper", "work"]) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, "lower", "file"), "from below");
  });

  afterEach(() => {
    for (const point of kernelMountPoints()) if (point.startsWith(`${dir}/`)) unmountPath(point);
    rmSync(dir, { recursive: true, force: true });
  });

  test("options relative to the spec's directory; generic options become mount flags, the rest reach overlayfs", () => {
    const target = join(dir, "merged");
    mountNow({ kind: "overlay", target, options: "lowerdir=lower,upperdir=upper,workdir=work,nodev,noatime,ro", cwd: dir });
    expect(readFileSync(join(target, "file"), "utf8")).toBe("from below");
    const options = mountOptions(target)!;
    expect(options).toEqual(expect.arrayContaining(["ro", "nodev", "noatime", "lowerdir=lower"]));
    unmountPath(target);
    expect(mountOptions(target)).toBeUndefined();
    expect(process.cwd()).not.toBe(dir);
  });

  test("an option only mount(8) understands still mounts; a bad option fails naming the mount point", () => {
    const target = join(dir, "merged");
    mountNow({ kind: "overlay", target, options: "lowerdir=lower,upperdir=upper,workdir=work,x-oci-note=1", cwd: dir });
    expect(mountOptions(target)).toBeDefined();
    unmountPath(target);
    expect(() => mountNow({ kind: "overlay", target, options: "lowerdir=lower,upperdir=upper,workdir=work,no_such_option", cwd: dir })).toThrow(target);
    expect(mountOptions(target)).toBeUndefined();
  });

  test("unmounting a busy mount detaches it instead of failing; unmounting what is not mounted does nothing", async () => {
    const target = join(dir, "merged");
    mountNow({ kind: "overlay", target, options: "lowerdir=lower,upperdir=upper,workdir=work", cwd: dir });
    const holder = Bun.spawn(["sleep", "30"], { cwd: target });
    try {
      unmountPath(target);
      expect(mountOptions(target)).toBeUndefined();
    } finally {
      holder.kill();
      await holder.exited;
    }
    expect(() => unmountPath(target)).not.toThrow();
  });
});
