import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { applyLayerTar } from "../../src/archive/apply.ts";
import { Compression } from "../../src/archive/types.ts";
import { getXattr } from "../../src/sys/libc.ts";
import { applyFile, makeTempDir, removeDir, run, sentinelState, sh, sha256Hex, snapshotTree, TarSet } from "./apply-helpers.ts";

const suite = makeTempDir("apply-test");
/** A directory beside every layer root that no tar may touch. */
const outside = `${suite}/outside`;
const tarSet = new TarSet(`${suite}/tars`);
const layer = (name: string, code: string) => tarSet.add(name, code);
let caseNumber = 0;
let work: string;
let tars: string;
let root: string;

beforeAll(() => {
  mkdirSync(outside);
  writeFileSync(`${outside}/secret`, "do not touch\n");
  tarSet.build();
});
afterAll(() => removeDir(suite));

beforeEach(() => {
  work = `${suite}/case-${++caseNumber}`;
  tars = `${work}/tars`;
  root = `${work}/root`;
  mkdirSync(root, { recursive: true });
  mkdirSync(tars);
});
afterEach(() => removeDir(work));

/** A source tree with every entry type, odd modes, owners, ns mtimes and xattrs. */
function makeRichTree(src: string): void {
  mkdirSync(src);
  sh(
    `
    mkdir -p etc/sub bin shared tmp
    printf 'hello\\n' > etc/hosts
    head -c 300000 /dev/urandom > bin/big
    printf '#!/bin/sh\\n' > bin/suid && chmod 4755 bin/suid
    printf 'g\\n' > bin/sgid && chmod 2711 bin/sgid
    chmod 1777 tmp
    chmod 2775 shared
    printf 'data\\n' > shared/file
    ln bin/big bin/big-link
    ln -s ../etc/hosts bin/hosts-link
    ln -s /absolute/target abs-link
    mkfifo fifo
    mknod null-dev c 1 3
    mknod loop-dev b 7 0
    chown 1000:1001 etc/hosts
    chown 123:456 shared shared/file
    chown -h 42:43 abs-link
    setfattr -n user.comment -v hello etc/hosts
    setfattr -n trusted.note -v secret bin/big
    setfattr -n user.dir -v yes etc/sub
    find . -exec touch -h -d @1600000000.123456789 {} +
    touch -h -d @1500000000.987654321 etc/hosts abs-link
    touch -d @1400000000.5 etc
    `,
    src,
  );
}

const ALL_TYPES = layer(
  "all-types",
  `
  add("dir", tarfile.DIRTYPE, mode=0o750, uid=7, gid=8, mtime=1234567890.25)
  add("dir/file", data=b"abc", mode=0o6755, uid=1, gid=2, pax_headers={"SCHILY.xattr.user.k": "v", "mtime": "1700000000.123456789"})
  add("dir/sym", tarfile.SYMTYPE, linkname="file", uid=3, gid=4)
  add("dir/hard", tarfile.LNKTYPE, linkname="dir/file")
  add("dev", tarfile.CHRTYPE, devmajor=5, devminor=1, mode=0o620)
  add("blk", tarfile.BLKTYPE, devmajor=8, devminor=17, mode=0o660)
  add("pipe", tarfile.FIFOTYPE, mode=0o600)
  `,
);
const REPLACING = layer(
  "replacing",
  `
  add("keep", tarfile.DIRTYPE, mode=0o700, uid=5, gid=6)
  add("gone-dir", data=b"now a file")
  add("was-file", tarfile.DIRTYPE)
  add("was-link", data=b"plain")
  `,
);
const DEEP_PARENTS = layer(
  "deep-parents",
  `
  add("a", tarfile.DIRTYPE, mtime=1000)
  add("a/b/c/file", data=b"x")
  add("a/later", data=b"y")
  `,
);
const OWNERS = layer(
  "owners",
  `
  add("root-owned", data=b"r")
  add("user-owned", data=b"u", uid=1000, gid=1000)
  add("link", tarfile.SYMTYPE, linkname="root-owned", uid=1, gid=2)
  add("dir", tarfile.DIRTYPE, uid=3, gid=4)
  add(".wh.ignored", uid=777, gid=777)
  `,
);
const FAR_OWNER = layer("far-owner", `add("far", data=b"x", uid=70000)`);

