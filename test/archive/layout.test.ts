import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { ArchiveError } from "../../src/errors.ts";
import { LayoutRecorder, reproduceTar } from "../../src/archive/layout.ts";
import { readTar } from "../../src/archive/tar-reader.ts";
import { TarWriter } from "../../src/archive/tar-writer.ts";
import type { TarEntry } from "../../src/archive/types.ts";
import { FIXTURES, concatBytes, memorySink, rejection, removeTempDirs, run, sha256, sourceOf, tempDir, SLOW_TEST_TIMEOUT } from "./tar-fixtures.ts";

// These tests run tar, Python and compressors; the default 5 s is tight on a busy machine.
setDefaultTimeout(SLOW_TEST_TIMEOUT);
afterAll(removeTempDirs);

/** Archive path -> path under root: "./" and "/" dropped, ".." clamped (as extraction does). */
function underRoot(root: string, archivePath: string): string {
  const parts: string[] = [];
  for (const part of archivePath.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return path.join(root, ...parts);
}

/** One pass over the archive: a minimal extraction of directories and files, while recording the layout. */
async function extractAndRecord(bytes: Uint8Array, root: string, chunkSize = 64 * 1024): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  const recorder = new LayoutRecorder(async (chunk) => {
    await Promise.resolve();
    chunks.push(chunk);
  });
  for await (const { entry, body } of readTar(sourceOf(bytes, chunkSize), { recorder })) {
    const target = underRoot(root, entry.path);
    if (entry.type === "dir") fs.mkdirSync(target, { recursive: true });
    if (entry.type !== "file") continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(target, "w");
    for await (const piece of body) fs.writeSync(fd, piece);
    fs.closeSync(fd);
  }
  await recorder.finish();
  return chunks;
}

async function reproduce(chunks: Iterable<Uint8Array>, root: string): Promise<Uint8Array> {
  const sink = memorySink();
  await reproduceTar(chunks, root, sink);
  return sink.bytes();
}

/** Larger than reproduceTar's 1 MiB buffer, so the file is streamed in pieces. */
const BIG_FILE_SIZE = 1536 * 1024 + 17;

function gnuTarTree(): { tree: string; bytes: Uint8Array } {
  const tree = path.join(tempDir(), "tree");
  fs.mkdirSync(path.join(tree, "etc"), { recursive: true });
  fs.writeFileSync(path.join(tree, "etc", "hosts"), "127.0.0.1 localhost\n");
  fs.writeFileSync(path.join(tree, "big.bin"), crypto.getRandomValues(new Uint8Array(BIG_FILE_SIZE)));
  fs.writeFileSync(path.join(tree, `${"n".repeat(150)}.txt`), "long name\n");
  fs.writeFileSync(path.join(tree, "empty"), "");
  fs.symlinkSync("etc/hosts", path.join(tree, "link"));
  fs.linkSync(path.join(tree, "etc", "hosts"), path.join(tree, "hard"));
  run(["setfattr", "-n", "user.note", "-v", "0x0001ff", path.join(tree, "etc", "hosts")]);
  // Default blocking factor: the archive is padded to a multiple of 10240 bytes.
  const bytes = run(["tar", "-C", tree, "--format=posix", "--xattrs", "-cf", "-", "."]);
  return { tree, bytes };
}

