/**
 * End-to-end: ID maps that shift, on vfs and overlay, side by side with containers-storage 1.43
 * (docs/cli-contract.md §5). The same commands run on our binary (each driver) and on 1.43 with
 * vfs (on this kernel 1.43's overlay uses idmapped mounts and records no maps at all, so its vfs
 * result is the reference for both drivers); what a script sees must match: the mounted trees
 * (paths, types, modes, owners, sizes, contents), the listings' JSON, `image`, `layer`,
 * `container`, the parent owners, exit statuses. The one deliberate difference (docs/cli.md): a
 * layer's own top directory is owned by the host IDs its container root maps to, where 1.43's
 * vfs keeps the parent's (or template's) owner unshifted; it is checked on its own.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PEER_BINARY, type RunResult, TestStore, availableDrivers, peerSkipReason } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";

const peerReason = peerSkipReason();
if (peerReason) console.log(`ID map tests run without the side-by-side check: ${peerReason}`);

const M1 = ["--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536"];
const M2 = ["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"];

let work: string;
/** A layer tar with several owners, setuid bits, a symlink, a hard link. */
let baseTar: string;
/** A second, smaller layer tar. */
let upperTar: string;
/** A layer tar with an owner outside a 65536-ID range. */
let bigIdTar: string;

/** A GNU tar of a tree whose entries get the given owners and modes. */
function tarWithOwners(name: string, entries: Array<{ path: string; kind: "dir" | "file" | "link" | "hardlink"; owner?: [number, number]; mode?: number; content?: string }>): string {
  const root = join(work, `${name}-tree`);
  mkdirSync(root);
  for (const e of entries) {
    const at = join(root, e.path);
    if (e.kind === "dir") mkdirSync(at);
    else if (e.kind === "file") writeFileSync(at, e.content ?? e.path);
    else if (e.kind === "link") symlinkSync(e.content!, at);
    else {
      // Another name of an inode made already, with its owner and mode.
      sh(["ln", join(root, e.content!), at]);
      continue;
    }
    sh(["chown", "-h", `${e.owner![0]}:${e.owner![1]}`, at]);
    if (e.mode !== undefined) chmodSync(at, e.mode);
  }
  const out = join(work, `${name}.tar`);
  sh(["tar", "-C", root, "--numeric-owner", "--mtime=2024-05-01 10:00:00", "--sort=name", "-cf", out, "."]);
  return out;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oci-idmaps-"));
  baseTar = tarWithOwners("base", [
    { path: "etc", kind: "dir", owner: [0, 0], mode: 0o755 },
    { path: "etc/passwd", kind: "file", owner: [0, 0], mode: 0o644 },
    { path: "home", kind: "dir", owner: [0, 0], mode: 0o755 },
    { path: "home/user", kind: "dir", owner: [1000, 1000], mode: 0o750 },
    { path: "home/user/file", kind: "file", owner: [1000, 1000], mode: 0o640 },
    { path: "srv", kind: "dir", owner: [1, 2], mode: 0o755 },
    { path: "srv/suid", kind: "file", owner: [3, 4], mode: 0o6755 },
    { path: "srv/link", kind: "link", owner: [5, 6], content: "../etc/passwd" },
    { path: "srv/hard", kind: "hardlink", content: "srv/suid" },
  ]);
  bigIdTar = tarWithOwners("big-id", [
    { path: "etc", kind: "dir", owner: [0, 0], mode: 0o755 },
    { path: "etc/passwd", kind: "file", owner: [0, 0], mode: 0o644 },
    // Outside a 65536-ID range: unmappable, so it shows as the overflow ID once shifted.
    { path: "big", kind: "file", owner: [70000, 70001], mode: 0o644 },
  ]);
  upperTar = tarWithOwners("upper", [
    { path: "etc", kind: "dir", owner: [0, 0], mode: 0o755 },
    { path: "etc/hostname", kind: "file", owner: [7, 8], mode: 0o600 },
  ]);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Host owner of container root under maps given as command-line options (our top directories). */
function rootOwnerOf(options: string[]): string {
  const host = (flag: string) => {
    const i = options.indexOf(flag);
    return i < 0 ? "0" : options[i + 1]!.split(":")[1]!;
  };
  return `${host("--uidmap")}:${host("--gidmap")}`;
}

/**
 * One store per binary, driven by the same commands. Generated IDs (mapped top layers, container
 * layers) are named in order of first appearance, separately per side, so that outputs compare.
 */
class Side {
  private readonly ids = new Map<string, string>();
  constructor(readonly store: TestStore, private readonly extra: string[] = []) {}

  cli(args: string[]): RunResult {
    return this.store.cli([...this.extra, ...args]);
  }

  ok(args: string[]): string {
    const r = this.cli(args);
    if (r.code !== 0) throw new Error(`${this.store.binary} ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Text with each 64-hex ID replaced by a stable label, fixed IDs (shorter) untouched; `created` times dropped. */
  normal(text: string): string {
    return text
      .replace(/[0-9a-f]{64}/g, (id) => {
        if (!this.ids.has(id)) this.ids.set(id, `<id${this.ids.size + 1}>`);
        return this.ids.get(id)!;
      })
      .replace(/"created":"[^"]*",?/g, "");
  }

  /** A command's normalised stdout (it must succeed). */
  out(args: string[]): string {
    return this.normal(this.ok(args));
  }

  /** Every entry of a layer's or container's mounted tree: path, type, mode, owner, size, a file's link count and content hash; the top directory apart. */
  tree(ref: string): { top: string; entries: string } {
    const path = this.ok(["mount", ref]).trim();
    try {
      const listing = sh(["sh", "-c", `cd "$1" && find . -printf '%p %y %m %U:%G %s %l\\n' | sort && find . -type f -printf '%p has %n links\\n' | sort && find . -type f -exec sha256sum {} + | sort -k2`, "sh", path]);
      const lines = listing.split("\n");
      const top = lines.find((line) => line.startsWith(". "))!;
      return { top: top.split(" ")[3]!, entries: lines.filter((line) => !line.startsWith(". ")).join("\n") };
    } finally {
      this.ok(["unmount", ref]);
    }
  }

  /** The parent owners of a mounted layer or container. */
  parentOwners(kind: "layer" | "container", ref: string): string {
    this.ok(["mount", ref]);
    try {
      return this.out([`${kind}-parent-owners`, ref]) + this.out([`${kind}-parent-owners`, "-j", ref]);
    } finally {
      this.ok(["unmount", ref]);
    }
  }

  destroy(): void {
    this.store.destroy();
  }
}

/** Runs fn on ours and, when installed, on 1.43 (vfs), and expects equal results. */
function sideBySide<T>(ours: Side, peer: Side | undefined, fn: (side: Side) => T): T {
  const mine = fn(ours);
  if (peer) expect(mine).toEqual(fn(peer));
  return mine;
}

/** Containers PREFIX1..PREFIX4 on an image: two with M1, one with M2, one without maps; then the listings a script reads. */
function containersWithMaps(run: (args: string[]) => string, prefix: string, image: string): void {
  run(["create-container", "-i", `${prefix}1`, ...M1, image]);
  run(["create-container", "-i", `${prefix}2`, ...M1, image]);
  run(["create-container", "-i", `${prefix}3`, ...M2, image]);
  run(["create-container", "-i", `${prefix}4`, image]);
  run(["image", image]);
  run(["images", "-j"]);
  run(["layers", "-j"]);
  run(["containers", "-j"]);
}

/** The overflow IDs the kernel shows unmappable IDs as. */
const overflow = () => `${readFileSync("/proc/sys/kernel/overflowuid", "utf8").trim()}:${readFileSync("/proc/sys/kernel/overflowgid", "utf8").trim()}`;

for (const driver of availableDrivers()) {
  describe(`ID maps on ${driver}, side by side with containers-storage 1.43 (vfs)`, () => {
    let ours: Side;
    let peer: Side | undefined;
    const both = <T>(fn: (side: Side) => T): T => sideBySide(ours, peer, fn);
    const run = (args: string[]) => both((s) => s.out(args));

    beforeAll(() => {
      ours = new Side(new TestStore(driver));
      peer = peerReason ? undefined : new Side(new TestStore("vfs", PEER_BINARY));
    });
    afterAll(() => {
      ours.destroy();
      peer?.destroy();
    });

    test("create-layer and import-layer with maps on a parent with other maps: files shift as newmap(parentmap⁻¹(owner))", () => {
      run(["import-layer", "-i", "base", "-f", baseTar]);
      run(["create-layer", "-i", "m1", ...M1, "base"]);
      run(["create-layer", "-i", "m2", ...M2, "m1"]);
      run(["create-layer", "-i", "m2child", "m2"]);
      run(["create-layer", "-i", "host", "--hostuidmap", "--hostgidmap", "m1"]);
      run(["create-layer", "-i", "uidonly", "--uidmap", "0:400000:65536", "m1"]);
      run(["import-layer", "-i", "imported", "--uidmap", "0:500000:65536", "--gidmap", "0:500000:65536", "-f", upperTar, "m1"]);
      for (const id of ["base", "m1", "m2", "m2child", "host", "uidonly", "imported"]) both((s) => ({ id, layer: s.out(["layer", id]), tree: s.tree(id).entries }));
      run(["layers", "-j"]);
      // What the shift gives, spelled out for some of them.
      const m1 = ours.tree("m1").entries;
      expect(m1).toContain("./home/user/file f 640 101000:201000 ");
      expect(m1).toContain("./srv/suid f 6755 100003:200004 ");
      expect(m1).toContain("./srv/hard has 2 links");
      expect(ours.tree("m2").entries).toContain("./srv/link l 777 300005:300006 ");
      expect(ours.tree("uidonly").entries).toContain("./home/user/file f 640 401000:201000 ");
      expect(ours.tree("host").entries).toContain("./home/user/file f 640 1000:1000 ");
      expect(ours.tree("imported").entries).toContain("./etc/hostname f 600 500007:500008 ");
      // Our top directories belong to container root (1.43's vfs keeps the parent's: docs/cli.md).
      expect(ours.tree("m1").top).toBe(rootOwnerOf(M1));
      expect(ours.tree("m2child").top).toBe(rootOwnerOf(M2));
      expect(ours.tree("host").top).toBe("0:0");
      expect(ours.tree("imported").top).toBe("500000:500000");
    });

    test("comparing a shifted layer with its parent sees what the shift changed, as 1.43 does", () => {
      both((s) => [s.out(["changes", "m1"]), s.out(["diffsize", "m1"]), s.out(["changes", "m2child"]), s.out(["diffsize", "m2"]), s.out(["changes", "m2", "base"])]);
    });

    test("an ID outside the new maps becomes the overflow ID; shifting that layer again fails, naming the file", () => {
      run(["import-layer", "-i", "bigid", "-f", bigIdTar]);
      run(["create-layer", "-i", "bigm1", ...M1, "bigid"]);
      both((s) => [s.tree("bigm1").entries, s.out(["changes", "bigm1"]), s.out(["diffsize", "bigm1"])]);
      expect(ours.tree("bigm1").entries).toContain(`./big f 644 ${overflow()} `);
      // 1.43 means to refuse this too, but its parallel chown loses the error on small trees
      // (docs/cli.md), so only ours is checked.
      const again = ours.cli(["create-layer", "-i", "bigm2", ...M2, "bigm1"]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^mapping host ID pair \d+:\d+ for "big" to container: host ID \d+ cannot be mapped to a container ID\n$/);
      expect(ours.cli(["exists", "-l", "bigm2"]).code).toBe(1);
      // 1.43 writes a tar without the file it cannot map back; we refuse it, naming the file (docs/cli.md).
      const diff = ours.cli(["diff", "-u", "bigm1"]);
      expect(diff.code).toBe(1);
      expect(diff.stderr).toContain("/big is owned by host UID");
      for (const id of ["bigm1", "bigid"]) both((s) => s.cli(["delete-layer", id]).code);
      expect(ours.cli(["check"]).code).toBe(0);
    });

    test("layer-parent-owners: only the owners of directories above the mount point that the maps cannot map", () => {
      both((s) => s.parentOwners("layer", "m1"));
      both((s) => s.parentOwners("layer", "base"));
    });

    test("layers made with different maps delete, leaf first, as on vfs", () => {
      run(["create-layer", "-i", "ro1", "-r", "--uidmap", "0:100:100000", "--gidmap", "0:100:100000", "base"]);
      run(["create-layer", "-i", "ro2", "-r", "--uidmap", "0:200000:100000", "--gidmap", "0:200000:100000", "ro1"]);
      both((s) => s.tree("ro2").entries);
      for (const id of ["ro2", "ro1", "imported", "uidonly", "host", "m2child", "m2", "m1"]) both((s) => s.cli(["delete-layer", id]).code);
      run(["layers"]);
      expect(ours.cli(["check"]).code).toBe(0);
    });

    test("containers with maps on an image: one mapped top layer per distinct map, listed on the image, shared, deleted with the image", () => {
      run(["create-layer", "-i", "top", "base"]);
      run(["create-image", "-i", "img", "-n", "image", "top"]);
      containersWithMaps(run, "c", "image");
      run(["layers"]);
      for (const id of ["c1", "c3", "c4"]) run(["container", id]);
      const image = JSON.parse(ours.ok(["images", "-j"]))[0];
      expect(image["mapped-layers"].length).toBe(2);
      for (const id of ["c1", "c2", "c3", "c4"]) both((s) => ({ id, tree: s.tree(id).entries }));
      expect(ours.tree("c2").entries).toContain("./home/user/file f 640 101000:201000 ");
      expect(ours.tree("c3").top).toBe(rootOwnerOf(M2));
      // c1 is the last made with M1: 1.43's vfs has just re-owned its vfs/dir to M1's root.
      run(["create-container", "-i", "c5", ...M1, "image"]);
      both((s) => s.parentOwners("container", "c5"));
      both((s) => s.parentOwners("container", "c4"));
      expect(ours.cli(["check"]).code).toBe(0);
      for (const id of ["c1", "c2", "c3", "c4", "c5"]) run(["delete-container", id]);
      run(["delete-image", "img"]);
      run(["layers"]);
      expect(ours.cli(["check"]).code).toBe(0);
    });

    test("a container without maps on an image made with maps gets a mapped top layer with none, and no unmapped parent owners", () => {
      run(["import-layer", "-i", "mappedbase", ...M2, "-f", upperTar]);
      run(["create-image", "-i", "mappedimg", "mappedbase"]);
      run(["create-container", "-i", "plain", "mappedimg"]);
      run(["image", "mappedimg"]);
      run(["layers", "-j"]);
      both((s) => s.tree("plain").entries);
      const owners = both((s) => s.parentOwners("container", "plain"));
      expect(owners).toContain("UIDs: []\nGIDs: []\n");
      run(["delete-container", "plain"]);
      run(["delete-image", "mappedimg"]);
      expect(ours.cli(["check"]).code).toBe(0);
    });
  });

  describe(`ID maps on an image of a read-only store on ${driver}, side by side with containers-storage 1.43 (vfs)`, () => {
    let ours: Side;
    let peer: Side | undefined;
    let roOurs: TestStore;
    let roPeer: TestStore | undefined;
    const both = <T>(fn: (side: Side) => T): T => sideBySide(ours, peer, fn);
    const run = (args: string[]) => both((s) => s.out(args));

    /** Everything under a read-only store's graph root, as it is now. */
    const roState = (store: TestStore) => {
      const files = readdirSync(store.graph, { recursive: true, withFileTypes: true })
        .map((e) => {
          const path = join(e.parentPath, e.name);
          const st = statSync(path, { throwIfNoEntry: false });
          return `${path} ${st?.mode} ${st?.uid}:${st?.gid} ${st?.mtimeMs} ${e.isFile() ? Bun.hash(readFileSync(path)) : ""}`;
        });
      return [`${store.graph} ${statSync(store.graph).mtimeMs}`, ...files.sort()];
    };

    beforeAll(() => {
      roOurs = new TestStore(driver);
      roOurs.ok(["import-layer", "-i", "rolayer", "-f", baseTar]);
      roOurs.ok(["create-image", "-i", "roimg", "-n", "roimage", "rolayer"]);
      roOurs.ok(["shutdown"]);
      ours = new Side(new TestStore(driver), ["--storage-opt", `${driver}.imagestore=${roOurs.graph}`]);
      if (!peerReason) {
        roPeer = new TestStore("vfs", PEER_BINARY);
        roPeer.ok(["import-layer", "-i", "rolayer", "-f", baseTar]);
        roPeer.ok(["create-image", "-i", "roimg", "-n", "roimage", "rolayer"]);
        peer = new Side(new TestStore("vfs", PEER_BINARY), ["--storage-opt", `vfs.imagestore=${roPeer.graph}`]);
      }
    });
    afterAll(() => {
      ours.destroy();
      peer?.destroy();
      roOurs.destroy();
      roPeer?.destroy();
    });

    test("each container sees its own shifted owners; the read-only image gets no mapped top layer (its record cannot change); the store is never written", () => {
      const before = roState(roOurs);
      containersWithMaps(run, "r", "roimage");
      for (const id of ["r1", "r2", "r3", "r4"]) both((s) => ({ id, tree: s.tree(id).entries }));
      expect(ours.tree("r1").entries).toContain("./home/user/file f 640 101000:201000 ");
      expect(ours.tree("r3").entries).toContain("./home/user/file f 640 301000:301000 ");
      expect(ours.tree("r4").entries).toContain("./home/user/file f 640 1000:1000 ");
      expect(ours.cli(["check"]).code).toBe(0);
      for (const id of ["r1", "r2", "r3", "r4"]) run(["delete-container", id]);
      run(["layers"]);
      expect(ours.cli(["check"]).code).toBe(0);
      expect(roState(roOurs)).toEqual(before);
    });
  });
}
