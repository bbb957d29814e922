import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { ArchiveError } from "../../src/errors.ts";
import { readTar } from "../../src/archive/tar-reader.ts";
import { TarWriter } from "../../src/archive/tar-writer.ts";
import type { ByteSource, TarEntry } from "../../src/archive/types.ts";
import { fileSink } from "../../src/archive/compression.ts";
import {
  FIXTURES,
  collectBytes,
  concatBytes,
  hex,
  memorySink,
  readAll,
  rejection,
  removeTempDirs,
  run,
  sha256,
  sourceOf,
  tempDir,
  type ReadEntry,
  SLOW_TEST_TIMEOUT,
} from "./tar-fixtures.ts";

// These tests run tar, Python and compressors; the default 5 s is tight on a busy machine.
setDefaultTimeout(SLOW_TEST_TIMEOUT);
afterAll(removeTempDirs);

interface ExpectedEntry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  mtimeNs: string;
  linkTarget: string;
  devMajor: number | null;
  devMinor: number | null;
  sha256: string;
  xattrs: Record<string, string>;
}

const pythonArchives = new Map<string, { bytes: Uint8Array; expected: ExpectedEntry[] }>();

/** An archive written by make_tar.py (made once per format) and the fields it put in. */
function pythonArchive(format: "ustar" | "gnu" | "pax"): { bytes: Uint8Array; expected: ExpectedEntry[] } {
  const cached = pythonArchives.get(format);
  if (cached) return cached;
  const file = path.join(tempDir(), `${format}.tar`);
  const expected = JSON.parse(new TextDecoder().decode(run(["python3", path.join(FIXTURES, "make_tar.py"), format, file]))) as ExpectedEntry[];
  const made = { bytes: new Uint8Array(fs.readFileSync(file)), expected };
  pythonArchives.set(format, made);
  return made;
}

function pythonDump(file: string): ExpectedEntry[] {
  return JSON.parse(new TextDecoder().decode(run(["python3", path.join(FIXTURES, "dump_tar.py"), file]))) as ExpectedEntry[];
}

/** The fields of a read entry in the shape the Python helpers print. */
function asExpected({ entry, content }: ReadEntry, withDevices: boolean): ExpectedEntry {
  return {
    path: entry.path,
    type: entry.type,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    uname: entry.uname,
    gname: entry.gname,
    size: entry.size,
    mtimeNs: String(entry.mtimeNs),
    linkTarget: entry.linkTarget,
    devMajor: withDevices ? entry.devMajor : null,
    devMinor: withDevices ? entry.devMinor : null,
    sha256: sha256(content),
    xattrs: Object.fromEntries([...entry.xattrs].map(([k, v]) => [k, hex(v)])),
  };
}

function isDevice(type: string): boolean {
  return type === "char" || type === "block";
}

function stripTrailer(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end >= 512 && bytes.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
  return bytes.slice(0, end);
}

