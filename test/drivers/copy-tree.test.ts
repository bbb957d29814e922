import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { copyTree, copyTreeWith } from "../../src/drivers/copy-tree.ts";
import { InvalidArgumentError, SystemError } from "../../src/errors.ts";
import type { IdMaps } from "../../src/idmap.ts";
import { getXattr, listXattrs, mknod, setTimes, setXattr } from "../../src/sys/libc.ts";

let work: string;
let source: string;
/** Attributes of every source entry, taken before any copy reads (and so touches) the source. */
let sourceSnapshot: Map<string, EntryAttributes>;

const NON_UTF8_NAME = Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0xff, 0xfe]); // "name" + invalid UTF-8

/** security.capability v2 value granting cap_net_bind_service (bit 10), effective. */
const CAPABILITY_VALUE = (() => {
  const value = new DataView(new ArrayBuffer(20));
  value.setUint32(0, 0x02000001, true);
  value.setUint32(4, 1 << 10, true);
  return new Uint8Array(value.buffer);
})();

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "copy-tree-test-"));
  source = path.join(work, "source");
  buildEveryKindOfEntry(source);
  sourceSnapshot = snapshot(source);
  for (const stamp of stamps) {
    const attributes = sourceSnapshot.get(labelOf(stamp.relative))!;
    attributes.atimeNs = stamp.atimeNs;
    attributes.mtimeNs = stamp.mtimeNs;
  }
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/** Distinct nanosecond times for every entry (relative raw path -> [atime, mtime]). */
const stamps: Array<{ relative: Buffer; atimeNs: bigint; mtimeNs: bigint }> = [];

/**
 * Reading a file or listing a directory moves its atime, so the source's times are put back
 * right before each copy; the expected atimes are these stamps.
 */
function restampTimes(root: string): void {
  for (const { relative, atimeNs, mtimeNs } of stamps) {
    const absolute = Buffer.concat([Buffer.from(`${root}/`), relative]);
    if (fs.lstatSync(absolute, { throwIfNoEntry: false }) !== undefined) setTimes(absolute, atimeNs, mtimeNs);
  }
}

