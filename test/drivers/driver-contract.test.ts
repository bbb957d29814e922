/**
 * The driver contract tested without the Store: each driver is built by createDriver on a
 * scratch graph root and called directly — create, mountSpec (as data: describing a mount
 * changes nothing on disk), mounting through the Mounter (real overlay mounts), applyDiff,
 * changes, diffSize, diff, layoutProblems and repairLayout, remove. The Store-level suite (conformance.test.ts) runs the same
 * scenarios through the Store.
 */
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyLayerTar } from "../../src/archive/apply.ts";
import { readTar } from "../../src/archive/tar-reader.ts";
import type { Driver, MountSpec } from "../../src/drivers/driver.ts";
import { createDriver } from "../../src/drivers/index.ts";
import { Mounter } from "../../src/drivers/mounter.ts";
import { NO_ID_MAPS } from "../../src/idmap.ts";
import { kernelMountPoints } from "../../src/sys/mount-table.ts";
import { availableDrivers } from "../helpers/cli.ts";
import { BASE, CHILD, CHILD_CHANGES, GRANDCHILD, GRANDCHILD_CHANGES, GRANDCHILD_FROM_BASE, show } from "./scenarios.ts";
import { describeTree, fileSource, layerTar, memorySink, removeScratch } from "./store-helpers.ts";

const RW = { readOnly: false, options: [], volatile: false, mountLabel: "" };
const RO = { ...RW, readOnly: true };
const tars = { base: layerTar(BASE), child: layerTar(CHILD), grandchild: layerTar(GRANDCHILD) };
afterAll(removeScratch);

/** Every path under dir with its type, mode, owner, size and content (mtimes too): what "no side effect" is checked against. */
function snapshot(dir: string): string[] {
  return existsSync(dir) ? describeTree(dir) : [];
}

/** Kernel mounts below dir. */
function mountsBelow(dir: string): string[] {
  return [...kernelMountPoints()].filter((point) => point.startsWith(`${dir}/`));
}