describe("applyLayerTar extracts like GNU tar", () => {
  test("a GNU tar archive gives the same tree as tar -xpf, and records digests and sizes of the stream", async () => {
    makeRichTree(`${work}/src`);
    run(["tar", "--xattrs", "--xattrs-include=*", "--format=posix", "-cpf", `${tars}/layer.tar`, "-C", `${work}/src`, "."]);
    mkdirSync(`${work}/ref`);
    run(["tar", "--xattrs", "--xattrs-include=*", "-xpf", `${tars}/layer.tar`, "-C", `${work}/ref`]);

    const result = await applyFile(root, `${tars}/layer.tar`);

    expect(snapshotTree(root)).toEqual(snapshotTree(`${work}/ref`));
    const size = statSync(`${tars}/layer.tar`).size;
    expect(size % 10240).toBe(0);
    expect(result.diffSize).toBe(size);
    expect(result.compressedSize).toBe(size);
    expect(result.diffDigest).toBe(sha256Hex(`${tars}/layer.tar`));
    expect(result.compressedDigest).toBe(result.diffDigest);
    expect(result.compression).toBe(Compression.None);
    expect(result.uidset).toEqual([0, 42, 123, 1000]);
    expect(result.gidset).toEqual([0, 43, 456, 1001]);
  });

  test("entries in a Python tarfile archive keep type, mode, owner, ns mtime and xattrs; a hard link's header sets its inode's", async () => {
    await applyFile(root, ALL_TYPES);
    const dir = lstatSync(`${root}/dir`, { bigint: true });
    expect([dir.mode & 0o7777n, dir.uid, dir.gid, dir.mtimeNs]).toEqual([0o750n, 7n, 8n, 1234567890250000000n]);
    // The hard link's header (mode 0644, owner 0:0, mtime 1600000000) sets the inode both names share, as containers-storage
    // applies it (GNU tar would keep the first name's); the first name's xattr stays.
    const file = lstatSync(`${root}/dir/file`, { bigint: true });
    expect([file.mode & 0o7777n, file.uid, file.gid, file.mtimeNs, file.nlink]).toEqual([0o644n, 0n, 0n, 1600000000000000000n, 2n]);
    expect(readFileSync(`${root}/dir/file`, "utf8")).toBe("abc");
    expect(Buffer.from(getXattr(`${root}/dir/file`, "user.k")!).toString()).toBe("v");
    expect(lstatSync(`${root}/dir/hard`).ino).toBe(lstatSync(`${root}/dir/file`).ino);
    expect(readlinkSync(`${root}/dir/sym`)).toBe("file");
    expect(lstatSync(`${root}/dir/sym`).uid).toBe(3);
    expect(lstatSync(`${root}/dev`).isCharacterDevice()).toBe(true);
    expect(lstatSync(`${root}/dev`).mode & 0o7777).toBe(0o620);
    expect(lstatSync(`${root}/blk`).isBlockDevice()).toBe(true);
    expect(lstatSync(`${root}/pipe`).isFIFO()).toBe(true);
    expect(lstatSync(`${root}/pipe`).mode & 0o7777).toBe(0o600);
  });

  test("gzip and zstd inputs record the compressed and the decompressed stream separately", async () => {
    makeRichTree(`${work}/src`);
    run(["tar", "--xattrs", "--xattrs-include=*", "--format=posix", "-cpf", `${tars}/layer.tar`, "-C", `${work}/src`, "."]);
    run(["gzip", "-k", `${tars}/layer.tar`]);
    run(["zstd", "-q", `${tars}/layer.tar`, "-o", `${tars}/layer.tar.zst`]);
    const plainDigest = sha256Hex(`${tars}/layer.tar`);
    const plainSize = statSync(`${tars}/layer.tar`).size;
    for (const [file, compression] of [
      ["layer.tar.gz", Compression.Gzip],
      ["layer.tar.zst", Compression.Zstd],
    ] as const) {
      const target = `${work}/root-${compression}`;
      mkdirSync(target);
      const result = await applyFile(target, `${tars}/${file}`);
      expect(result.compression).toBe(compression);
      expect(result.compressedDigest).toBe(sha256Hex(`${tars}/${file}`));
      expect(result.compressedSize).toBe(statSync(`${tars}/${file}`).size);
      expect(result.diffDigest).toBe(plainDigest);
      expect(result.diffSize).toBe(plainSize);
      expect(snapshotTree(target, { skipRoot: true })).toEqual(snapshotTree(`${work}/src`, { skipRoot: true }));
    }
  });

  test("an empty stream is an empty layer", async () => {
    const result = await applyLayerTar(root, (async function* () {})(), { whiteouts: "remove", idMaps: { uidMap: [], gidMap: [] } });
    expect(result.diffSize).toBe(0);
    expect(result.uidset).toEqual([]);
    expect(readdirSync(root)).toEqual([]);
  });

  test("existing paths are replaced, directory over directory keeps contents and takes the new metadata", async () => {
    sh("mkdir -p keep/old && echo x > keep/old/f && mkdir gone-dir && echo y > gone-dir/f && echo z > was-file && ln -s /nowhere was-link", root);
    await applyFile(root, REPLACING);
    expect(readFileSync(`${root}/keep/old/f`, "utf8")).toBe("x\n");
    const keep = lstatSync(`${root}/keep`);
    expect([keep.mode & 0o7777, keep.uid, keep.gid]).toEqual([0o700, 5, 6]);
    expect(readFileSync(`${root}/gone-dir`, "utf8")).toBe("now a file");
    expect(lstatSync(`${root}/was-file`).isDirectory()).toBe(true);
    expect(lstatSync(`${root}/was-link`).isFile()).toBe(true);
  });

  test("missing parents are created 0755 and directory times survive their children", async () => {
    await applyFile(root, DEEP_PARENTS);
    expect(lstatSync(`${root}/a/b`).mode & 0o7777).toBe(0o755);
    expect(lstatSync(`${root}/a/b/c`).mode & 0o7777).toBe(0o755);
    expect(lstatSync(`${root}/a`, { bigint: true }).mtimeNs).toBe(1000_000_000_000n);
  });

  test("owners are shifted through the ID maps and the uidset keeps container IDs", async () => {
    const idMaps = { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }] };
    const result = await applyFile(root, OWNERS, { idMaps });
    const owner = (name: string) => {
      const stats = lstatSync(`${root}/${name}`);
      return [stats.uid, stats.gid];
    };
    expect(owner("root-owned")).toEqual([100000, 200000]);
    expect(owner("user-owned")).toEqual([101000, 201000]);
    expect(owner("link")).toEqual([100001, 200002]);
    expect(owner("dir")).toEqual([100003, 200004]);
    expect(result.uidset).toEqual([0, 1, 3, 1000]);
    expect(result.gidset).toEqual([0, 2, 4, 1000]);
  });

  test("an owner outside the ID map is an error naming the entry", async () => {
    const idMaps = { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [] };
    await expect(applyFile(root, FAR_OWNER, { idMaps })).rejects.toThrow(/"far".*UID 70000/);
  });

  test("garbage input fails", async () => {
    writeFileSync(`${tars}/garbage`, "this is not a tar archive, not at all".repeat(40));
    await expect(applyFile(root, `${tars}/garbage`)).rejects.toThrow();
  });
});

