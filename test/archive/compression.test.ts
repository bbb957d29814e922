import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { ArchiveError, NotSupportedError, SystemError } from "../../src/errors.ts";
import { compressingSink, fileSink, measure, openDecompressed } from "../../src/archive/compression.ts";
import { LayoutRecorder, reproduceTar } from "../../src/archive/layout.ts";
import { readTar } from "../../src/archive/tar-reader.ts";
import { Compression, type ByteSource } from "../../src/archive/types.ts";
import { collectBytes, memorySink, rejection, removeTempDirs, run, sha256, sourceOf, tempDir, SLOW_TEST_TIMEOUT } from "./tar-fixtures.ts";

// These tests run tar, Python and compressors; the default 5 s is tight on a busy machine.
setDefaultTimeout(SLOW_TEST_TIMEOUT);
afterAll(removeTempDirs);

/** A real layer-like tar made by GNU tar, with content that compresses. */
function sampleTar(): Uint8Array {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, "etc"));
  fs.writeFileSync(path.join(dir, "etc", "os-release"), "NAME=test\n".repeat(1000));
  fs.writeFileSync(path.join(dir, "random"), crypto.getRandomValues(new Uint8Array(300_000)));
  return run(["tar", "-C", dir, "-cf", "-", "."]);
}

const plainTar = sampleTar();
const compressors: [Compression, string[]][] = [
  [Compression.Gzip, ["gzip", "-c"]],
  [Compression.Zstd, ["zstd", "-q", "-c"]],
  [Compression.Bzip2, ["bzip2", "-c"]],
  [Compression.Xz, ["xz", "-c"]],
];

/** A source whose first chunks are tiny, so that sniffing has to gather bytes across chunks. */
function dribble(bytes: Uint8Array): ByteSource {
  return {
    async *[Symbol.asyncIterator]() {
      yield bytes.slice(0, 1);
      yield bytes.slice(1, 3);
      yield* sourceOf(bytes.slice(3), 8192);
    },
  };
}

describe("openDecompressed", () => {
  test("uncompressed input passes through unchanged", async () => {
    const { compression, stream } = await openDecompressed(dribble(plainTar));
    expect(compression).toBe(Compression.None);
    expect(sha256(await collectBytes(stream))).toBe(sha256(plainTar));
  });

  for (const [expected, argv] of compressors) {
    test(`${argv[0]} input is detected and decompressed`, async () => {
      const compressed = run(argv, { stdin: plainTar });
      const { compression, stream } = await openDecompressed(dribble(compressed));
      expect(compression).toBe(expected);
      expect(sha256(await collectBytes(stream))).toBe(sha256(plainTar));
    });
  }

  test("an empty stream is uncompressed and empty", async () => {
    const { compression, stream } = await openDecompressed(sourceOf(new Uint8Array(0)));
    expect(compression).toBe(Compression.None);
    expect((await collectBytes(stream)).length).toBe(0);
  });

  test("concatenated gzip members decompress as one stream", async () => {
    const half = plainTar.length / 2;
    const joined = new Uint8Array(Buffer.concat([run(["gzip", "-c"], { stdin: plainTar.slice(0, half) }), run(["gzip", "-c"], { stdin: plainTar.slice(half) })]));
    const { stream } = await openDecompressed(sourceOf(joined));
    expect(sha256(await collectBytes(stream))).toBe(sha256(plainTar));
  });

  const damaged: [string, () => Uint8Array, RegExp][] = [
    ["truncated gzip", () => run(["gzip", "-c"], { stdin: plainTar }).slice(0, 5000), /^decompressing gzip input: /],
    ["corrupt gzip", () => corrupt(run(["gzip", "-c"], { stdin: plainTar })), /^decompressing gzip input: /],
    ["truncated zstd", () => run(["zstd", "-q", "-c"], { stdin: plainTar }).slice(0, 5000), /^decompressing zstd input: /],
    ["corrupt bzip2", () => corrupt(run(["bzip2", "-c"], { stdin: plainTar })), /^decompressing bzip2 input: bzip2: /],
    ["truncated xz", () => run(["xz", "-c"], { stdin: plainTar }).slice(0, 5000), /^decompressing xz input: xz: /],
  ];
  for (const [name, make, message] of damaged) {
    test(`${name} input fails with a one-line ArchiveError`, async () => {
      const { stream } = await openDecompressed(sourceOf(make()));
      const error = await rejection(collectBytes(stream));
      expect(error).toBeInstanceOf(ArchiveError);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain("\n");
    });
  }

  test("a missing bzip2 program is reported by name", async () => {
    const savedPath = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      const error = await rejection(openDecompressed(sourceOf(run(["bzip2", "-c"], { stdin: plainTar }))));
      expect(error).toBeInstanceOf(NotSupportedError);
      expect(error.message).toBe('decompressing bzip2 input needs the "bzip2" program, which was not found in PATH');
    } finally {
      process.env.PATH = savedPath;
    }
  });

  test("stopping early ends the external decompressor", async () => {
    const big = new Uint8Array(Buffer.concat(Array.from({ length: 20 }, () => plainTar)));
    const { stream } = await openDecompressed(sourceOf(run(["xz", "-0", "-c"], { stdin: big })));
    for await (const chunk of stream) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(childProcessesNamed("xz")).toEqual([]);
  });
});

