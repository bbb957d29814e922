/**
 * End-to-end: ID maps that shift, on vfs and overlay (docs/cli-contract.md §5), spelled out:
 * which owner each file gets, the top directory's owner, an image's mapped top layers, images of
 * read-only stores, and what is refused. The same scenarios run side by side with
 * containers-storage 1.43 in test/oracle/scenarios/idmaps.ts; this file checks the values
 * themselves, and what the oracle cannot compare (1.43's refusal to shift an unmappable owner
 * is lost to a race in its parallel chown).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers, runBinary } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";

const M1 = ["--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536"];
const M2 = ["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"];

let work: string;
/** A layer tar with several owners, setuid bits, a symlink, a hard link. */
let baseTar: string;
/** A layer tar with an owner outside a 65536-ID range. */
let bigIdTar: string;

type Entry = { path: string; kind: "dir" | "file" | "link" | "hardlink"; owner?: [number, number]; mode?: number; content?: string };

/** A GNU tar of a tree whose entries get the given owners and modes (a hard link shares its target's). */
function tarWithOwners(name: string, entries: Entry[]): string {
  const root = join(work, `${name}-tree`);
  mkdirSync(root);
  for (const e of entries) {
    const at = join(root, e.path);
    if (e.kind === "hardlink") {
      sh(["ln", join(root, e.content!), at]);
      continue;
    }
    if (e.kind === "dir") mkdirSync(at);
    else if (e.kind === "file") writeFileSync(at, e.content ?? e.path);
    else symlinkSync(e.content!, at);
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
    { path: "big", kind: "file", owner: [70000, 70001], mode: 0o644 },
  ]);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The overflow IDs the kernel shows unmappable IDs as. */
const overflow = () => `${readFileSync("/proc/sys/kernel/overflowuid", "utf8").trim()}:${readFileSync("/proc/sys/kernel/overflowgid", "utf8").trim()}`;

/**
 * A mounted tree's entries as "path type mode uid:gid", plus "path has N links" for files, and
 * ". uid:gid" for the top directory (whose mode is the driver's, as in 1.43: vfs takes a tar's
 * "./" entry, overlay keeps its upper dir's).
 */
function tree(s: { ok(args: string[]): string }, ref: string): string[] {
  const path = s.ok(["mount", ref]).trim();
  try {
    const script = `cd "$1" && stat -c '. %u:%g' . && find . -mindepth 1 -printf '%p %y %m %U:%G\\n' && find . -type f -printf '%p has %n links\\n'`;
    return sh(["sh", "-c", script, "sh", path]).trim().split("\n").sort();
  } finally {
    s.ok(["unmount", ref]);
  }
}