const WHITEOUTS = layer(
  "whiteouts",
  `
  add("a/.wh.x")
  add(".wh.dir")
  add("opq", tarfile.DIRTYPE, mode=0o700)
  add("opq/new", data=b"n")
  add("opq/.wh..wh..opq")
  add("opq/after", data=b"a")
  add("a/.wh.never-existed")
  add("missing-dir/.wh.x")
  `,
);
const WHITEOUT_OWN_WRITE = layer(
  "whiteout-own-write",
  `
  add("d/f", data=b"x")
  add("d/.wh.f")
  `,
);
const NESTED_REMOVALS = layer(
  "nested-removals",
  `
  add("dir/.wh.tree")
  add("dir/replaced", data=b"new")
  add("dir/.wh.gone")
  `,
);
const OPAQUE_ROOT_AFTER_WHITEOUT = layer(
  "opaque-root-after-whiteout",
  `
  add("a/.wh.x")
  add("new", data=b"n")
  add(".wh..wh..opq")
  `,
);
const AUFS_HARDLINKS = layer(
  "aufs-hardlinks",
  `
  add(".wh..wh.plnk", tarfile.DIRTYPE, mode=0o700)
  add(".wh..wh.plnk/1234.5678", data=b"shared content", mode=0o751, uid=9, gid=7, mtime=1500000000)
  add("bin", tarfile.DIRTYPE)
  add("bin/one", tarfile.LNKTYPE, linkname=".wh..wh.plnk/1234.5678", mode=0o600, uid=1, gid=1)
  add("bin/two", tarfile.LNKTYPE, linkname="./.wh..wh.plnk/1234.5678")
  add("bin/three", tarfile.LNKTYPE, linkname="bin/one", mode=0o640, uid=3, gid=3)
  add(".wh..wh.aufs", data=b"marker")
  add(".wh..wh.orph", tarfile.DIRTYPE)
  add(".wh..wh.orph/gone", data=b"orphan")
  `,
);
const AUFS_ABSOLUTE_LINK = layer(
  "aufs-absolute-link",
  `
  add(".wh..wh.plnk/1", data=b"stored")
  add("one", tarfile.LNKTYPE, linkname="/.wh..wh.plnk/1")
  `,
);
const PARENTS_OF_WHITEOUTS = layer(
  "parents-of-whiteouts",
  `
  add("a/b/.wh.c")
  add("p/q/.wh..wh..opq")
  add("file", data=b"f")
  add("file/.wh.x")
  `,
);