/** PIDs of this process's children (running or not yet reaped) with the given command name, from /proc. */
function childProcessesNamed(name: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(")");
    const command = stat.slice(stat.indexOf("(") + 1, close);
    const parent = Number(stat.slice(close + 2).split(" ")[1]);
    if (command === name && parent === process.pid) found.push(Number(entry));
  }
  return found;
}

function corrupt(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  for (let i = 100; i < 400; i++) copy[i] = copy[i]! ^ 0x5a;
  return copy;
}

describe("compressingSink", () => {
  for (const [compression, program] of [
    [Compression.Gzip, "gzip"],
    [Compression.Zstd, "zstd"],
  ] as const) {
    test(`${program} output decompresses with ${program} -d, and close() closes the sink`, async () => {
      const inner = memorySink();
      const sink = compressingSink(inner, compression);
      for await (const chunk of sourceOf(plainTar, 10_000)) await sink.write(chunk);
      await sink.close();
      expect(inner.closed).toBe(true);
      const output = inner.bytes();
      expect(sha256(run([program, "-d", "-c"], { stdin: output }))).toBe(sha256(plainTar));
      expect(output.length).toBeLessThan(plainTar.length);
    });
  }

  test("None passes bytes through", async () => {
    const inner = memorySink();
    expect(compressingSink(inner, Compression.None)).toBe(inner);
  });

  test("bzip2 and xz output are refused with the containers-storage message", () => {
    expect(() => compressingSink(memorySink(), Compression.Bzip2)).toThrow("unsupported compression format tar.bz2");
    expect(() => compressingSink(memorySink(), Compression.Xz)).toThrow("unsupported compression format tar.xz");
  });

  test("a failing sink fails the writer instead of hanging", async () => {
    const failing = {
      write() {
        throw new SystemError("write /dev/full: no space left on device", "ENOSPC");
      },
      async close() {},
    };
    const sink = compressingSink(failing, Compression.Gzip);
    const error = await rejection(
      (async () => {
        for (let i = 0; i < 200; i++) await sink.write(crypto.getRandomValues(new Uint8Array(65536)));
        await sink.close();
      })(),
    );
    expect(error.message).toBe("write /dev/full: no space left on device");
  });
});

describe("measure", () => {
  test("counts bytes and computes sha256 of everything passed through", async () => {
    const measured = measure(sourceOf(plainTar, 1000));
    expect(sha256(await collectBytes(measured.stream))).toBe(sha256(plainTar));
    expect(measured.summary()).toEqual({ digest: `sha256:${sha256(plainTar)}`, size: plainTar.length });
  });

  test("a compressed layer: raw and decompressed digests, and the layout reproduces the plain tar", async () => {
    const gz = run(["gzip", "-c"], { stdin: plainTar });
    const raw = measure(sourceOf(gz));
    const { stream } = await openDecompressed(raw.stream);
    const plain = measure(stream);
    const chunks: Uint8Array[] = [];
    const root = tempDir();
    for await (const { entry, body } of readTar(plain.stream, { recorder: new LayoutRecorder((c) => void chunks.push(c)) })) {
      const target = path.join(root, entry.path);
      if (entry.type === "dir") fs.mkdirSync(target, { recursive: true });
      if (entry.type === "file") fs.writeFileSync(target, await collectBytes(body));
    }
    expect(raw.summary()).toEqual({ digest: `sha256:${sha256(gz)}`, size: gz.length });
    expect(plain.summary()).toEqual({ digest: `sha256:${sha256(plainTar)}`, size: plainTar.length });
    expect(plainTar.length % 10240).toBe(0);
    const out = memorySink();
    await reproduceTar(chunks, root, out);
    expect(sha256(out.bytes())).toBe(sha256(plainTar));
  });
});

describe("sinks", () => {
  test("fileSink creates or truncates the file", async () => {
    const file = path.join(tempDir(), "out.tar");
    fs.writeFileSync(file, "x".repeat(5_000_000));
    const sink = fileSink(file);
    for await (const chunk of sourceOf(plainTar, 777)) await sink.write(chunk);
    await sink.write(plainTar);
    await sink.close();
    expect(sha256(fs.readFileSync(file))).toBe(sha256(new Uint8Array(Buffer.concat([plainTar, plainTar]))));
  });

  test("fileSink in a missing directory fails like Go's open", () => {
    const missing = path.join(tempDir(), "no", "such", "file.tar");
    let error: unknown;
    try {
      fileSink(missing);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SystemError);
    expect((error as Error).message).toBe(`open ${missing}: no such file or directory`);
  });

  test("stdoutSink delivers everything through a pipe", () => {
    const script = path.join(tempDir(), "emit.ts");
    const modulePath = path.resolve(import.meta.dir, "../../src/archive/compression.ts");
    fs.writeFileSync(
      script,
      `import { stdoutSink } from ${JSON.stringify(modulePath)};
const sink = stdoutSink();
const block = new Uint8Array(100_000);
for (let i = 0; i < 50; i++) { block.fill(i); await sink.write(block.slice()); }
await sink.close();
`,
    );
    const output = run([process.execPath, script]);
    expect(output.length).toBe(5_000_000);
    expect(output[4_999_999]).toBe(49);
    expect(output[150_000]).toBe(1);
  });
});