for (const driver of availableDrivers()) {
  describe(`ID maps on ${driver}`, () => {
    let s: TestStore;
    beforeAll(() => {
      s = new TestStore(driver);
    });
    afterAll(() => s.destroy());

    test("a layer with maps on a parent with other maps: each owner becomes newmap(parentmap⁻¹(owner)), the top directory container root's", () => {
      s.ok(["import-layer", "-i", "base", "-f", baseTar]);
      s.ok(["create-layer", "-i", "m1", ...M1, "base"]);
      s.ok(["create-layer", "-i", "m2", ...M2, "m1"]);
      s.ok(["create-layer", "-i", "m2child", "m2"]);
      s.ok(["create-layer", "-i", "host", "--hostuidmap", "--hostgidmap", "m1"]);
      s.ok(["create-layer", "-i", "uidonly", "--uidmap", "0:400000:65536", "m1"]);
      expect(tree(s, "m1")).toEqual(
        [
          ". 100000:200000",
          "./etc d 755 100000:200000",
          "./etc/passwd f 644 100000:200000",
          "./home d 755 100000:200000",
          "./home/user d 750 101000:201000",
          "./home/user/file f 640 101000:201000",
          "./home/user/file has 1 links",
          "./etc/passwd has 1 links",
          "./srv d 755 100001:200002",
          "./srv/hard f 6755 100003:200004",
          "./srv/hard has 2 links",
          "./srv/link l 777 100005:200006",
          "./srv/suid f 6755 100003:200004",
          "./srv/suid has 2 links",
        ].sort(),
      );
      expect(tree(s, "m2")).toContain("./home/user/file f 640 301000:301000");
      // A child with its parent's maps (inherited) shows the parent's owners.
      expect(tree(s, "m2child")).toEqual(tree(s, "m2"));
      expect(tree(s, "host")).toContain("./home/user/file f 640 1000:1000");
      expect(tree(s, "host")).toContain(". 0:0");
      // Only the UID map given: the GID map is the parent's.
      expect(tree(s, "uidonly")).toContain("./home/user/file f 640 401000:201000");
      expect(s.ok(["layer", "uidonly"])).toContain("UID mapping: (container=0, host=400000, size=65536)\nGID mapping: (container=0, host=200000, size=65536)\n");
      expect(s.cli(["check"]).code).toBe(0);
    });

    test("an ID the new maps lack becomes the overflow ID; shifting that layer again fails, naming the file, and makes nothing", () => {
      s.ok(["import-layer", "-i", "bigid", "-f", bigIdTar]);
      s.ok(["create-layer", "-i", "bigm1", ...M1, "bigid"]);
      expect(tree(s, "bigm1")).toContain(`./big f 644 ${overflow()}`);
      const again = s.cli(["create-layer", "-i", "bigm2", ...M2, "bigm1"]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^mapping host ID pair \d+:\d+ for "big" to container: host ID \d+ cannot be mapped to a container ID\n$/);
      expect(s.cli(["exists", "-l", "bigm2"]).code).toBe(1);
      const diff = s.cli(["diff", "-u", "bigm1"]);
      expect(diff.code).toBe(1);
      expect(diff.stderr).toMatch(/^\/big is owned by host UID \d+, which the layer's UID map does not cover\n$/);
      expect(s.cli(["check"]).code).toBe(0);
    });

    test("layers made with different maps delete, leaf first", () => {
      s.ok(["create-layer", "-i", "ro1", "-r", "--uidmap", "0:100:100000", "--gidmap", "0:100:100000", "base"]);
      s.ok(["create-layer", "-i", "ro2", "-r", "--uidmap", "0:200000:100000", "--gidmap", "0:200000:100000", "ro1"]);
      expect(tree(s, "ro2")).toContain("./home/user/file f 640 201000:201000");
      for (const id of ["ro2", "ro1", "bigm1", "bigid", "uidonly", "host", "m2child", "m2", "m1"]) expect(s.cli(["delete-layer", id]).stderr).toBe("");
      expect(JSON.parse(s.ok(["layers", "-j"])).map((l: { id: string }) => l.id)).toEqual(["base"]);
      expect(s.cli(["check"]).code).toBe(0);
    });

    test("containers with maps: one mapped top layer per distinct map, on the top layer's parent, shared, deleted with the image", () => {
      s.ok(["create-layer", "-i", "top", "base"]);
      s.ok(["create-image", "-i", "img", "top"]);
      s.ok(["create-container", "-i", "c1", ...M1, "img"]);
      s.ok(["create-container", "-i", "c2", ...M1, "img"]);
      s.ok(["create-container", "-i", "c3", ...M2, "img"]);
      s.ok(["create-container", "-i", "c4", "img"]);
      const mapped: string[] = JSON.parse(s.ok(["images", "-j"]))[0]["mapped-layers"];
      expect(mapped.length).toBe(2);
      expect(s.ok(["image", "img"])).toContain(`Top Layer: top\nTop Layer: ${mapped[0]}\nTop Layer: ${mapped[1]}\n`);
      const layers = new Map<string, any>(JSON.parse(s.ok(["layers", "-j"])).map((l: any) => [l.id, l]));
      expect(mapped.map((id) => layers.get(id).parent)).toEqual(["base", "base"]);
      const containers = new Map<string, any>(JSON.parse(s.ok(["containers", "-j"])).map((c: any) => [c.id, c]));
      expect(["c1", "c2", "c3", "c4"].map((c) => layers.get(containers.get(c).layer).parent)).toEqual([mapped[0], mapped[0], mapped[1], "top"]);
      expect(containers.get("c4").uidmap).toBeUndefined();
      expect(tree(s, "c2")).toContain("./home/user/file f 640 101000:201000");
      expect(tree(s, "c2")).toContain(". 100000:200000");
      expect(tree(s, "c3")).toContain("./srv/suid f 6755 300003:300004");
      expect(tree(s, "c4")).toContain("./home/user/file f 640 1000:1000");
      expect(s.cli(["delete-image", "img"]).code).toBe(1);
      for (const c of ["c1", "c2", "c3", "c4"]) s.ok(["delete-container", c]);
      // delete-image names each layer it deletes on stderr, as 1.43 does: the mapped top layers first.
      const deleted = s.cli(["delete-image", "img"]);
      expect(deleted.code).toBe(0);
      expect(deleted.stderr).toBe(`img: ${mapped[0]}\nimg: ${mapped[1]}\nimg: top\nimg: base\n`);
      expect(s.ok(["layers"])).toBe("");
      expect(s.cli(["check"]).code).toBe(0);
    });

    test("a container without maps on an image made with maps goes on a mapped top layer without maps, and has no unmapped parent owners", () => {
      s.ok(["import-layer", "-i", "mappedbase", ...M2, "-f", baseTar]);
      s.ok(["create-image", "-i", "mappedimg", "mappedbase"]);
      s.ok(["create-container", "-i", "plain", "mappedimg"]);
      expect(tree(s, "plain")).toContain("./home/user/file f 640 1000:1000");
      s.ok(["mount", "plain"]);
      expect(s.ok(["container-parent-owners", "plain"])).toBe("ID: plain\nUIDs: []\nGIDs: []\n");
      s.ok(["unmount", "plain"]);
      s.ok(["mount", "mappedbase"]);
      expect(s.ok(["layer-parent-owners", "-j", "mappedbase"])).toBe('{"ID":"mappedbase","UIDs":[0],"GIDs":[0]}\n');
      s.ok(["unmount", "mappedbase"]);
      s.ok(["delete-container", "plain"]);
      s.ok(["delete-image", "mappedimg"]);
      expect(s.cli(["check"]).code).toBe(0);
    });
  });

  describe(`ID maps on an image of a read-only store on ${driver}`, () => {
    let ro: TestStore;
    let s: TestStore;
    let cli: (args: string[]) => ReturnType<typeof runBinary>;
    const ok = (args: string[]) => {
      const r = cli(args);
      if (r.code !== 0) throw new Error(`${args.join(" ")} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    };

    /** Everything under a store's graph root, as it is now. */
    const state = (store: TestStore) => {
      const entries = readdirSync(store.graph, { recursive: true, withFileTypes: true }).map((e) => {
        const path = join(e.parentPath, e.name);
        const st = statSync(path, { throwIfNoEntry: false });
        return `${path} ${st?.mode} ${st?.uid}:${st?.gid} ${st?.mtimeMs} ${e.isFile() ? Bun.hash(readFileSync(path)) : ""}`;
      });
      return [`${store.graph} ${statSync(store.graph).mtimeMs}`, ...entries.sort()];
    };

    beforeAll(() => {
      ro = new TestStore(driver);
      ro.ok(["import-layer", "-i", "rolayer", "-f", baseTar]);
      ro.ok(["create-image", "-i", "roimg", "rolayer"]);
      ro.ok(["shutdown"]);
      s = new TestStore(driver);
      cli = (args) => runBinary([...s.globals, "--storage-opt", `${driver}.imagestore=${ro.graph}`, ...args]);
    });
    afterAll(() => {
      s.destroy();
      ro.destroy();
    });

    test("each container is re-owned on its own (the image's record cannot list a mapped top layer); the store is never written", () => {
      const before = state(ro);
      ok(["create-container", "-i", "r1", ...M1, "roimg"]);
      ok(["create-container", "-i", "r2", ...M1, "roimg"]);
      ok(["create-container", "-i", "r3", ...M2, "roimg"]);
      ok(["create-container", "-i", "r4", "roimg"]);
      expect(JSON.parse(ok(["images", "-j"]))[0]["mapped-layers"]).toBeUndefined();
      const layers = JSON.parse(ok(["layers", "-j"]));
      expect(layers.map((l: { parent?: string }) => l.parent)).toEqual(["rolayer", "rolayer", "rolayer", "rolayer", undefined]);
      expect(tree({ ok }, "r1")).toContain("./home/user/file f 640 101000:201000");
      expect(tree({ ok }, "r2")).toContain(". 100000:200000");
      expect(tree({ ok }, "r3")).toContain("./home/user/file f 640 301000:301000");
      expect(tree({ ok }, "r4")).toContain("./home/user/file f 640 1000:1000");
      expect(cli(["check"]).code).toBe(0);
      for (const id of ["r1", "r2", "r3", "r4"]) ok(["delete-container", id]);
      expect(cli(["check"]).code).toBe(0);
      expect(state(ro)).toEqual(before);
    });
  });
}