describe("whiteouts", () => {
  function makeLower(): void {
    sh("mkdir -p a/sub dir/deep opq/old-dir && echo 1 > a/x && echo 2 > a/y && echo 3 > dir/deep/f && echo 4 > opq/old && echo 5 > opq/old-dir/f && echo 6 > keep", root);
  }

  test('"remove" style deletes hidden paths and clears opaque directories except what the stream wrote', async () => {
    makeLower();
    const result = await applyFile(root, WHITEOUTS, { whiteouts: "remove" });
    // A whiteout's missing directory is made (empty), as 1.43 makes every entry's missing parents.
    expect(readdirSync(root).sort()).toEqual(["a", "keep", "missing-dir", "opq"]);
    expect(readdirSync(`${root}/missing-dir`)).toEqual([]);
    expect(readdirSync(`${root}/a`).sort()).toEqual(["sub", "y"]);
    expect(readdirSync(`${root}/opq`).sort()).toEqual(["after", "new"]);
    expect(lstatSync(`${root}/opq`).mode & 0o7777).toBe(0o700);
    expect(result.uidset).toEqual([0]);
  });

  test('"overlay" style writes 0:0 character devices and the opaque xattr, and never whiteout files', async () => {
    makeLower();
    await applyFile(root, WHITEOUTS, { whiteouts: "overlay" });
    for (const hidden of ["a/x", "dir", "a/never-existed", "missing-dir/x"]) {
      const stats = lstatSync(`${root}/${hidden}`);
      expect(stats.isCharacterDevice()).toBe(true);
      expect(stats.rdev).toBe(0);
    }
    expect(Buffer.from(getXattr(`${root}/opq`, "trusted.overlay.opaque")!).toString()).toBe("y");
    expect(readdirSync(`${root}/opq`).sort()).toEqual(["after", "new", "old", "old-dir"]);
    expect(run(["find", root, "-name", ".wh.*"])).toBe("");
  });

  test("removed and replaced paths leave nothing behind, and the root keeps its times when its own names are untouched", async () => {
    sh("mkdir -p dir/tree/a/b && head -c 200000 /dev/urandom > dir/tree/a/b/big && echo 1 > dir/tree/f && echo old > dir/replaced && echo 2 > dir/gone && touch -d @1500000000.25 .", root);
    const before = statSync(root, { bigint: true });
    await applyFile(root, NESTED_REMOVALS);
    expect(readdirSync(root)).toEqual(["dir"]);
    expect(readdirSync(`${root}/dir`)).toEqual(["replaced"]);
    expect(readFileSync(`${root}/dir/replaced`, "utf8")).toBe("new");
    expect(statSync(root, { bigint: true }).mtimeNs).toBe(before.mtimeNs);
  });

  test("an opaque root after a whiteout keeps only what the stream wrote", async () => {
    sh("mkdir -p a old && echo 1 > a/x && echo 2 > old/f && echo 3 > keep-not", root);
    await applyFile(root, OPAQUE_ROOT_AFTER_WHITEOUT);
    expect(readdirSync(root)).toEqual(["new"]);
  });

  test("a path that cannot be deleted fails the apply with the whiteout that removed it", async () => {
    if (!canMakeImmutable(root)) return;
    sh("mkdir -p dir/tree && echo 1 > dir/tree/stuck && chattr +i dir/tree/stuck", root);
    try {
      await expect(applyFile(root, NESTED_REMOVALS)).rejects.toThrow(/extracting "dir\/\.wh\.tree": removing what it replaces: operation not permitted/i);
    } finally {
      run(["chattr", "-R", "-i", root]);
    }
  });

  test("a whiteout removes what the same stream wrote before it", async () => {
    await applyFile(root, WHITEOUT_OWN_WRITE);
    expect(readdirSync(`${root}/d`)).toEqual([]);
  });

  test("a link into .wh..wh.plnk is a copy of the stored file with its header, as in 1.43; other .wh..wh. entries are skipped, their missing parents made", async () => {
    await applyFile(root, AUFS_HARDLINKS);
    // 1.43 makes the parents of every entry before it skips AUFS metadata: .wh..wh.plnk and .wh..wh.orph stay, empty.
    expect(readdirSync(root).sort()).toEqual([".wh..wh.orph", ".wh..wh.plnk", "bin"]);
    for (const dir of [".wh..wh.orph", ".wh..wh.plnk"]) {
      expect(readdirSync(`${root}/${dir}`)).toEqual([]);
      expect([statSync(`${root}/${dir}`).mode & 0o7777, statSync(`${root}/${dir}`).uid]).toEqual([0o755, 0]);
    }
    const [one, two, three] = ["one", "two", "three"].map((name) => lstatSync(`${root}/bin/${name}`));
    expect(readFileSync(`${root}/bin/two`, "utf8")).toBe("shared content");
    // two: its own copy, as stored; one and three: one inode, which three's header re-owned.
    expect([two!.nlink, two!.mode & 0o7777, two!.uid, two!.gid, two!.mtimeMs]).toEqual([1, 0o751, 9, 7, 1500000000000]);
    expect(one!.ino).toBe(three!.ino);
    expect(one!.ino).not.toBe(two!.ino);
    expect([one!.nlink, one!.mode & 0o7777, one!.uid, one!.gid]).toEqual([2, 0o640, 3, 3]);
  });

  test('"/.wh..wh.plnk/…" is an ordinary link name (1.43 finds nothing there): the link fails, naming it', async () => {
    await expect(applyFile(root, AUFS_ABSOLUTE_LINK)).rejects.toThrow('hard link "one": target "/.wh..wh.plnk/1" does not exist in the layer');
  });

  test("the missing parents of whiteouts are made 0755, as 1.43 makes them; a parent that is a file stays", async () => {
    await applyFile(root, PARENTS_OF_WHITEOUTS);
    expect(readdirSync(root).sort()).toEqual(["a", "file", "p"]);
    expect(readdirSync(`${root}/a`)).toEqual(["b"]);
    expect(readdirSync(`${root}/a/b`)).toEqual([]);
    expect(statSync(`${root}/p/q`).mode & 0o7777).toBe(0o755);
    expect(readFileSync(`${root}/file`, "utf8")).toBe("f");
  });
});