describe("byte-exact reproduction", () => {
  test("the same bytes reach a sink that keeps every chunk and one that copies them (and lets the buffer be reused)", async () => {
    const { bytes } = gnuTarTree();
    const root = path.join(tempDir(), "layer");
    const chunks = await extractAndRecord(bytes, root);
    const kept: Uint8Array[] = [];
    await reproduceTar(chunks, root, { write: (chunk) => void kept.push(chunk), close: async () => {} });
    const copied = memorySink();
    await reproduceTar(chunks, root, { consumesChunks: true, write: (chunk) => copied.write(new Uint8Array(chunk)), close: async () => {} });
    expect(sha256(new Uint8Array(Buffer.concat(kept)))).toBe(sha256(bytes));
    expect(sha256(copied.bytes())).toBe(sha256(bytes));
  });

  test("a GNU tar archive padded to 10240 bytes comes back byte for byte", async () => {
    const { bytes } = gnuTarTree();
    expect(bytes.length % 10240).toBe(0);
    const root = path.join(tempDir(), "layer");
    const chunks = await extractAndRecord(bytes, root, 4093);
    expect(sha256(await reproduce(chunks, root))).toBe(sha256(bytes));
  });

  test("Python PAX and GNU archives come back byte for byte", async () => {
    for (const format of ["pax", "gnu"]) {
      const file = path.join(tempDir(), `${format}.tar`);
      run(["python3", path.join(FIXTURES, "make_tar.py"), format, file]);
      const bytes = new Uint8Array(fs.readFileSync(file));
      const root = path.join(tempDir(), "layer");
      const chunks = await extractAndRecord(bytes, root);
      expect(sha256(await reproduce(chunks, root))).toBe(sha256(bytes));
    }
  });

  test("an archive without end-of-archive blocks, and one with megabytes of junk after them, come back as they were", async () => {
    const { bytes } = gnuTarTree();
    let end = bytes.length;
    while (bytes.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
    for (const variant of [bytes.slice(0, end), concatBytes(bytes, crypto.getRandomValues(new Uint8Array(2_500_000)), new TextEncoder().encode("junk after the trailer"))]) {
      const root = path.join(tempDir(), "layer");
      const chunks = await extractAndRecord(variant, root);
      expect(sha256(await reproduce(chunks, root))).toBe(sha256(variant));
    }
  });

  test("an empty stream reproduces as an empty stream", async () => {
    const root = tempDir();
    const chunks = await extractAndRecord(new Uint8Array(0), root);
    expect((await reproduce(chunks, root)).length).toBe(0);
  });

  test("layers with many entries are recorded in several bounded chunks", async () => {
    const sink = memorySink();
    const writer = new TarWriter(sink);
    for (let i = 0; i < 3000; i++) {
      // Long names and link targets need PAX headers: about 1.5 KiB of layout per entry.
      const isFile = i % 100 === 0;
      const content = new TextEncoder().encode(`file ${i}\n`);
      const entry: TarEntry = {
        path: `dir/${String(i).padStart(5, "0")}-${"x".repeat(200)}`,
        type: isFile ? "file" : "symlink",
        mode: 0o644,
        uid: i,
        gid: i,
        uname: "",
        gname: "",
        size: isFile ? content.length : 0,
        mtimeNs: BigInt(i) * 1_000_000_000n,
        linkTarget: isFile ? "" : `target-${"y".repeat(150)}-${i}`,
        devMajor: 0,
        devMinor: 0,
        xattrs: new Map(),
      };
      await writer.add(entry, isFile ? content : undefined);
    }
    await writer.finish();
    const bytes = sink.bytes();
    const root = tempDir();
    const chunks = await extractAndRecord(bytes, root);
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    expect(sha256(await reproduce(chunks, root))).toBe(sha256(bytes));
  });

  test("files are looked up inside the root: symlinked directories resolve within it, '..' is clamped", async () => {
    const sink = memorySink();
    const writer = new TarWriter(sink);
    const base: Omit<TarEntry, "path" | "type"> = {
      mode: 0o644,
      uid: 0,
      gid: 0,
      uname: "root",
      gname: "root",
      size: 0,
      mtimeNs: 0n,
      linkTarget: "",
      devMajor: 0,
      devMinor: 0,
      xattrs: new Map(),
    };
    const content = new TextEncoder().encode("inside the layer\n");
    await writer.add({ ...base, path: "esc", type: "symlink", linkTarget: "/etc" });
    await writer.add({ ...base, path: "esc/hostname", type: "file", size: content.length }, content);
    await writer.add({ ...base, path: "a/../../up.txt", type: "file", size: content.length }, content);
    await writer.finish();
    const bytes = sink.bytes();

    const chunks: Uint8Array[] = [];
    const recorder = new LayoutRecorder((chunk) => void chunks.push(chunk));
    for await (const _ of readTar(sourceOf(bytes), { recorder })) {
      // nothing extracted: the layer directory is prepared by hand below
    }
    const root = tempDir();
    fs.symlinkSync("/etc", path.join(root, "esc"));
    fs.mkdirSync(path.join(root, "etc"));
    fs.writeFileSync(path.join(root, "etc", "hostname"), content);
    fs.writeFileSync(path.join(root, "up.txt"), content);
    expect(sha256(await reproduce(chunks, root))).toBe(sha256(bytes));
  });
});

describe("integrity checks", () => {
  async function recordedTree(): Promise<{ root: string; chunks: Uint8Array[] }> {
    const { bytes } = gnuTarTree();
    const root = path.join(tempDir(), "layer");
    return { root, chunks: await extractAndRecord(bytes, root) };
  }

  test("a file whose content changed (same size) fails with the integrity message", async () => {
    const { root, chunks } = await recordedTree();
    fs.writeFileSync(path.join(root, "etc", "hosts"), "127.0.0.1 localhosX\n");
    const error = await rejection(reproduce(chunks, root));
    expect(error).toBeInstanceOf(ArchiveError);
    expect(error.message).toMatch(/^file integrity checksum failed for "\.\/(etc\/hosts|hard)"$/);
  });

  test("a large file changed in its last byte fails", async () => {
    const { root, chunks } = await recordedTree();
    const fd = fs.openSync(path.join(root, "big.bin"), "r+");
    const last = new Uint8Array(1);
    fs.readSync(fd, last, 0, 1, BIG_FILE_SIZE - 1);
    fs.writeSync(fd, new Uint8Array([last[0]! ^ 1]), 0, 1, BIG_FILE_SIZE - 1);
    fs.closeSync(fd);
    expect((await rejection(reproduce(chunks, root))).message).toBe('file integrity checksum failed for "./big.bin"');
  });

  test("a file that grew, or was removed, fails", async () => {
    const { root, chunks } = await recordedTree();
    fs.appendFileSync(path.join(root, "big.bin"), "more");
    expect((await rejection(reproduce(chunks, root))).message).toBe('file integrity checksum failed for "./big.bin"');
    const again = await recordedTree();
    fs.rmSync(path.join(again.root, `${"n".repeat(150)}.txt`));
    expect((await rejection(reproduce(again.chunks, again.root))).message).toBe(`file integrity checksum failed for "./${"n".repeat(150)}.txt"`);
  });

  test("damaged or incomplete layout data is reported, not reproduced", async () => {
    const { root, chunks } = await recordedTree();
    expect((await rejection(reproduce(chunks.slice(0, -1), root))).message).toBe("layer layout data is corrupt: the end record is missing");
    const damaged = chunks.map((c) => c.slice());
    damaged[0]![damaged[0]!.length - 3] = damaged[0]![damaged[0]!.length - 3]! ^ 0xff;
    expect((await rejection(reproduce(damaged, root))).message).toMatch(/^layer layout data is corrupt/);
  });
});