describe("reading archives made by Python's tarfile", () => {
  for (const format of ["ustar", "gnu", "pax"] as const) {
    test(`${format}: every field matches what was written`, async () => {
      const { bytes, expected } = pythonArchive(format);
      const entries = await readAll(sourceOf(bytes));
      expect(entries.map((e) => asExpected(e, isDevice(e.entry.type)))).toEqual(expected);
    });
  }

  test("reads correctly whatever the chunk size of the input", async () => {
    const { bytes, expected } = pythonArchive("pax");
    for (const chunkSize of [3, 511, 513, 4096]) {
      const entries = await readAll(sourceOf(bytes, chunkSize));
      expect(entries.map((e) => asExpected(e, isDevice(e.entry.type)))).toEqual(expected);
    }
  });

  test("old-style '\\0' typeflag: a name ending in '/' is a directory, others are files", async () => {
    const file = path.join(tempDir(), "old.tar");
    run([
      "python3",
      "-c",
      `import tarfile, io
with tarfile.open(${JSON.stringify(file)}, "w", format=tarfile.GNU_FORMAT) as t:
    for name, data in (("olddir/", b""), ("oldfile", b"data")):
        i = tarfile.TarInfo(name); i.type = tarfile.AREGTYPE; i.size = len(data); t.addfile(i, io.BytesIO(data))`,
    ]);
    const bytes = fs.readFileSync(file);
    expect(bytes[156]).toBe(0);
    const entries = await readAll(sourceOf(bytes));
    expect(entries.map((e) => [e.entry.path, e.entry.type, new TextDecoder().decode(e.content)])).toEqual([
      ["olddir/", "dir", ""],
      ["oldfile", "file", "data"],
    ]);
  });

  test("PAX global headers apply to every later entry unless an entry overrides them", async () => {
    const file = path.join(tempDir(), "global.tar");
    run([
      "python3",
      "-c",
      `import tarfile, io
with tarfile.open(${JSON.stringify(file)}, "w", format=tarfile.PAX_FORMAT, pax_headers={"uname": "globaluser", "comment": "hi"}) as t:
    t.addfile(tarfile.TarInfo("a"))
    i = tarfile.TarInfo("b"); i.pax_headers = {"uname": "own"}; t.addfile(i)`,
    ]);
    const bytes = fs.readFileSync(file);
    expect(bytes[156]).toBe("g".charCodeAt(0));
    const entries = await readAll(sourceOf(bytes));
    expect(entries.map((e) => [e.entry.path, e.entry.uname])).toEqual([
      ["a", "globaluser"],
      ["b", "own"],
    ]);
  });
});