const CLAMPED_NAMES = layer(
  "clamped-names",
  `
  add("../x", data=b"1")
  add("/abs", data=b"2")
  add("a/../../b", data=b"3")
  add("../../outside/secret", data=b"overwritten?")
  add("./../c/", tarfile.DIRTYPE)
  `,
);
const SYMLINK_OUT = layer(
  "symlink-out",
  `
  add("lnk", tarfile.SYMTYPE, linkname="${outside}")
  add("lnk/file", data=b"escaped?")
  `,
);
const THROUGH_EXISTING_SYMLINK = layer("through-existing-symlink", `add("lnk/secret", data=b"x")`);
const SYMLINK_TO_ROOT = layer(
  "symlink-to-root",
  `
  add("up", tarfile.SYMTYPE, linkname="../../..")
  add("up/escaped", data=b"1")
  add("slash", tarfile.SYMTYPE, linkname="/")
  add("slash/outside/secret", data=b"2")
  add("d", tarfile.DIRTYPE)
  add("d/rel", tarfile.SYMTYPE, linkname="../../../outside")
  add("d/rel/deeper/file", data=b"3")
  `,
);
const SYMLINK_LOOP = layer(
  "symlink-loop",
  `
  add("loop1", tarfile.SYMTYPE, linkname="loop2")
  add("loop2", tarfile.SYMTYPE, linkname="loop1")
  add("loop1/file", data=b"x")
  `,
);
const OVER_SYMLINKS = layer(
  "over-symlinks",
  `
  add("to-secret", tarfile.SYMTYPE, linkname="${outside}/secret")
  add("to-secret", data=b"replaced")
  add("to-dir", tarfile.SYMTYPE, linkname="${outside}")
  add("to-dir", tarfile.DIRTYPE, mode=0o700)
  add("to-dir2", tarfile.SYMTYPE, linkname="${outside}")
  add("to-dir2", tarfile.FIFOTYPE)
  `,
);
const HARDLINK_PASSWD = layer("hardlink-passwd", `add("pw", tarfile.LNKTYPE, linkname="/etc/passwd")`);
const HARDLINK_UP = layer("hardlink-up", `add("s", tarfile.LNKTYPE, linkname="../outside/secret")`);
const HARDLINK_VIA_SYMLINK = layer(
  "hardlink-via-symlink",
  `
  add("via", tarfile.SYMTYPE, linkname="${outside}")
  add("h", tarfile.LNKTYPE, linkname="via/secret")
  `,
);
const HARDLINK_TO_SYMLINK = layer(
  "hardlink-to-symlink",
  `
  add("sym", tarfile.SYMTYPE, linkname="/etc/passwd")
  add("hard", tarfile.LNKTYPE, linkname="sym")
  `,
);
const HARDLINK_INSIDE = layer(
  "hardlink-inside",
  `
  add("dir/file", data=b"x")
  add("link", tarfile.LNKTYPE, linkname="../dir/./file")
  `,
);
const CLIMBING_WHITEOUTS = layer(
  "climbing-whiteouts",
  `
  add("../outside/.wh.secret")
  add("../../.wh.outside")
  add("a/b/.wh...")
  add("a/b/.wh..")
  add("a/.wh.")
  add("lnk", tarfile.SYMTYPE, linkname="${outside}")
  add("lnk/.wh.secret")
  add("lnk/.wh..wh..opq")
  `,
);
const OPAQUE_THROUGH_SYMLINK = layer(
  "opaque-through-symlink",
  `
  add("lnk", tarfile.SYMTYPE, linkname="${outside}")
  add("lnk/.wh..wh..opq")
  `,
);
const WHITEOUT_THROUGH_SYMLINK = layer(
  "whiteout-through-symlink",
  `
  add("lnk2", tarfile.SYMTYPE, linkname="${outside}")
  add("lnk2/.wh.secret")
  `,
);
const WHITEOUT_DIR = layer("whiteout-dir", `add(".wh.d")`);