function buildEveryKindOfEntry(root: string): void {
  const oldMask = process.umask(0);
  try {
    fs.mkdirSync(root, 0o755);
    const at = (...parts: string[]) => path.join(root, ...parts);

    fs.writeFileSync(at("plain.txt"), "plain file\n");
    fs.writeFileSync(at("empty"), "");
    fs.writeFileSync(at("large.bin"), new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) % 256));
    for (const [name, mode] of [
      ["setuid", 0o4755],
      ["setgid", 0o2711],
      ["sticky-file", 0o1644],
      ["all-bits", 0o7777],
      ["no-access", 0o000],
      ["private", 0o600],
    ] as const) {
      fs.writeFileSync(at(name), `content of ${name}\n`);
      fs.chmodSync(at(name), mode);
    }
    // A setuid file owned by someone else: chown would clear the bit if done after chmod.
    fs.writeFileSync(at("setuid-owned"), "#!/bin/sh\n");
    fs.chownSync(at("setuid-owned"), 1234, 5678);
    fs.chmodSync(at("setuid-owned"), 0o4750);

    fs.mkdirSync(at("private-dir"), 0o700);
    fs.mkdirSync(at("tmp"), 0o1777);
    fs.mkdirSync(at("setgid-dir"), 0o2775);
    fs.chownSync(at("setgid-dir"), 0, 5678);
    fs.writeFileSync(at("setgid-dir", "inside"), "inside a setgid directory\n");
    fs.mkdirSync(at("deep", "er", "est"), { recursive: true, mode: 0o755 });
    fs.writeFileSync(at("deep", "er", "est", "leaf"), "leaf\n");
    fs.mkdirSync(at("read-only-dir"), 0o755);
    fs.writeFileSync(at("read-only-dir", "kept"), "kept\n");
    fs.chmodSync(at("read-only-dir"), 0o555);

    fs.symlinkSync("does/not/exist", at("dangling"));
    fs.symlinkSync("plain.txt", at("relative-link"));
    fs.symlinkSync("/etc/passwd", at("absolute-link"));
    fs.lchownSync(at("relative-link"), 1234, 5678);

    fs.writeFileSync(at("trio-a"), "hard-linked\n");
    fs.linkSync(at("trio-a"), at("trio-b"));
    fs.linkSync(at("trio-a"), at("deep", "trio-c"));
    fs.chownSync(at("trio-a"), 1234, 5678);
    fs.symlinkSync("plain.txt", at("linked-symlink"));
    fs.linkSync(at("linked-symlink"), at("linked-symlink-2"));

    mknod(at("whiteout"), "char", 0o000, 0, 0);
    mknod(at("null"), "char", 0o666, 1, 3);
    mknod(at("disk"), "block", 0o660, 259, 70000);
    mknod(at("pipe"), "fifo", 0o640, 0, 0);
    fs.chownSync(at("pipe"), 1234, 5678);
    const socketMade = Bun.spawnSync(["python3", "-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(at("socket"))})`]);
    expect(socketMade.exitCode).toBe(0);

    fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/`), NON_UTF8_NAME]), "odd name\n");

    fs.writeFileSync(at("owned"), "owned by 1234:5678\n");
    fs.chownSync(at("owned"), 1234, 5678);
    fs.mkdirSync(at("owned-dir"), 0o750);
    fs.chownSync(at("owned-dir"), 1234, 5678);

    setXattr(at("plain.txt"), "user.comment", new TextEncoder().encode("a user attribute"));
    setXattr(at("plain.txt"), "user.binary", new Uint8Array([0, 1, 2, 255]));
    setXattr(at("tmp"), "trusted.overlay.opaque", new TextEncoder().encode("y"));
    setXattr(at("dangling"), "trusted.on-symlink", new TextEncoder().encode("link attr"));
    setXattr(at("setuid-owned"), "security.capability", CAPABILITY_VALUE);

    // Times last, once everything exists: creating children changes a directory's mtime.
    let time = 1_500_000_000_000_000_000n;
    const timeOfInode = new Map<bigint, bigint>();
    const walk = (relative: Buffer) => {
      const absolute = Buffer.concat([Buffer.from(`${root}/`), relative]);
      const { ino } = fs.lstatSync(absolute, { bigint: true });
      time += 1_000_000_123n;
      const mtimeNs = timeOfInode.get(ino) ?? time; // hard links share one inode, so one time
      timeOfInode.set(ino, mtimeNs);
      stamps.push({ relative, atimeNs: mtimeNs + 777n, mtimeNs });
      if (!fs.lstatSync(absolute).isDirectory()) return;
      for (const name of fs.readdirSync(absolute, { encoding: "buffer" })) walk(Buffer.concat([relative, Buffer.from("/"), name]));
    };
    walk(Buffer.from("."));
    restampTimes(root);
  } finally {
    process.umask(oldMask);
  }
}

interface EntryAttributes {
  type: string;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  rdev: bigint;
  size: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  /** Paths (relative) sharing this inode, sorted; empty for directories and single links. */
  linkGroup: string[];
  xattrs: Record<string, string>;
  content?: string;
  linkTarget?: string;
}

function entryType(st: fs.BigIntStats): string {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  return "unknown";
}

/** A relative path as text; a name that is not UTF-8 is shown as hex:<bytes>. */
function labelOf(relative: Buffer): string {
  return relative
    .toString("latin1")
    .split("/")
    .map((part) => {
      const raw = Buffer.from(part, "latin1");
      const text = raw.toString("utf8");
      return Buffer.from(text).equals(raw) ? text : `hex:${raw.toString("hex")}`;
    })
    .filter((part, index) => part !== "." || index === 0)
    .join("/")
    .replace(/^\.\//, "");
}

/** Every entry under root by relative path (raw names as hex-escaped text), with all attributes compared. */
function snapshot(root: string): Map<string, EntryAttributes> {
  const entries = new Map<string, EntryAttributes>();
  const inodes = new Map<bigint, string[]>();
  const readLater: Array<() => void> = [];
  const visit = (absolute: Buffer, relative: string) => {
    const st = fs.lstatSync(absolute, { bigint: true });
    const xattrs: Record<string, string> = {};
    for (const name of listXattrs(absolute).sort()) xattrs[name] = Buffer.from(getXattr(absolute, name)!).toString("hex");
    const attributes: EntryAttributes = {
      type: entryType(st),
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      rdev: st.rdev,
      size: st.size,
      atimeNs: st.atimeNs,
      mtimeNs: st.mtimeNs,
      linkGroup: [],
      xattrs,
    };
    // Contents are read after every lstat: reading moves the atime, shared by all of an inode's links.
    if (st.isFile()) readLater.push(() => (attributes.content = Bun.hash(fs.readFileSync(absolute)).toString(16)));
    if (st.isSymbolicLink()) readLater.push(() => (attributes.linkTarget = fs.readlinkSync(absolute, { encoding: "buffer" }).toString("hex")));
    if (!st.isDirectory() && st.nlink > 1n) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), relative]);
    entries.set(relative, attributes);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(absolute, { encoding: "buffer" })) {
        const label = labelOf(name);
        visit(Buffer.concat([absolute, Buffer.from("/"), name]), relative === "." ? label : `${relative}/${label}`);
      }
    }
  };
  visit(Buffer.from(root), ".");
  for (const read of readLater) read();
  for (const group of inodes.values()) for (const member of group) entries.get(member)!.linkGroup = [...group].sort();
  return entries;
}

function expectSameTree(
  copy: Map<string, EntryAttributes>,
  original: Map<string, EntryAttributes>,
  shiftId = (id: bigint) => id,
  withSockets = false,
): void {
  const expected = new Map([...original].filter(([, attributes]) => withSockets || attributes.type !== "socket"));
  expect([...copy.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [relative, attributes] of expected) {
    expect({ path: relative, ...copy.get(relative)! }).toEqual({
      path: relative,
      ...attributes,
      uid: shiftId(attributes.uid),
      gid: shiftId(attributes.gid),
    });
  }
}

async function copyFresh(name: string, options?: { from?: IdMaps; to?: IdMaps }): Promise<string> {
  restampTimes(source);
  return copyFrom(source, name, options);
}

async function copyFrom(tree: string, name: string, options?: { from?: IdMaps; to?: IdMaps }): Promise<string> {
  const destination = path.join(work, name);
  await copyTree(tree, destination, options);
  return destination;
}

describe("copyTree", () => {
  test("copies every kind of entry with all attributes, skipping sockets", async () => {
    const copy = snapshot(await copyFresh("plain-copy"));
    expectSameTree(copy, sourceSnapshot);
    // Spot checks of what matters most to a container.
    expect(Number(copy.get("setuid-owned")!.mode & 0o7777n)).toBe(0o4750);
    expect(copy.get("setuid-owned")!.xattrs["security.capability"]).toBe(Buffer.from(CAPABILITY_VALUE).toString("hex"));
    expect(Number(copy.get("tmp")!.mode & 0o7777n)).toBe(0o1777);
    expect(copy.get("trio-b")!.linkGroup).toEqual(["deep/trio-c", "trio-a", "trio-b"]);
    expect(copy.get("whiteout")!.type).toBe("char");
    expect(copy.get("socket")).toBeUndefined();
    expect(copy.get(`hex:${NON_UTF8_NAME.toString("hex")}`)!.type).toBe("file");
  });

  test("the source is left unchanged", () => {
    restampTimes(source);
    expectSameTree(snapshot(source), sourceSnapshot, undefined, true);
  });

  test("copies into an existing empty directory, taking the source root's mode, owner and times", async () => {
    const destination = path.join(work, "existing");
    fs.mkdirSync(destination, 0o2777);
    fs.chownSync(destination, 42, 43);
    restampTimes(source);
    await copyTree(source, destination);
    expectSameTree(snapshot(destination), sourceSnapshot);
  });

  test("shifts owners from the source's ID maps to the destination's", async () => {
    const container: IdMaps = {
      uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
      gidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
    };
    const shifted = await copyFresh("shifted", { to: container });
    expectSameTree(snapshot(shifted), sourceSnapshot, (id) => id + 100000n);

    const back = path.join(work, "shifted-back");
    restampTimes(shifted);
    await copyTree(shifted, back, { from: container });
    expectSameTree(snapshot(back), sourceSnapshot);
  });

  test("same maps on both sides copy owners unchanged", async () => {
    const maps: IdMaps = {
      uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
      gidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
    };
    expectSameTree(snapshot(await copyFresh("same-maps", { from: maps, to: maps })), sourceSnapshot);
  });

  test("as containers-storage 1.43 shifts: an ID the destination's maps lack becomes the overflow ID, an owner the source's maps lack stays, 0:0 is taken as root", async () => {
    const small: IdMaps = { uidMap: [{ containerId: 0, hostId: 100000, size: 1000 }], gidMap: [{ containerId: 0, hostId: 200000, size: 1000 }] };
    const overflow = { uid: Number(fs.readFileSync("/proc/sys/kernel/overflowuid", "utf8")), gid: Number(fs.readFileSync("/proc/sys/kernel/overflowgid", "utf8")) };
    const shifted = snapshot(await copyFresh("unmappable", { to: small }));
    expect([shifted.get("owned")!.uid, shifted.get("owned")!.gid]).toEqual([BigInt(overflow.uid), BigInt(overflow.gid)]);
    expect([shifted.get("plain.txt")!.uid, shifted.get("plain.txt")!.gid]).toEqual([100000n, 200000n]);
    // The top directory is re-owned like every entry.
    expect([shifted.get(".")!.uid, shifted.get(".")!.gid]).toEqual([100000n, 200000n]);
    // chown clears setuid: it is put back.
    expect(Number(shifted.get("setuid-owned")!.mode & 0o7777n)).toBe(0o4750);

    // From those maps to others: an entry owned by 0:0, which the source's maps lack, counts as
    // container root; an owner the source's maps cannot map (the overflow ID, or only its UID
    // mapped) fails the copy, naming the entry, as containers-storage's chown does.
    const other: IdMaps = { uidMap: [{ containerId: 0, hostId: 300000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 300000, size: 65536 }] };
    const mapped = path.join(work, "mapped-source");
    fs.mkdirSync(mapped);
    fs.chownSync(mapped, 100000, 200000);
    fs.writeFileSync(path.join(mapped, "root-owned"), "0:0\n");
    fs.writeFileSync(path.join(mapped, "in-range"), "in range\n");
    fs.chownSync(path.join(mapped, "in-range"), 100005, 200006);
    const again = snapshot(await copyFrom(mapped, "mapped-again", { from: small, to: other }));
    expect([again.get("root-owned")!.uid, again.get("root-owned")!.gid]).toEqual([300000n, 300000n]);
    expect([again.get("in-range")!.uid, again.get("in-range")!.gid]).toEqual([300005n, 300006n]);
    fs.writeFileSync(path.join(mapped, "half-mapped"), "uid mapped, gid not\n");
    fs.chownSync(path.join(mapped, "half-mapped"), 100007, 7);
    const error = await copyFrom(mapped, "mapped-fails", { from: small, to: other }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toBe('mapping host ID pair 100007:7 for "half-mapped" to container: host ID 7 cannot be mapped to a container ID');
    const fromShifted = await copyFrom(path.join(work, "unmappable"), "overflow-fails", { from: small, to: other }).catch((e: unknown) => e);
    expect((fromShifted as Error).message).toMatch(/^mapping host ID pair \d+:\d+ for "[^"]+" to container: host ID \d+ cannot be mapped to a container ID$/);
  });

  test("several copies in flight (pool mode) give the same tree", async () => {
    const destination = path.join(work, "pooled");
    restampTimes(source);
    await copyTreeWith(source, destination, {}, { kind: "pool", inFlight: 4 });
    expectSameTree(snapshot(destination), sourceSnapshot);
  });

  test("a failure with several copies in flight is reported once they have all finished", async () => {
    const destination = path.join(work, "pooled-failure");
    let running = 0;
    const copy = async (src: string | Buffer, dst: string | Buffer) => {
      running++;
      try {
        await Bun.sleep(5);
        if (src.toString().endsWith("/large.bin")) throw new SystemError(`copying ${src}: no space left on device`, "ENOSPC");
        await fs.promises.copyFile(src, dst);
      } finally {
        running--;
      }
    };
    const error = await copyTreeWith(source, destination, {}, { kind: "pool", inFlight: 4, copy }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SystemError);
    expect((error as SystemError).message).toContain("no space left on device");
    // No copy was still writing when the failure was reported.
    expect(running).toBe(0);
  });

  test("a source that is not a directory, or missing, fails with a SystemError", async () => {
    const notDir = await copyTree(path.join(source, "plain.txt"), path.join(work, "x")).catch((e: unknown) => e);
    expect(notDir).toBeInstanceOf(SystemError);
    expect((notDir as SystemError).code).toBe("ENOTDIR");
    const missing = await copyTree(path.join(work, "missing"), path.join(work, "y")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SystemError);
    expect((missing as SystemError).code).toBe("ENOENT");
    expect((missing as SystemError).message).toContain(path.join(work, "missing"));
  });
});