/** Bytes as a byte source. */
async function* bytesSource(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function mountTarget(spec: MountSpec): string {
  return spec.kind === "directory" ? spec.path : spec.target;
}

for (const name of availableDrivers()) {
  describe(`the ${name} driver, called directly`, () => {
    let dir: string;
    let graph: string;
    let run: string;
    let mounter: Mounter;
    let driver: Driver;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), `oci-driver-contract-${name}-`));
      graph = join(dir, "root");
      run = join(dir, "run");
      mounter = new Mounter(run);
      driver = await createDriver(name, { graphRoot: graph, runRoot: run, options: [], mounter });
      await driver.init();
    });
    afterEach(async () => {
      for (const m of mounter.mounted()) mounter.unmount(m.layer, true);
      await driver.shutdown();
      mounter.close();
      expect(mountsBelow(dir)).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    const compare = (id: string, from: string | undefined, fromIsParent: boolean) => ({ id, from, fromIsParent, idMaps: NO_ID_MAPS, fromIdMaps: NO_ID_MAPS });

    /** base <- child <- grandchild, each made by create and filled by applyDiff. */
    async function buildChain(): Promise<void> {
      const layers: Array<[string, string | undefined, string]> = [
        ["base", undefined, tars.base],
        ["child", "base", tars.child],
        ["grandchild", "child", tars.grandchild],
      ];
      for (const [id, parent, tar] of layers) {
        await driver.create(id, { parent, idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
        const applied = await driver.applyDiff(id, fileSource(tar), NO_ID_MAPS);
        expect(applied.diffSize).toBe(lstatSync(tar).size);
        driver.flushCreated(id);
      }
    }

    /** The layer's merged tree, seen through a real mount by the Mounter, as describeTree lines. */
    function mergedTree(id: string): string[] {
      const path = mounter.mount(id, driver.mountSpec(id, RO));
      try {
        return describeTree(path).slice(1);
      } finally {
        mounter.unmount(id, true);
      }
    }

    test("create makes an empty base layer and a child that shows its parent; exists and listLayerIds see them", async () => {
      await driver.create("base", { parent: undefined, idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
      expect(readdirSync(driver.contentDir("base"))).toEqual([]);
      await driver.applyDiff("base", fileSource(tars.base), NO_ID_MAPS);
      await driver.create("child", { parent: "base", idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
      expect(driver.exists("child")).toBe(true);
      expect(driver.exists("nothing")).toBe(false);
      expect(driver.listLayerIds().sort()).toEqual(["base", "child"]);
      expect(mergedTree("child")).toEqual(mergedTree("base"));
      // Creating again over a half-made layer starts from scratch.
      await driver.applyDiff("child", fileSource(tars.child), NO_ID_MAPS);
      await driver.create("child", { parent: "base", idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
      expect(mergedTree("child")).toEqual(mergedTree("base"));
    });

    test("mountSpec describes a mount as data and changes nothing on disk; the Mounter mounts it", async () => {
      await buildChain();
      if (name === "overlay") {
        // Things describing a mount used to do on disk, now the Mounter's preparation: a base layer's
        // missing empty/ dir, the marker a volatile mount leaves, a missing l/ link.
        rmSync(join(graph, "overlay", "base", "empty"), { recursive: true });
        const link = readFileSync(join(graph, "overlay", "child", "link"), "utf8");
        unlinkSync(join(graph, "overlay", "l", link));
      }
      const before = [snapshot(graph), snapshot(run)];
      const specs = [driver.mountSpec("base", RW), driver.mountSpec("grandchild", RW), driver.mountSpec("grandchild", RO), driver.mountSpec("child", { ...RW, volatile: true })];
      expect([snapshot(graph), snapshot(run)]).toEqual(before);
      expect(mountsBelow(dir)).toEqual([]);
      expect(specs.map((s) => s.kind)).toEqual(name === "vfs" ? ["directory", "directory", "directory", "directory"] : ["overlay", "overlay", "overlay", "overlay"]);
      expect(mountTarget(specs[1]!)).toBe(driver.mountPoint("grandchild"));
      // The Mounter runs the spec: the merged tree is the grandchild's.
      const path = mounter.mount("grandchild", specs[1]!);
      expect(path).toBe(driver.mountPoint("grandchild"));
      expect(readFileSync(join(path, "gone", "again"), "utf8")).toBe("again");
      expect(readFileSync(join(path, "etc", "hosts"), "utf8")).toBe("changed hosts\n");
      expect(existsSync(join(path, "etc", "passwd"))).toBe(false);
      if (name === "overlay") {
        expect(mountsBelow(dir)).toEqual([path]);
        expect(existsSync(join(graph, "overlay", "l", readFileSync(join(graph, "overlay", "child", "link"), "utf8")))).toBe(true);
        mounter.mount("base", specs[0]!);
        expect(existsSync(join(graph, "overlay", "base", "empty"))).toBe(true);
      }
      mounter.unmount("grandchild", true);
      mounter.unmount("base", true);
      expect(mountsBelow(dir)).toEqual([]);
    });

    test("changes against the parent, and against another layer through merged views", async () => {
      await buildChain();
      const names = () => snapshot(run).map((line) => line.split(" ")[0]);
      const before = names();
      expect(show(await driver.changes(compare("child", "base", true)))).toEqual(CHILD_CHANGES);
      expect(show(await driver.changes(compare("grandchild", "child", true)))).toEqual(GRANDCHILD_CHANGES);
      expect(show(await driver.changes(compare("grandchild", "base", false)))).toEqual(GRANDCHILD_FROM_BASE);
      // Views made for the comparison are gone again.
      expect(mountsBelow(dir)).toEqual([]);
      expect(names()).toEqual(before);
    });

    test("diff writes a layer tar that rebuilds the same tree; diffSize counts what it carries", async () => {
      await buildChain();
      for (const [id, from, fromIsParent] of [["child", "base", true], ["grandchild", "base", false]] as const) {
        const sink = memorySink();
        await driver.diff(compare(id, from, fromIsParent), sink);
        const bytes = sink.bytes();
        let contentBytes = 0;
        for await (const { entry } of readTar(bytesSource(bytes))) if (entry.type === "file" && !entry.path.split("/").pop()!.startsWith(".wh.")) contentBytes += entry.size;
        expect(await driver.diffSize(compare(id, from, fromIsParent))).toBe(contentBytes);
        // Applied on top of FROM, the diff gives the layer's tree.
        const copy = `${id}-again`;
        await driver.create(copy, { parent: from, idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
        await driver.applyDiff(copy, bytesSource(bytes), NO_ID_MAPS);
        // A layer tar rounds mtimes to the second (as Go's tar writer does): the trees match but for that.
        const withoutTimes = (lines: string[]) => lines.map((line) => line.replace(/ mtime=\d+/, ""));
        expect(withoutTimes(mergedTree(copy))).toEqual(withoutTimes(mergedTree(id)));
      }
      expect(mountsBelow(dir)).toEqual([]);
    });

    test("applyDiff writes only inside the layer and reports what the tar held", async () => {
      await driver.create("base", { parent: undefined, idMaps: NO_ID_MAPS, parentIdMaps: NO_ID_MAPS });
      const layerDir = name === "vfs" ? "/vfs/dir/base" : "/overlay/base";
      const outsideLayer = () => snapshot(graph).filter((line) => !line.startsWith(layerDir));
      const others = outsideLayer();
      const result = await driver.applyDiff("base", fileSource(tars.base), NO_ID_MAPS);
      expect(result.uidset).toEqual(expect.arrayContaining([0, 1000]));
      expect(readFileSync(join(driver.contentDir("base"), "data", "file1"), "utf8")).toBe("one");
      expect(outsideLayer()).toEqual(others);
      const applied = await applyLayerTar(mkdtempSync(join(dir, "plain-")), fileSource(tars.base), { whiteouts: "remove", idMaps: NO_ID_MAPS });
      expect(result.diffDigest).toBe(applied.diffDigest);
    });

    test("layoutProblems finds what only the driver keeps (overlay's l/ links) and repairLayout makes it again", async () => {
      await buildChain();
      for (const id of ["base", "child", "grandchild"]) expect(driver.layoutProblems(id)).toEqual([]);
      if (name === "overlay") {
        const links = join(graph, "overlay", "l");
        const link = readFileSync(join(graph, "overlay", "child", "link"), "utf8");
        rmSync(links, { recursive: true });
        expect(driver.layoutProblems("child")).toEqual([`overlay short link l/${link} is missing`]);
        driver.repairLayout("child");
        expect(readdirSync(links)).toEqual([link]);
        expect(driver.layoutProblems("child")).toEqual([]);
      }
    });

    test("remove takes a layer's directories (and overlay's link) away; a missing layer is no error", async () => {
      await buildChain();
      const linkOf = (id: string) => (name === "overlay" ? readFileSync(join(graph, "overlay", id, "link"), "utf8") : "");
      const link = linkOf("grandchild");
      await driver.remove("grandchild");
      expect(driver.exists("grandchild")).toBe(false);
      expect(driver.listLayerIds().sort()).toEqual(["base", "child"]);
      if (name === "overlay") expect(existsSync(join(graph, "overlay", "l", link))).toBe(false);
      await driver.remove("grandchild");
      await driver.remove("never-made");
      // The layers below are untouched.
      const path = mounter.mount("child", driver.mountSpec("child", RO));
      expect(readFileSync(join(path, "newfile"), "utf8")).toBe("new");
      expect(existsSync(join(path, "gone"))).toBe(false);
      mounter.unmount("child", true);
    });
  });
}