describe("nothing is written outside the layer root", () => {
  /** Applies the tar and checks that the outside directory, the case directory and /etc/passwd are untouched. */
  async function expectConfined(tar: string, options: { whiteouts?: "remove" | "overlay"; rejects?: boolean } = {}): Promise<void> {
    const before = [...sentinelState(outside, ""), ...sentinelState(work, "root")];
    const passwdBefore = lstatSync("/etc/passwd", { bigint: true });
    const applying = applyFile(root, tar, { whiteouts: options.whiteouts ?? "remove" });
    if (options.rejects) await expect(applying).rejects.toThrow();
    else await applying;
    expect([...sentinelState(outside, ""), ...sentinelState(work, "root")]).toEqual(before);
    const passwdAfter = lstatSync("/etc/passwd", { bigint: true });
    expect([passwdAfter.nlink, passwdAfter.mtimeNs, passwdAfter.ctimeNs]).toEqual([passwdBefore.nlink, passwdBefore.mtimeNs, passwdBefore.ctimeNs]);
    expect(readFileSync(`${outside}/secret`, "utf8")).toBe("do not touch\n");
  }

  test("../x, /abs and a/../../b are clamped at the root", async () => {
    await expectConfined(CLAMPED_NAMES);
    expect(readdirSync(root).sort()).toEqual(["abs", "b", "c", "outside", "x"]);
    expect(readFileSync(`${root}/outside/secret`, "utf8")).toBe("overwritten?");
  });

  test("a symlink to an outside directory is resolved inside the root: lnk/file fails and writes nothing", async () => {
    await expectConfined(SYMLINK_OUT, { rejects: true });
    await expect(applyFile(root, THROUGH_EXISTING_SYMLINK)).rejects.toThrow("open /lnk/secret: no such file or directory");
  });

  test("a symlink to ../../.. or to / resolves to the root itself", async () => {
    await expectConfined(SYMLINK_TO_ROOT);
    expect(readFileSync(`${root}/escaped`, "utf8")).toBe("1");
    expect(readFileSync(`${root}/outside/secret`, "utf8")).toBe("2");
    expect(readFileSync(`${root}/outside/deeper/file`, "utf8")).toBe("3");
    expect(readlinkSync(`${root}/up`)).toBe("../../..");
  });

  test("symlink loops fail instead of hanging", async () => {
    await expectConfined(SYMLINK_LOOP, { rejects: true });
  });

  test("an entry over a symlink replaces the symlink instead of writing through it", async () => {
    await expectConfined(OVER_SYMLINKS);
    expect(readFileSync(`${root}/to-secret`, "utf8")).toBe("replaced");
    expect(lstatSync(`${root}/to-dir`).isDirectory()).toBe(true);
    expect(lstatSync(`${root}/to-dir2`).isFIFO()).toBe(true);
  });

  test("hard links to /etc/passwd or ../outside/secret never link outside files", async () => {
    await expectConfined(HARDLINK_PASSWD, { rejects: true });
    await expectConfined(HARDLINK_UP, { rejects: true });
    await expectConfined(HARDLINK_VIA_SYMLINK, { rejects: true });
    expect(lstatSync(`${outside}/secret`).nlink).toBe(1);
  });

  test("a hard link to a symlink links the symlink, not what it points to", async () => {
    await expectConfined(HARDLINK_TO_SYMLINK);
    expect(lstatSync(`${root}/hard`).isSymbolicLink()).toBe(true);
  });

  test("hard links inside the root work, with cleaned targets", async () => {
    await expectConfined(HARDLINK_INSIDE);
    expect(lstatSync(`${root}/link`).ino).toBe(lstatSync(`${root}/dir/file`).ino);
  });

  test("whiteouts cannot climb out of the root or remove a parent", async () => {
    sh("mkdir -p a/b && echo 1 > a/b/f && echo 2 > secret", root);
    await expectConfined(CLIMBING_WHITEOUTS);
    expect(readFileSync(`${root}/a/b/f`, "utf8")).toBe("1\n");
    expect(readFileSync(`${root}/secret`, "utf8")).toBe("2\n");
  });

  test("overlay-style whiteouts and opaque markers through an outside symlink write nothing outside", async () => {
    await expectConfined(OPAQUE_THROUGH_SYMLINK, { whiteouts: "overlay", rejects: true });
    await expectConfined(WHITEOUT_THROUGH_SYMLINK, { whiteouts: "overlay", rejects: true });
    expect(getXattr(outside, "trusted.overlay.opaque")).toBeNull();
  });

  test("a whiteout of a directory holding a symlink to outside removes only the symlink", async () => {
    mkdirSync(`${root}/d`);
    symlinkSync(outside, `${root}/d/link`);
    await expectConfined(WHITEOUT_DIR);
    expect(existsSync(`${root}/d`)).toBe(false);
  });
});

/** True when chattr +i works in dir (root on a filesystem with the immutable flag). */
function canMakeImmutable(dir: string): boolean {
  writeFileSync(`${dir}/probe`, "");
  const works = Bun.which("chattr") !== null && Bun.spawnSync(["chattr", "+i", `${dir}/probe`]).exitCode === 0;
  if (works) Bun.spawnSync(["chattr", "-i", `${dir}/probe`]);
  rmSync(`${dir}/probe`);
  return works;
}
