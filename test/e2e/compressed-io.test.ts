/**
 * End-to-end: layers of several MiB through the compiled binary, so that compressed output
 * goes through the gzip workers (which must be found inside the binary) and compressed input
 * through the whole decompression path; digests and sizes must be the recorded ones.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore } from "../helpers/cli.ts";
import { makeTar, sh, sha256File } from "../helpers/fixtures.ts";

let scratch: string;
let tar: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "oci-compressed-io-"));
  // About 6 MiB: text that compresses and random bytes that do not.
  const spec: Record<string, string> = { "usr/": "", "usr/lib/": "" };
  for (let i = 0; i < 40; i++) spec[`usr/lib/file${i}.txt`] = `line ${i} of a configuration file\n`.repeat(2000 + i * 50);
  tar = makeTar(spec);
  const random = join(scratch, "random.bin");
  writeFileSync(random, crypto.getRandomValues(new Uint8Array(65536)).map((b, i) => b ^ i));
  const big = join(scratch, "big.bin");
  writeFileSync(big, Buffer.concat(Array.from({ length: 48 }, () => crypto.getRandomValues(new Uint8Array(65536)))));
  sh(["tar", "-C", scratch, "--owner=0", "--group=0", "-rf", tar, "big.bin", "random.bin"]);
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("compressed input and output of large layers", () => {
  let s: TestStore;
  beforeAll(() => {
    s = new TestStore("vfs");
  });
  afterAll(() => s.destroy());

  test("diff -c of a multi-MiB layer is gzip that gzip and Python read whole, and imports back with the digests and sizes of the file and the tar", () => {
    expect(statSync(tar).size).toBeGreaterThan(4 << 20);
    s.ok(["import-layer", "-i", "L", "-f", tar]);
    const out = join(scratch, "L.tar.gz");
    s.ok(["diff", "-c", "-f", out, "L"]);
    sh(["gzip", "-t", out]);
    expect(sh(["bash", "-c", `gzip -dc ${out} | sha256sum`]).split(" ")[0]).toBe(sha256File(tar));
    const python = `import gzip,hashlib; print(hashlib.sha256(gzip.open(${JSON.stringify(out)}).read()).hexdigest())`;
    expect(sh(["python3", "-c", python]).trim()).toBe(sha256File(tar));
    const record = s.json(["import-layer", "-j", "-f", out]);
    expect(record.compression).toBe(2);
    expect(record["compressed-diff-digest"]).toBe(`sha256:${sha256File(out)}`);
    expect(record["compressed-size"]).toBe(statSync(out).size);
    expect(record["diff-digest"]).toBe(`sha256:${sha256File(tar)}`);
    expect(record["diff-size"]).toBe(statSync(tar).size);
  });

  for (const [tool, code] of [
    ["gzip", 2],
    ["zstd", 4],
  ] as const) {
    test(`applydiff of a multi-MiB ${tool} file records the file's and the tar's digests and sizes, and the tar comes back unchanged`, () => {
      const packed = join(scratch, `layer.tar.${tool}`);
      sh(["bash", "-c", `${tool} -c < ${tar} > ${packed}`]);
      const id = `${tool}${"0".repeat(64 - tool.length)}`;
      s.ok(["create-layer", "-i", id]);
      s.ok(["applydiff", "-f", packed, id]);
      const [record] = s.json(["layer", "-j", id]);
      expect(record.compression).toBe(code);
      expect(record["compressed-diff-digest"]).toBe(`sha256:${sha256File(packed)}`);
      expect(record["compressed-size"]).toBe(statSync(packed).size);
      expect(record["diff-digest"]).toBe(`sha256:${sha256File(tar)}`);
      expect(record["diff-size"]).toBe(statSync(tar).size);
      const back = join(scratch, `${tool}.tar`);
      s.ok(["diff", "-u", "-f", back, id]);
      expect(sha256File(back)).toBe(sha256File(tar));
    });
  }

  test("standard input redirected from a file and piped record the same digests and sizes", () => {
    const packed = join(scratch, "stdin.tar.gz");
    sh(["bash", "-c", `gzip -c < ${tar} > ${packed}`]);
    const command = [BINARY, ...s.globals].map((word) => `'${word}'`).join(" ");
    const records = [`< ${packed}`, `cat ${packed} |`].map((how, i) => {
      const id = `${i + 1}`.repeat(64);
      s.ok(["create-layer", "-i", id]);
      const line = how.startsWith("<") ? `${command} applydiff ${id} ${how}` : `${how} ${command} applydiff ${id}`;
      sh(["bash", "-c", line]);
      return s.json(["layer", "-j", id])[0];
    });
    for (const record of records) {
      expect(record["compressed-diff-digest"]).toBe(`sha256:${sha256File(packed)}`);
      expect(record["compressed-size"]).toBe(statSync(packed).size);
      expect(record["diff-digest"]).toBe(`sha256:${sha256File(tar)}`);
      expect(record["diff-size"]).toBe(statSync(tar).size);
    }
  });

  /**
   * Runs `diff` into `| head -c 100` in bash (after `prelude`); its exit status and stderr, for -c and -u, three
   * times each with everything on one CPU: that is where the reader most often goes away while a write waits, which
   * Bun once settled as if written (so the command ended with 0).
   */
  function diffIntoHead(prelude: string): { compression: string; status: string; stderr: string }[] {
    const id = s.ok(["import-layer", "-f", tar]).trim();
    const command = [BINARY, ...s.globals].map((word) => `'${word}'`).join(" ");
    return ["-c", "-u", "-c", "-u", "-c", "-u"].map((compression) => {
      const errors = join(scratch, `head${compression}.err`);
      const line = `${prelude} ${command} diff ${compression} ${id} 2>${errors} | head -c 100 >/dev/null; echo \${PIPESTATUS[0]}`;
      const status = sh(["taskset", "-c", "0", "bash", "-c", line]);
      return { compression, status: status.trim(), stderr: readFileSync(errors, "utf8") };
    });
  }

  // With SIGPIPE at its default the process ends as if killed by it, silently, like containers-storage; with SIGPIPE
  // ignored by the caller the write fails with EPIPE, which must end the command with one line.
  test("diff to a reader that stops early (| head) with SIGPIPE ignored fails with one line naming the broken pipe, for -c and -u", () => {
    for (const result of diffIntoHead("trap '' PIPE;")) {
      expect(result).toEqual({ compression: result.compression, status: "1", stderr: "write /dev/stdout: broken pipe\n" });
    }
  });

  test("diff to a reader that stops early (| head) with SIGPIPE at its default ends silently with 141, for -c and -u", () => {
    for (const result of diffIntoHead("trap - PIPE;")) {
      expect(result).toEqual({ compression: result.compression, status: "141", stderr: "" });
    }
  });
});