describe("reading archives made by GNU tar", () => {
  function makeTree(): string {
    const root = tempDir();
    const tree = path.join(root, "tree");
    const longDir = path.join(tree, "d".repeat(90), "e".repeat(90));
    fs.mkdirSync(longDir, { recursive: true });
    fs.writeFileSync(path.join(tree, "plain.txt"), "plain\n");
    fs.chmodSync(path.join(tree, "plain.txt"), 0o640);
    fs.chownSync(path.join(tree, "plain.txt"), 1234, 5678);
    fs.writeFileSync(path.join(longDir, `${"f".repeat(110)}.txt`), "deep\n");
    fs.writeFileSync(path.join(tree, "random.bin"), crypto.getRandomValues(new Uint8Array(65536 + 333)));
    fs.symlinkSync("../".repeat(40) + "target", path.join(tree, "longlink"));
    fs.symlinkSync("plain.txt", path.join(tree, "shortlink"));
    fs.linkSync(path.join(tree, "plain.txt"), path.join(tree, "hardlink"));
    run(["mkfifo", path.join(tree, "fifo")]);
    run(["mknod", path.join(tree, "null"), "c", "1", "3"]);
    run(["mknod", path.join(tree, "disk"), "b", "8", "1"]);
    run(["touch", "-h", "-d", "@1600000000.123456789", path.join(tree, "plain.txt")]);
    return tree;
  }

  /** Checks each read entry against lstat of the file it came from. */
  function checkAgainstTree(tree: string, entries: ReadEntry[], exactNs: boolean): void {
    const seen = new Set<string>();
    const inodes = new Map<bigint, string>();
    for (const { entry, content } of entries) {
      const rel = entry.path.replace(/^\.\//, "").replace(/\/$/, "");
      seen.add(rel);
      const full = rel === "" || rel === "." ? tree : path.join(tree, rel);
      const st = fs.lstatSync(full, { bigint: true });
      expect(entry.mode).toBe(Number(st.mode) & 0o7777);
      expect(entry.uid).toBe(Number(st.uid));
      expect(entry.gid).toBe(Number(st.gid));
      expect(entry.mtimeNs).toBe(exactNs ? st.mtimeNs : (st.mtimeNs / 1_000_000_000n) * 1_000_000_000n);
      expect(entry.uname).toBe(st.uid === 0n ? "root" : "");
      if (entry.type === "hardlink") {
        expect(inodes.get(st.ino)).toBe(entry.linkTarget.replace(/^\.\//, ""));
        continue;
      }
      inodes.set(st.ino, rel);
      if (st.isDirectory()) expect(entry.type).toBe("dir");
      else if (st.isSymbolicLink()) {
        expect(entry.type).toBe("symlink");
        expect(entry.linkTarget).toBe(fs.readlinkSync(full));
      } else if (st.isFIFO()) expect(entry.type).toBe("fifo");
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        expect(entry.type).toBe(st.isCharacterDevice() ? "char" : "block");
        expect([entry.devMajor, entry.devMinor]).toEqual([Number(st.rdev >> 8n) & 0xfff, Number(st.rdev & 0xffn)]);
      } else {
        expect(entry.type).toBe("file");
        expect(entry.size).toBe(Number(st.size));
        expect(hex(content)).toBe(hex(fs.readFileSync(full)));
      }
    }
    expect(seen.size).toBe(12);
  }

  test("--format=gnu with long names, long link targets, hard links, devices and fifos", async () => {
    const tree = makeTree();
    const bytes = run(["tar", "-C", tree, "--format=gnu", "-cf", "-", "."]);
    expect(new TextDecoder().decode(bytes)).toContain("././@LongLink");
    const entries = await readAll(sourceOf(bytes, 1000));
    checkAgainstTree(tree, entries, false);
    expect(entries.some((e) => e.entry.path.length > 255)).toBe(true);
    expect(entries.some((e) => e.entry.type === "symlink" && e.entry.linkTarget.length > 100)).toBe(true);
  });

  test("--format=posix --xattrs: exact nanosecond mtimes and binary xattr values", async () => {
    const tree = makeTree();
    run(["setfattr", "-n", "user.bin", "-v", "0x00ff80", path.join(tree, "plain.txt")]);
    run(["setfattr", "-n", "user.text", "-v", "hello", path.join(tree, "plain.txt")]);
    const bytes = run(["tar", "-C", tree, "--format=posix", "--xattrs", "-cf", "-", "."]);
    const entries = await readAll(sourceOf(bytes));
    checkAgainstTree(tree, entries, true);
    // plain.txt and hardlink share an inode: whichever tar met first carries the content and xattrs.
    const plain = entries.find((e) => (e.entry.path === "./plain.txt" || e.entry.path === "./hardlink") && e.entry.type === "file")!;
    expect(plain.entry.mtimeNs).toBe(1600000000123456789n);
    expect([...plain.entry.xattrs].map(([k, v]) => [k, hex(v)]).sort()).toEqual([
      ["user.bin", "00ff80"],
      ["user.text", hex(new TextEncoder().encode("hello"))],
    ]);
  });

  test("a source that refills one buffer for every chunk reads the same entries, xattrs and contents", async () => {
    const tree = makeTree();
    run(["setfattr", "-n", "user.bin", "-v", "0x00ff80", path.join(tree, "plain.txt")]);
    const bytes = run(["tar", "-C", tree, "--format=posix", "--xattrs", "-cf", "-", "."]);
    const expected = (await readAll(sourceOf(bytes))).map((e) => asExpected(e, true));
    for (const chunkSize of [700, 1000, 4096]) {
      const shared = Buffer.alloc(chunkSize);
      const refilling: ByteSource = {
        async *[Symbol.asyncIterator]() {
          for (let i = 0; i < bytes.length; i += chunkSize) {
            const piece = bytes.subarray(i, i + chunkSize);
            shared.set(piece);
            yield shared.subarray(0, piece.length);
            shared.fill(0xee);
          }
        },
      };
      const read: ReadEntry[] = [];
      for await (const { entry, body } of readTar(refilling)) {
        const pieces: Uint8Array[] = [];
        for await (const piece of body) pieces.push(new Uint8Array(piece));
        read.push({ entry, content: concatBytes(...pieces) });
      }
      expect(read.map((e) => asExpected(e, true))).toEqual(expected);
    }
  });

  test("--format=v7", async () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, "d"));
    fs.writeFileSync(path.join(root, "d", "f"), "v7 data");
    fs.symlinkSync("f", path.join(root, "d", "l"));
    const bytes = run(["tar", "-C", root, "--format=v7", "-cf", "-", "d"]);
    const entries = await readAll(sourceOf(bytes));
    expect(entries.map((e) => [e.entry.path, e.entry.type, e.entry.linkTarget, new TextDecoder().decode(e.content)]).sort()).toEqual([
      ["d/", "dir", "", ""],
      ["d/f", "file", "", "v7 data"],
      ["d/l", "symlink", "f", ""],
    ]);
  });
});

