/** The overlay driver's options, layout and mount descriptions, checked without mounting. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MountRequest, MountSpec } from "../../src/drivers/driver.ts";
import { Mounter } from "../../src/drivers/mounter.ts";
import { OverlayDriver } from "../../src/drivers/overlay.ts";
import { MAX_LOWER_LAYERS } from "../../src/drivers/overlay-mount.ts";
import { parseOverlayOptions } from "../../src/drivers/overlay-options.ts";
import { InitError, NotSupportedError } from "../../src/errors.ts";
import { NO_ID_MAPS } from "../../src/idmap.ts";
import { overlaySkipReason } from "../helpers/cli.ts";

const RW: MountRequest = { readOnly: false, options: [], volatile: false, mountLabel: "" };
const RO: MountRequest = { ...RW, readOnly: true };

describe("overlay options", () => {
  test("accepted with the overlay., overlay2. or . prefix; unknown keys fail naming the key", () => {
    const parsed = parseOverlayOptions(["overlay.mountopt=nodev,noatime", "overlay2.mountopt=nosuid", ".skip_mount_home=true", "overlay.force_mask=shared", "OVERLAY.ignore_chown_errors=1"]);
    expect(parsed.mountOptions).toEqual(["nodev", "noatime", "nosuid"]);
    expect(parsed.mountProgram).toBeUndefined();
    expect(() => parseOverlayOptions(["overlay.bogus=1"])).toThrow(new InitError("overlay: Unknown option overlay.bogus"));
    expect(() => parseOverlayOptions(["mountopt=nodev"])).toThrow(new InitError("overlay: Unknown option mountopt"));
    expect(() => parseOverlayOptions(["vfs.imagestore=/x"])).toThrow(new InitError("overlay: Unknown option vfs.imagestore"));
  });

  test("image stores must be absolute; a mount program must exist; quotas are refused rather than ignored", () => {
    expect(parseOverlayOptions(["overlay.imagestore=/a,/b", ".additionalimagestore=/c"]).imageStores).toEqual(["/a", "/b", "/c"]);
    expect(() => parseOverlayOptions(["overlay.imagestore=rel"])).toThrow('overlay: image path "rel" is not absolute.  Can not be relative');
    expect(() => parseOverlayOptions(["overlay.mount_program=/no/such/program"])).toThrow(`overlay: can't stat program "/no/such/program": no such file or directory`);
    expect(parseOverlayOptions(["overlay.mount_program=/bin/true"]).mountProgram).toBe("/bin/true");
    expect(() => parseOverlayOptions(["overlay.size=10G"])).toThrow(NotSupportedError);
  });
});

const skip = overlaySkipReason();

describe.skipIf(skip !== undefined)("overlay layout and mount descriptions", () => {
  let dir: string;
  let mounter: Mounter;
  let driver: OverlayDriver;
  const open = async (options: string[] = []) => {
    driver = new OverlayDriver(join(dir, "root"), join(dir, "run"), parseOverlayOptions(options), mounter.views(join(dir, "run", "overlay")));
    await driver.init();
    return driver;
  };
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "oci-overlay-driver-"));
    mounter = new Mounter(join(dir, "run"));
    await open();
  });
  afterEach(() => {
    mounter.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const home = () => join(dir, "root", "overlay");
  const link = (id: string) => readFileSync(join(home(), id, "link"), "utf8");
  const spec = (id: string, request = RW) => driver.mountSpec(id, request) as Extract<MountSpec, { kind: "overlay" }>;

  async function chain(depth: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < depth; i++) {
      const id = `layer-${i}`;
      await driver.create(id, { parent: ids[i - 1], idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
      ids.push(id);
    }
    return ids;
  }

  test("read-write mounts stack the parents (nearest first) under the layer's diff; read-only ones use lower dirs only", async () => {
    const [base, mid, top] = await chain(3);
    expect(spec(top!)).toEqual({
      kind: "overlay",
      target: join(home(), top!, "merged"),
      options: `lowerdir=${link(mid!)}:${link(base!)},upperdir=${link(top!)},workdir=${link(top!)}/../work`,
      cwd: join(home(), "l"),
      program: undefined,
      prepare: { directories: [], remove: [join(home(), top!, "work", "work", "incompat", "volatile")], links: [] },
    });
    expect(spec(top!, RO).options).toBe(`lowerdir=${link(top!)}:${link(mid!)}:${link(base!)},ro,nosuid,noexec`);
    // A base layer mounts over its empty/ dir; read-only, the kernel wants two lower dirs.
    expect(spec(base!).options).toBe(`lowerdir=${link(base!)}/../empty,upperdir=${link(base!)},workdir=${link(base!)}/../work`);
    expect(spec(base!, RO).options).toBe(`lowerdir=${link(base!)}:${link(base!)}/../empty,ro,nosuid,noexec`);
    expect(spec(mid!, { ...RW, volatile: true, options: ["noatime"] }).options).toEndWith(",volatile,noatime");
    expect(spec(mid!, { ...RO, volatile: true }).options).not.toContain("volatile");
  });

  test(`a chain of ${MAX_LOWER_LAYERS} layers fits in one page of mount options; one more is refused by name`, async () => {
    await open(["overlay.mountopt=nodev"]);
    const ids = await chain(MAX_LOWER_LAYERS + 2);
    const rw = spec(ids[MAX_LOWER_LAYERS]!).options;
    const ro = spec(ids[MAX_LOWER_LAYERS - 1]!, RO).options;
    console.log(`mount options for ${MAX_LOWER_LAYERS} lower dirs: read-write ${rw.length} bytes, read-only ${ro.length} bytes`);
    expect(rw.length).toBeLessThan(4096 - 300);
    expect(ro.length).toBeLessThan(4096 - 300);
    expect(() => spec(ids[MAX_LOWER_LAYERS + 1]!)).toThrow(`max depth exceeded: layer ${ids[MAX_LOWER_LAYERS + 1]} needs 501 lower layers, overlayfs stacks at most 500`);
    await open([`overlay.mountopt=context="${"x".repeat(700)}"`]);
    expect(() => spec(ids[MAX_LOWER_LAYERS]!)).toThrow(/^overlay: the mount options of layer layer-500 take \d+ bytes, more than the kernel's limit of 4095$/);
  }, 60_000);

  test("a missing l/ link is recreated from the layer's link file when the layer is mounted", async () => {
    const [base, top] = await chain(2);
    unlinkSync(join(home(), "l", link(base!)));
    expect(spec(top!).options).toStartWith(`lowerdir=${link(base!)},`);
    // Describing the mount writes nothing: the link comes back when the Mounter mounts.
    expect(existsSync(join(home(), "l", link(base!)))).toBe(false);
    const target = mounter.mount(top!, spec(top!));
    try {
      expect(existsSync(join(home(), "l", link(base!)))).toBe(true);
    } finally {
      mounter.unmount(top!, true);
    }
    expect(target).toBe(join(home(), top!, "merged"));
  });

  test("removing a layer removes its link; a half-made layer is made again from scratch", async () => {
    const [base] = await chain(1);
    const old = link(base!);
    await driver.create(base!, { parent: undefined, idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
    expect(existsSync(join(home(), "l", old))).toBe(false);
    await driver.remove(base!);
    expect(driver.listLayerIds()).toEqual([]);
    expect(existsSync(join(home(), "l"))).toBe(true);
  });

  test("the link directory's name is not a layer ID", async () => {
    for (const reserved of ["l", ".has-mount-program"]) {
      await expect(driver.create(reserved, { parent: undefined, idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS })).rejects.toThrow(`layer ID "${reserved}" is reserved by the overlay driver`);
      await driver.remove(reserved);
    }
    expect(existsSync(join(home(), "l"))).toBe(true);
    expect(existsSync(join(home(), ".has-mount-program"))).toBe(true);
  });

  test("a layer whose ID maps differ from its parent's, or made from a template, holds a re-owned copy of that layer's tree and stacks on nothing", async () => {
    const [base, mid] = await chain(2);
    writeFileSync(join(home(), base!, "diff", "from-base"), "base\n");
    chownSync(join(home(), base!, "diff", "from-base"), 1000, 1000);
    writeFileSync(join(home(), mid!, "diff", "from-mid"), "mid\n");
    const shifted = { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }] };
    await driver.create("shifted", { parent: mid, idMaps: shifted, parentIdMaps: NO_ID_MAPS });
    await driver.create("mapped", { parent: base, idMaps: shifted, parentIdMaps: NO_ID_MAPS, template: { id: mid!, idMaps: NO_ID_MAPS } });
    for (const id of ["shifted", "mapped"]) {
      const diff = join(home(), id, "diff");
      expect(existsSync(join(home(), id, "lower"))).toBe(false);
      expect(spec(id).options).toStartWith(`lowerdir=${link(id)}/../empty,`);
      expect([statSync(diff).uid, statSync(diff).gid]).toEqual([100000, 200000]);
      expect([statSync(join(diff, "from-base")).uid, statSync(join(diff, "from-base")).gid]).toEqual([101000, 201000]);
      expect(readFileSync(join(diff, "from-mid"), "utf8")).toBe("mid\n");
    }
    // The copies were read through temporary views, which are gone.
    expect(readdirSync(join(dir, "run", "overlay")).filter((name) => name.startsWith("view-"))).toEqual([]);
    // A child with the same maps stacks on the copy alone.
    await driver.create("child", { parent: "shifted", idMaps: shifted, parentIdMaps: shifted });
    expect(readFileSync(join(home(), "child", "lower"), "utf8")).toBe(`l/${link("shifted")}`);
  });
});

if (skip !== undefined) {
  test.skip(`overlay layout and mount descriptions [skipped: ${skip}]`, () => {});
}

