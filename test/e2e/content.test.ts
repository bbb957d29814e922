/** End-to-end: applydiff, import-layer, diff, changes, diffsize, mount and unmount through the compiled binary. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore, availableDrivers, runBinary } from "../helpers/cli.ts";
import { makeTar, sh, sha256Bytes, sha256File, straceAvailable } from "../helpers/fixtures.ts";

const BASE = {
  "etc/": "",
  "etc/hosts": "127.0.0.1 localhost\n",
  "etc/passwd": "root:x:0:0::/root:/bin/sh\n",
  "data/": "",
  "data/file1": "one",
  "data/sub/": "",
  "data/sub/file2": "two",
  "data/link": "-> file1",
};

/** Lists a tar's member names with GNU tar. */
function tarNames(bytes: Uint8Array): string[] {
  const file = join(mkdtempSync(join(tmpdir(), "oci-list-")), "x.tar");
  writeFileSync(file, bytes);
  return sh(["tar", "-tf", file]).trim().split("\n").filter(Boolean);
}

for (const driver of availableDrivers()) {
  describe(`content on ${driver}`, () => {
    let s: TestStore;
    beforeEach(() => {
      s = new TestStore(driver);
    });
    afterEach(() => s.destroy());

    test("applydiff records digests and sizes, and diff -u reproduces the tar byte for byte", () => {
      const tar = makeTar(BASE);
      s.ok(["create-layer", "-i", "L"]);
      expect(s.ok(["applydiff", "-f", tar, "L"])).toBe("");
      const rec = s.json(["layer", "-j", "L"])[0];
      const digest = `sha256:${sha256File(tar)}`;
      const size = readFileSync(tar).byteLength;
      expect(rec["diff-digest"]).toBe(digest);
      expect(rec["compressed-diff-digest"]).toBe(digest);
      expect(rec["diff-size"]).toBe(size);
      expect(rec["compressed-size"]).toBe(size);
      expect(rec.compression).toBeUndefined();
      expect(rec.uidset).toEqual([0]);
      const out = s.cli(["diff", "-u", "L"]);
      expect(out.code).toBe(0);
      expect(sha256Bytes(out.stdoutBytes)).toBe(sha256File(tar));
      // Without an option the diff is compressed as the input was: plain here.
      expect(sha256Bytes(s.cli(["diff", "L"]).stdoutBytes)).toBe(sha256File(tar));
    });

    test("import-layer of gzip and zstd input records the compression and diffs compressed the same way", () => {
      const tar = makeTar(BASE);
      for (const [tool, code, magic] of [
        ["gzip", 2, [0x1f, 0x8b]],
        ["zstd", 4, [0x28, 0xb5]],
      ] as const) {
        sh([tool, "-k", "-f", tar]);
        const packed = tool === "gzip" ? `${tar}.gz` : `${tar}.zst`;
        const rec = s.json(["import-layer", "-j", "-f", packed]);
        expect(rec.compression).toBe(code);
        expect(rec["compressed-diff-digest"]).toBe(`sha256:${sha256File(packed)}`);
        expect(rec["diff-digest"]).toBe(`sha256:${sha256File(tar)}`);
        const out = s.cli(["diff", rec.id]).stdoutBytes;
        expect([...out.subarray(0, 2)]).toEqual([...magic]);
        expect(sha256Bytes(s.cli(["diff", "-u", rec.id]).stdoutBytes)).toBe(sha256File(tar));
        const gz = s.cli(["diff", "-c", rec.id]).stdoutBytes;
        expect([...gz.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
        expect(sha256Bytes(Bun.gunzipSync(new Uint8Array(gz)))).toBe(sha256File(tar));
      }
    });

    test("import-layer from stdin; a broken tar fails with one line and leaves no layer", () => {
      const tar = makeTar({ "a.txt": "A" });
      const rec = s.json(["import-layer", "-j", "-n", "imp"], { stdin: Bun.file(tar) });
      expect(rec.names).toEqual(["imp"]);
      const garbage = new Uint8Array(4096).map((_, i) => (i * 7 + 3) % 251);
      const r = s.cli(["import-layer", "-n", "bad"], { stdin: garbage });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toContain("    at ");
      expect(s.json(["layers", "-j"]).map((l: any) => l.names)).toEqual([["imp"]]);
      expect(s.cli(["import-layer", "-f", "/nonexistent.tar"]).stderr).toBe("open /nonexistent.tar: no such file or directory\n");
    });

    test("a sparse tar (GNU tar --sparse, old GNU and PAX forms) is refused with one line; the layer stays empty", () => {
      const tree = mkdtempSync(join(tmpdir(), "oci-sparse-"));
      sh(["truncate", "-s", "8M", join(tree, "holes")]);
      writeFileSync(join(tree, "plain"), "x");
      sh(["bash", "-c", `echo data | dd of='${join(tree, "holes")}' bs=1 seek=4000000 conv=notrunc status=none`]);
      s.ok(["create-layer", "-i", "L"]);
      try {
        for (const format of ["gnu", "posix"]) {
          const tar = join(tree, `${format}.tar`);
          sh(["tar", "--sparse", `--format=${format}`, "-C", tree, "-cf", tar, "holes", "plain"]);
          const r = s.cli(["applydiff", "-f", tar, "L"]);
          expect(r.code).toBe(1);
          expect(r.stderr).toMatch(format === "gnu" ? /^archive\/tar: unsupported entry type "S" for "holes"\n$/ : /^archive\/tar: sparse files are not supported \(entry at byte offset \d+\)\n$/);
          expect(s.ok(["diffsize", "L"])).toBe("0\n");
        }
      } finally {
        rmSync(tree, { recursive: true, force: true });
      }
    });

    test("changes, diffsize and diff of a child layer against its parent", () => {
      s.ok(["import-layer", "-i", "P", "-f", makeTar(BASE)]);
      s.ok(["create-layer", "-i", "C", "P"]);
      const upper = makeTar({ "data/": "", "data/sub/": "", "data/sub/.wh.file2": "", "data/sub/file3": "three", "data/.wh.link": "", "etc/": "", "etc/hosts": "changed hosts\n", "newfile": "new" });
      s.ok(["applydiff", "-f", upper, "C"]);
      const lines = s.ok(["changes", "C"]).trim().split("\n");
      expect(new Set(lines)).toEqual(
        new Set(['Modify "/data"', 'Modify "/data/sub"', 'Add "/data/sub/file3"', 'Delete "/data/sub/file2"', 'Delete "/data/link"', 'Modify "/etc"', 'Modify "/etc/hosts"', 'Add "/newfile"']),
      );
      const json = s.json(["changes", "-j", "C"]);
      expect(json).toContainEqual({ Path: "/newfile", Kind: 1 });
      expect(json).toContainEqual({ Path: "/data/sub/file2", Kind: 2 });
      expect(s.ok(["diffsize", "C"])).toBe(`${"three".length + "changed hosts\n".length + "new".length}\n`);
      // Compared with an explicit reference (not the parent) the diff is computed from the trees.
      s.ok(["create-layer", "-i", "E"]);
      const names = tarNames(s.cli(["diff", "-u", "C", "E"]).stdoutBytes);
      expect(names).toContain("newfile");
      expect(names).toContain("etc/hosts");
      expect(s.ok(["changes", "P", "P"])).toBe("");
      expect(s.ok(["changes", "-j", "P", "P"])).toBe("null\n");
    });

    test("a new layer without applied content diffs as a tree comparison with whiteouts", () => {
      s.ok(["import-layer", "-i", "P", "-f", makeTar(BASE)]);
      s.ok(["create-layer", "-i", "C", "P"]);
      const mount = s.ok(["mount", "C"]).trim();
      writeFileSync(join(mount, "added"), "x");
      require("node:fs").rmSync(join(mount, "etc", "passwd"));
      s.ok(["unmount", "C"]);
      const names = tarNames(s.cli(["diff", "-u", "C"]).stdoutBytes);
      expect(names).toEqual(["added", "etc/", "etc/.wh.passwd"]);
    });

    test("diff with bzip2 or xz is refused clearly", () => {
      s.ok(["create-layer", "-i", "L"]);
      expect(s.cli(["diff", "-b", "L"]).stderr).toBe("unsupported compression format tar.bz2\n");
      expect(s.cli(["diff", "-x", "-c", "L"]).stderr).toBe("unsupported compression format tar.xz\n");
    });

    test("diff -f writes the file", () => {
      const tar = makeTar(BASE);
      s.ok(["import-layer", "-i", "L", "-f", tar]);
      const out = join(s.dir, "out.tar");
      s.ok(["diff", "-u", "-f", out, "L"]);
      expect(sha256File(out)).toBe(sha256File(tar));
    });

    test.skipIf(!straceAvailable("the test of fsyncs by mount and unmount"))("mount counts are written without fsync, and a counts file left damaged (as a machine that stops may leave it) is started again", () => {
      s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
      s.ok(["mount", "L"]);
      s.ok(["unmount", "L"]);
      writeFileSync(join(s.run, "mounts.db"), "SQLite format 3\0 and then a page cut short");
      const trace = join(s.dir, "fsyncs");
      const traced = (args: string[]) => runBinary(["-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range,syncfs", "-e", "signal=none", "-o", trace, BINARY, ...s.globals, ...args], {}, "strace");
      const mounted = traced(["mount", "L"]);
      expect({ code: mounted.code, stderr: mounted.stderr }).toEqual({ code: 0, stderr: "" });
      expect(readFileSync(trace, "utf8")).toBe("");
      expect(s.ok(["mounted", "L"])).toBe("L mounted\n");
      const unmounted = traced(["unmount", "L"]);
      expect({ code: unmounted.code, stdout: unmounted.stdout }).toEqual({ code: 0, stdout: "L mountpoint unmounted\n" });
      expect(readFileSync(trace, "utf8")).toBe("");
      expect(s.cli(["check"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
    });

    test("a diff whose layer another command deletes meanwhile fails with one line saying so", async () => {
      const tree = mkdtempSync(join(tmpdir(), "oci-deleted-"));
      try {
        // 32 MiB: far more than a pipe and the diff's buffers hold before the reader reads.
        for (let i = 0; i < 8; i++) writeFileSync(join(tree, `f${i}`), new Uint8Array(4 << 20).map((_, j) => (j * 31 + i) & 255));
        const tar = join(tree, "layer.tar");
        sh(["tar", "-C", tree, "-cf", tar, "--exclude", "layer.tar", "."]);
        s.ok(["import-layer", "-i", "L", "-f", tar]);
        const reader = Bun.spawn([BINARY, ...s.globals, "diff", "L"], { stdout: "pipe", stderr: "pipe" });
        const chunks = reader.stdout.getReader();
        // The diff has started (its first bytes are here) and waits for this reader: delete the layer under it.
        expect((await chunks.read()).done).toBe(false);
        s.ok(["delete-layer", "L"]);
        while (!(await chunks.read()).done);
        expect(await reader.exited).toBe(1);
        expect(await new Response(reader.stderr).text()).toBe("layer L was deleted by another command while this one read it\n");
      } finally {
        rmSync(tree, { recursive: true, force: true });
      }
    });

    test("mount counts: mount twice needs unmount twice; --force drops the count", () => {
      s.ok(["import-layer", "-i", "L", "-n", "lay", "-f", makeTar(BASE)]);
      const path = s.ok(["mount", "lay"]).trim();
      expect(readFileSync(join(path, "etc", "hosts"), "utf8")).toBe("127.0.0.1 localhost\n");
      expect(readlinkSync(join(path, "data", "link"))).toBe("file1");
      expect(s.ok(["mount", "L"]).trim()).toBe(path);
      expect(s.ok(["mounted", "L"])).toBe("L mounted\n");
      expect(s.ok(["unmount", "L"])).toBe("");
      expect(s.ok(["mounted", "L"])).toBe("L mounted\n");
      expect(s.ok(["unmount", "L"])).toBe("L mountpoint unmounted\n");
      expect(s.ok(["mounted", "L"])).toBe("");
      s.ok(["mount", "L"]);
      s.ok(["mount", "L"]);
      expect(s.ok(["unmount", "-f", "L"])).toBe("L mountpoint unmounted\n");
      expect(s.ok(["unmount", "L"])).toBe("L mountpoint unmounted\n");
      expect(s.ok(["mount", "-j", "L"])).toBe(`[{"id":"L","mountpoint":"${path}","error":""}]\n`);
      expect(s.ok(["unmount", "-j", "L"])).toBe('L mountpoint unmounted\n[{"id":"L","error":""}]\n');
    });

    test("mount errors print an empty line and a message naming the reference", () => {
      const r = s.cli(["mount", "nope"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("\n");
      expect(r.stderr).toBe("layer not known while mounting nope\n");
      expect(s.cli(["unmount", "nope"]).stderr).toBe("layer not known while unmounting nope\n");
      expect(s.cli(["mounted", "nope"]).stderr).toBe("layer not known checking if nope is mounted\n");
    });

    test("containers mount their layer; images mount read-only with -r", () => {
      s.ok(["import-layer", "-i", "L", "-f", makeTar(BASE)]);
      s.ok(["create-image", "-i", "I", "L"]);
      s.ok(["create-container", "-i", "C", "I"]);
      const path = s.ok(["mount", "C"]).trim();
      expect(existsSync(join(path, "etc", "hosts"))).toBe(true);
      expect(s.ok(["layers", "-t"])).toContain(`mount: ${path}`);
      const imagePath = s.ok(["mount", "-r", "I"]).trim();
      expect(existsSync(join(imagePath, "data", "sub", "file2"))).toBe(true);
      expect(s.ok(["unmount", "I"])).toBe("");
      let r = s.cli(["shutdown"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("shutdown: a layer is mounted: layer is in use by a container\n");
      r = s.cli(["shutdown", "-f"]);
      expect(r.code).toBe(0);
      expect(s.ok(["mounted", "C"])).toBe("");
    });
  });
}