describe("archive ends and bad input", () => {
  test("an archive without end-of-archive blocks is read completely", async () => {
    const { bytes, expected } = pythonArchive("gnu");
    const trimmed = stripTrailer(bytes);
    expect(trimmed.length).toBeLessThan(bytes.length);
    const entries = await readAll(sourceOf(trimmed));
    expect(entries.map((e) => asExpected(e, isDevice(e.entry.type)))).toEqual(expected);
  });

  test("an archive ending after one zero block is read completely", async () => {
    const { bytes, expected } = pythonArchive("ustar");
    const oneBlock = concatBytes(stripTrailer(bytes), new Uint8Array(512));
    expect((await readAll(sourceOf(oneBlock))).length).toBe(expected.length);
  });

  test("an empty stream is an empty archive", async () => {
    expect(await readAll(sourceOf(new Uint8Array(0)))).toEqual([]);
  });

  test("a stream cut inside a file's content fails with unexpected EOF", async () => {
    const { bytes } = pythonArchive("ustar");
    const error = await rejection(readAll(sourceOf(bytes.slice(0, 512 * 6 + 100))));
    expect(error).toBeInstanceOf(ArchiveError);
    expect(error.message).toMatch(/^unexpected EOF: the tar stream ends inside the content of "dir\/big.bin"/);
  });

  test("a stream cut inside a header fails with unexpected EOF", async () => {
    const { bytes } = pythonArchive("ustar");
    const error = await rejection(readAll(sourceOf(bytes.slice(0, 512 + 200))));
    expect(error).toBeInstanceOf(ArchiveError);
    expect(error.message).toMatch(/^unexpected EOF: the tar stream ends inside a header at byte offset 512$/);
  });

  test("a stream cut between a PAX header and its entry fails", async () => {
    const { bytes } = pythonArchive("pax");
    const error = await rejection(readAll(sourceOf(bytes.slice(0, 1024))));
    expect(error.message).toMatch(/^unexpected EOF/);
  });

  test("random bytes fail as an invalid tar header", async () => {
    const error = await rejection(readAll(sourceOf(crypto.getRandomValues(new Uint8Array(4096)))));
    expect(error).toBeInstanceOf(ArchiveError);
    expect(error.message).toBe("archive/tar: invalid tar header (checksum mismatch at byte offset 0)");
  });

  test("a short text file fails with unexpected EOF", async () => {
    const error = await rejection(readAll(sourceOf(new TextEncoder().encode("this is not a tar file\n"))));
    expect(error).toBeInstanceOf(ArchiveError);
    expect(error.message).toMatch(/^unexpected EOF/);
  });

  test("a damaged header names its offset", async () => {
    const { bytes } = pythonArchive("ustar");
    const damaged = bytes.slice();
    damaged[1536 + 3] = damaged[1536 + 3]! ^ 0x01; // the third header: dir/, dir/hello.txt and its content come first
    const entries: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const { entry } of readTar(sourceOf(damaged))) entries.push(entry.path);
      })(),
    );
    expect(entries).toEqual(["dir/", "dir/hello.txt"]);
    expect(error.message).toBe("archive/tar: invalid tar header (checksum mismatch at byte offset 1536)");
  });

  test("an entry type the codec does not handle (a GNU volume label) fails naming it", async () => {
    const file = path.join(tempDir(), "volume.tar");
    run([
      "python3",
      "-c",
      `import tarfile
with tarfile.open(${JSON.stringify(file)}, "w", format=tarfile.GNU_FORMAT) as t:
    i = tarfile.TarInfo("label"); i.type = b"V"; t.addfile(i)`,
    ]);
    const error = await rejection(readAll(sourceOf(fs.readFileSync(file))));
    expect(error).toBeInstanceOf(ArchiveError);
    expect(error.message).toBe('archive/tar: unsupported entry type "V" for "label"');
  });

  test("a malformed PAX record fails as an invalid header", async () => {
    const file = path.join(tempDir(), "pax.tar");
    run([
      "python3",
      "-c",
      `import tarfile
with tarfile.open(${JSON.stringify(file)}, "w", format=tarfile.PAX_FORMAT) as t:
    i = tarfile.TarInfo("a"); i.pax_headers = {"comment": "x"}; t.addfile(i)`,
    ]);
    const bytes = new Uint8Array(fs.readFileSync(file));
    expect(new TextDecoder().decode(bytes.subarray(512, 525))).toBe("13 comment=x\n");
    bytes[512] = "9".charCodeAt(0); // the record now claims 93 bytes
    const error = await rejection(readAll(sourceOf(bytes)));
    expect(error.message).toBe("archive/tar: invalid tar header (malformed PAX record at byte offset 0)");
  });

  test("a zero block followed by a header is rejected", async () => {
    const { bytes } = pythonArchive("ustar");
    const withGap = concatBytes(new Uint8Array(512), bytes);
    expect((await rejection(readAll(sourceOf(withGap)))).message).toMatch(/^archive\/tar: invalid tar header/);
  });

  test("bytes after the end-of-archive blocks are read (so the whole stream is measured) and ignored", async () => {
    const { bytes, expected } = pythonArchive("ustar");
    const extra = concatBytes(bytes, new TextEncoder().encode("trailing junk"));
    let consumed = 0;
    const counting = {
      async *[Symbol.asyncIterator]() {
        for await (const chunk of sourceOf(extra, 4096)) {
          consumed += chunk.length;
          yield chunk;
        }
      },
    };
    expect((await readAll(counting)).length).toBe(expected.length);
    expect(consumed).toBe(extra.length);
  });

  test("unread bodies are skipped; reading a body after moving on fails", async () => {
    const { bytes } = pythonArchive("ustar");
    const names: string[] = [];
    let stale: AsyncIterable<Uint8Array> | undefined;
    for await (const { entry, body } of readTar(sourceOf(bytes, 1000))) {
      names.push(entry.path);
      if (entry.path === "dir/big.bin") stale = body;
    }
    expect(names).toContain(`${"p".repeat(60)}/${"q".repeat(60)}/split-name.txt`);
    const error = await rejection(collectBytes(stale!));
    expect(error.message).toBe('tar entry "dir/big.bin": content read after moving to the next entry');
  });
});

function entry(fields: Partial<TarEntry> & Pick<TarEntry, "path" | "type">): TarEntry {
  return {
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: "root",
    gname: "root",
    size: 0,
    mtimeNs: 1700000000_000000000n,
    linkTarget: "",
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
    ...fields,
  };
}

describe("TarWriter", () => {
  const big = crypto.getRandomValues(new Uint8Array(200_000));
  const longName = `long/${"n".repeat(150)}.txt`;
  const veryLong = `${["deep".repeat(20)].join("")}/${"x".repeat(90)}/${"y".repeat(90)}/${"z".repeat(90)}.txt`;
  const entries: [TarEntry, Uint8Array?][] = [
    [entry({ path: "dir/", type: "dir", mode: 0o755, uid: 1000, gid: 1001, uname: "alice", gname: "staff" })],
    [entry({ path: "dir/hello.txt", type: "file", size: 6, mode: 0o4750 }), new TextEncoder().encode("hello\n")],
    [entry({ path: "dir/big.bin", type: "file", size: big.length }), big],
    [entry({ path: "dir/empty", type: "file", size: 0, mode: 0o600 })],
    [entry({ path: "dir/link", type: "symlink", linkTarget: "hello.txt", mode: 0o777 })],
    [entry({ path: "dir/hard", type: "hardlink", linkTarget: "dir/hello.txt" })],
    [entry({ path: "null", type: "char", devMajor: 1, devMinor: 3, mode: 0o666 })],
    [entry({ path: "sda", type: "block", devMajor: 8, devMinor: 16, mode: 0o660 })],
    [entry({ path: "pipe", type: "fifo", mode: 0o600 })],
    [entry({ path: longName, type: "file", size: 5 }), new TextEncoder().encode("long\n")],
    [entry({ path: veryLong, type: "file", size: 5 }), new TextEncoder().encode("deep\n")],
    [entry({ path: "ünïcödé.txt", type: "file", size: 4, uname: "jörg" }), new TextEncoder().encode("utf\n")],
    [entry({ path: "longlink", type: "symlink", linkTarget: "../".repeat(50) + "t" })],
    [entry({ path: "big-ids", type: "file", size: 1, uid: 3_000_000, gid: 4_000_000 }), new Uint8Array([0x41])],
    [entry({ path: "old", type: "file", size: 1, mtimeNs: -1000_000000000n }), new Uint8Array([0x42])],
    [
      entry({
        path: "xattrs",
        type: "file",
        size: 1,
        xattrs: new Map([
          ["user.bin", new Uint8Array([0, 0xff, 0x80])],
          ["user.text", new TextEncoder().encode("héllo")],
        ]),
      }),
      new Uint8Array([0x43]),
    ],
  ];

  async function writeArchive(file: string): Promise<void> {
    const sink = fileSink(file);
    const writer = new TarWriter(sink);
    for (const [e, body] of entries) {
      // Bodies of the bigger file come as a stream of chunks, the others as one array.
      const source = body && body.length > 100_000 ? sourceOf(body, 30_000) : body;
      await writer.add(e, source);
    }
    await writer.finish();
    await sink.close();
  }

  test("our reader reads back every field", async () => {
    const file = path.join(tempDir(), "out.tar");
    await writeArchive(file);
    const read = await readAll(sourceOf(fs.readFileSync(file)));
    expect(read.map((r) => r.entry)).toEqual(entries.map(([e]) => e));
    expect(read.map((r) => sha256(r.content))).toEqual(entries.map(([, body]) => sha256(body ?? new Uint8Array(0))));
  });

  test("Python's tarfile reads the same fields", async () => {
    const file = path.join(tempDir(), "out.tar");
    await writeArchive(file);
    const dumped = pythonDump(file);
    const expected = entries.map(([e, body]) => ({
      path: e.path.replace(/\/$/, ""),
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      uname: e.uname,
      gname: e.gname,
      size: e.size,
      mtimeNs: String(e.mtimeNs),
      linkTarget: e.linkTarget,
      devMajor: e.devMajor,
      devMinor: e.devMinor,
      sha256: sha256(body ?? new Uint8Array(0)),
      xattrs: Object.fromEntries([...e.xattrs].map(([k, v]) => [k, hex(v)])),
    }));
    expect(dumped.map(({ paxKeys: _, ...rest }: ExpectedEntry & { paxKeys?: string[] }) => rest)).toEqual(expected);
  });

  test("GNU tar lists and extracts it with owners, devices, links and xattrs", async () => {
    const dir = tempDir();
    const file = path.join(dir, "out.tar");
    await writeArchive(file);
    const listing = new TextDecoder().decode(run(["tar", "-tvf", file]));
    expect(listing).toContain("alice/staff");
    expect(listing).toContain(longName);
    expect(listing).toContain(veryLong);
    const out = path.join(dir, "x");
    fs.mkdirSync(out);
    run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", file, "-C", out]);
    expect(fs.readFileSync(path.join(out, "dir/hello.txt"), "utf8")).toBe("hello\n");
    expect(fs.statSync(path.join(out, "dir/hello.txt")).mode & 0o7777).toBe(0o4750);
    expect(sha256(fs.readFileSync(path.join(out, "dir/big.bin")))).toBe(sha256(big));
    expect(fs.readlinkSync(path.join(out, "dir/link"))).toBe("hello.txt");
    expect(fs.statSync(path.join(out, "dir/hard")).ino).toBe(fs.statSync(path.join(out, "dir/hello.txt")).ino);
    const nul = fs.statSync(path.join(out, "null"));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe(0x103);
    expect(fs.statSync(path.join(out, "sda")).isBlockDevice()).toBe(true);
    expect(fs.statSync(path.join(out, "pipe")).isFIFO()).toBe(true);
    expect(fs.readFileSync(path.join(out, longName), "utf8")).toBe("long\n");
    expect(fs.readFileSync(path.join(out, veryLong), "utf8")).toBe("deep\n");
    expect(fs.readFileSync(path.join(out, "ünïcödé.txt"), "utf8")).toBe("utf\n");
    expect(fs.readlinkSync(path.join(out, "longlink"))).toBe("../".repeat(50) + "t");
    const ids = fs.statSync(path.join(out, "big-ids"));
    expect([ids.uid, ids.gid]).toEqual([3_000_000, 4_000_000]);
    expect(fs.statSync(path.join(out, "old")).mtimeMs).toBe(-1000_000);
    expect(fs.statSync(path.join(out, "dir")).mtimeMs).toBe(1700000000_000);
    const attrs = new TextDecoder().decode(run(["getfattr", "-d", "-e", "hex", path.join(out, "xattrs")]));
    expect(attrs).toContain("user.bin=0x00ff80");
    expect(attrs).toContain(`user.text=0x${hex(new TextEncoder().encode("héllo"))}`);
  });

  test("plain entries are ustar without PAX headers, and the stream ends with exactly two zero blocks", async () => {
    const sink = memorySink();
    const writer = new TarWriter(sink);
    await writer.add(entry({ path: "a.txt", type: "file", size: 3 }), new Uint8Array([1, 2, 3]));
    await writer.add(entry({ path: `${"p".repeat(120)}/name.txt`, type: "file", size: 0 }));
    await writer.finish();
    const bytes = sink.bytes();
    expect(bytes.length).toBe(512 * 5);
    expect(new TextDecoder().decode(bytes.subarray(257, 265))).toBe("ustar\u000000");
    expect(bytes[156]).toBe(0x30);
    expect(bytes[1024 + 156]).toBe(0x30); // split into prefix and name, no PAX header
    expect(bytes.subarray(512 * 3).every((b) => b === 0)).toBe(true);
    expect(sink.closed).toBe(false);
    expect(new TextDecoder().decode(run(["tar", "-tf", "-"], { stdin: bytes }))).toBe(`a.txt\n${"p".repeat(120)}/name.txt\n`);
  });

  test("mtime is rounded to the nearest second, as Go's writer does", async () => {
    const sink = memorySink();
    const writer = new TarWriter(sink);
    await writer.add(entry({ path: "up", type: "dir", mtimeNs: 1700000000_600000000n }));
    await writer.add(entry({ path: "down", type: "dir", mtimeNs: 1700000000_400000000n }));
    await writer.finish();
    const read = await readAll(sourceOf(sink.bytes()));
    expect(read.map((r) => r.entry.mtimeNs)).toEqual([1700000001_000000000n, 1700000000_000000000n]);
  });

  test("a body shorter or longer than the entry size is an error", async () => {
    const writer = new TarWriter(memorySink());
    const short = await rejection(writer.add(entry({ path: "short", type: "file", size: 10 }), sourceOf(new Uint8Array(4))));
    expect(short).toBeInstanceOf(ArchiveError);
    expect(short.message).toBe('tar entry "short": content is 4 bytes, shorter than its size 10');
    const long = await rejection(new TarWriter(memorySink()).add(entry({ path: "long", type: "file", size: 2 }), new Uint8Array(3)));
    expect(long.message).toBe('tar entry "long": content is longer than its size 2');
  });
});
