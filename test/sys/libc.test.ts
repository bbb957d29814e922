import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SystemError } from "../../src/errors.ts";
import {
  devMajorMinor,
  getXattr,
  listXattrs,
  lockFile,
  mknod,
  removeXattr,
  setTimes,
  setXattr,
  syncFilesystem,
  unlockFile,
  errnoName,
} from "../../src/sys/libc.ts";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "libc-test-"));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function fresh(name: string, content = "data"): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

function thrown(fn: () => unknown): SystemError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SystemError);
    return error as SystemError;
  }
  throw new Error("expected a SystemError");
}

function run(argv: string[]): { exitCode: number; stdout: string } {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return { exitCode: result.exitCode, stdout: result.stdout.toString() };
}

describe("xattrs", () => {
  test("user. and trusted. attributes round-trip and are visible to getfattr", () => {
    const file = fresh("xattr-file");
    setXattr(file, "user.greeting", new TextEncoder().encode("hello"));
    setXattr(file, "trusted.overlay.opaque", new TextEncoder().encode("y"));
    setXattr(file, "user.empty", new Uint8Array(0));
    const binary = new Uint8Array([0, 1, 2, 255, 0]);
    setXattr(file, "user.binary", binary);

    expect(listXattrs(file).sort()).toEqual(["trusted.overlay.opaque", "user.binary", "user.empty", "user.greeting"]);
    expect(new TextDecoder().decode(getXattr(file, "user.greeting")!)).toBe("hello");
    expect(getXattr(file, "user.empty")).toEqual(new Uint8Array(0));
    expect(getXattr(file, "user.binary")).toEqual(binary);
    expect(getXattr(file, "user.absent")).toBeNull();

    const dump = run(["getfattr", "-d", "-m", "-", "--absolute-names", file]).stdout;
    expect(dump).toContain('user.greeting="hello"');
    expect(dump).toContain('trusted.overlay.opaque="y"');
  });

  test("reads attributes set by setfattr, and a returned value is not overwritten by later reads", () => {
    const file = fresh("xattr-setfattr");
    expect(run(["setfattr", "-n", "user.a", "-v", "first", file]).exitCode).toBe(0);
    expect(run(["setfattr", "-n", "user.b", "-v", "second", file]).exitCode).toBe(0);
    const first = getXattr(file, "user.a")!;
    getXattr(file, "user.b");
    expect(new TextDecoder().decode(first)).toBe("first");
  });

  test("a value of several KiB round-trips", () => {
    const file = fresh("xattr-large");
    const value = new Uint8Array(3000).map((_, i) => i % 251);
    setXattr(file, "user.large", value);
    expect(getXattr(file, "user.large")).toEqual(value);
  });

  test("removeXattr removes; removing an absent attribute fails with ENODATA", () => {
    const file = fresh("xattr-remove");
    setXattr(file, "user.gone", new Uint8Array([1]));
    removeXattr(file, "user.gone");
    expect(listXattrs(file)).toEqual([]);
    const error = thrown(() => removeXattr(file, "user.gone"));
    expect(error.code).toBe("ENODATA");
    expect(error.message).toBe(`lremovexattr ${file} user.gone: no data available`);
  });

  test("acts on a symlink itself, never on its target", () => {
    const target = fresh("xattr-target");
    const link = path.join(dir, "xattr-link");
    fs.symlinkSync(target, link);
    setXattr(link, "trusted.on-link", new Uint8Array([7]));
    expect(listXattrs(link)).toEqual(["trusted.on-link"]);
    expect(listXattrs(target)).toEqual([]);
    // user.* is not allowed on symlinks by the kernel: the error says so.
    const error = thrown(() => setXattr(link, "user.x", new Uint8Array([1])));
    expect(error.code).toBe("EPERM");
    expect(error.message).toBe(`lsetxattr ${link} user.x: operation not permitted`);
  });

  test("a missing file gives ENOENT naming the path and attribute", () => {
    const missing = path.join(dir, "no-such-file");
    const error = thrown(() => setXattr(missing, "user.x", new Uint8Array([1])));
    expect(error.code).toBe("ENOENT");
    expect(error.message).toBe(`lsetxattr ${missing} user.x: no such file or directory`);
    expect(thrown(() => listXattrs(missing)).code).toBe("ENOENT");
    expect(thrown(() => getXattr(missing, "user.x")).code).toBe("ENOENT");
  });

  test("a path given as raw bytes that are not UTF-8 works", () => {
    const raw = Buffer.concat([Buffer.from(`${dir}/raw-`), Buffer.from([0xff, 0xfe])]);
    fs.writeFileSync(raw, "x");
    setXattr(raw, "user.raw", new Uint8Array([9]));
    expect(getXattr(raw, "user.raw")).toEqual(new Uint8Array([9]));
  });

  test("on a filesystem without xattrs, reads give nothing and writes fail with ENOTSUP", () => {
    expect(listXattrs("/proc/version")).toEqual([]);
    expect(getXattr("/proc/version", "user.x")).toBeNull();
    const error = thrown(() => setXattr("/proc/version", "user.x", new Uint8Array([1])));
    expect(error.code).toBe("ENOTSUP");
    expect(error.message).toBe("lsetxattr /proc/version user.x: operation not supported");
  });

  test("names with a NUL byte are rejected instead of being cut short", () => {
    const file = fresh("xattr-nul");
    expect(thrown(() => setXattr(file, "user.a\0b", new Uint8Array([1]))).code).toBe("EINVAL");
  });
});

describe("setTimes", () => {
  test("sets a symlink's own times to the exact nanosecond, leaving the target alone", () => {
    const target = fresh("times-target");
    const before = fs.statSync(target, { bigint: true });
    const link = path.join(dir, "times-link");
    fs.symlinkSync(target, link);
    setTimes(link, 1_600_000_000_123_456_789n, 1_500_000_000_987_654_321n);
    const st = fs.lstatSync(link, { bigint: true });
    expect(st.atimeNs).toBe(1_600_000_000_123_456_789n);
    expect(st.mtimeNs).toBe(1_500_000_000_987_654_321n);
    expect(fs.statSync(target, { bigint: true }).mtimeNs).toBe(before.mtimeNs);
  });

  test("works on a dangling symlink, on times before 1970, and on files", () => {
    const link = path.join(dir, "times-dangling");
    fs.symlinkSync("/does/not/exist", link);
    setTimes(link, -1n, -1_000_000_001n);
    const st = fs.lstatSync(link, { bigint: true });
    expect(st.atimeNs).toBe(-1n);
    expect(st.mtimeNs).toBe(-1_000_000_001n);

    const file = fresh("times-file");
    setTimes(file, 0n, 42n);
    expect(fs.lstatSync(file, { bigint: true }).mtimeNs).toBe(42n);
  });

  test("a missing path gives ENOENT", () => {
    const missing = path.join(dir, "times-missing");
    const error = thrown(() => setTimes(missing, 0n, 0n));
    expect(error.code).toBe("ENOENT");
    expect(error.message).toBe(`utimensat ${missing}: no such file or directory`);
  });

  test("paths longer than the scratch buffer are handled (and fail only as the kernel says)", () => {
    const long = `${dir}/${"d/".repeat(9000)}x`;
    expect(thrown(() => setTimes(long, 0n, 0n)).code).toBe("ENAMETOOLONG");
    const file = fresh("times-after-long");
    setTimes(file, 5n, 6n);
    expect(fs.lstatSync(file, { bigint: true }).mtimeNs).toBe(6n);
  });
});

describe("mknod", () => {
  test("creates a char 0:0 device (an overlay whiteout) with the given mode", () => {
    const p = path.join(dir, "whiteout");
    const oldMask = process.umask(0);
    try {
      mknod(p, "char", 0o640, 0, 0);
    } finally {
      process.umask(oldMask);
    }
    const st = fs.lstatSync(p, { bigint: true });
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0n);
    expect(Number(st.mode & 0o7777n)).toBe(0o640);
  });

  test("creates block devices with large major/minor numbers, as ls shows them", () => {
    const p = path.join(dir, "block");
    mknod(p, "block", 0o600, 259, 70000);
    const st = fs.lstatSync(p, { bigint: true });
    expect(st.isBlockDevice()).toBe(true);
    expect(devMajorMinor(st.rdev)).toEqual([259, 70000]);
    expect(run(["stat", "-c", "%Hr:%Lr", p]).stdout.trim()).toBe("259:70000");
  });

  test("creates a FIFO", () => {
    const p = path.join(dir, "fifo");
    mknod(p, "fifo", 0o644, 0, 0);
    expect(fs.lstatSync(p).isFIFO()).toBe(true);
  });

  test("an existing path gives EEXIST", () => {
    const p = fresh("mknod-exists");
    const error = thrown(() => mknod(p, "fifo", 0o644, 0, 0));
    expect(error.code).toBe("EEXIST");
    expect(error.message).toBe(`mknod ${p}: file exists`);
  });
});

describe("flock", () => {
  test("a second open file description sees the lock as busy until it is released", () => {
    const p = fresh("lock-a");
    const first = fs.openSync(p, "r");
    const second = fs.openSync(p, "r");
    try {
      expect(lockFile(first, true, false)).toBe(true);
      expect(lockFile(second, true, false)).toBe(false);
      expect(lockFile(second, false, false)).toBe(false);
      unlockFile(first);
      expect(lockFile(second, true, true)).toBe(true);
      unlockFile(second);
      expect(lockFile(first, false, false)).toBe(true);
      expect(lockFile(second, false, false)).toBe(true);
    } finally {
      fs.closeSync(first);
      fs.closeSync(second);
    }
  });

  test("a lock held here blocks flock(1) in another process, and vice versa", async () => {
    const p = fresh("lock-b");
    const fd = fs.openSync(p, "r");
    try {
      expect(lockFile(fd, true, false)).toBe(true);
      expect(run(["flock", "-n", "-x", p, "true"]).exitCode).not.toBe(0);
      unlockFile(fd);
      expect(run(["flock", "-n", "-x", p, "true"]).exitCode).toBe(0);

      // flock -o: only the flock process holds the lock; it exits when its command (sleep) is killed.
      const holder = Bun.spawn(["flock", "-o", "-x", p, "sh", "-c", "echo $$; exec sleep 30"], { stdout: "pipe" });
      const { value } = await holder.stdout.getReader().read();
      const sleeperPid = Number(new TextDecoder().decode(value).trim());
      expect(lockFile(fd, false, false)).toBe(false);
      process.kill(sleeperPid);
      await holder.exited;
      expect(lockFile(fd, true, true)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });

  test("a bad descriptor gives EBADF", () => {
    const error = thrown(() => lockFile(987654, true, false));
    expect(error.code).toBe("EBADF");
    expect(error.message).toBe("flock fd 987654: bad file descriptor");
  });
});

describe("syncFilesystem", () => {
  test("flushes the filesystem of a directory or file; a missing path gives ENOENT", () => {
    syncFilesystem(dir);
    syncFilesystem(fresh("sync-file"));
    const error = thrown(() => syncFilesystem(path.join(dir, "sync-missing")));
    expect(error.code).toBe("ENOENT");
    expect(error.message).toContain("sync-missing");
  });
});

test("errnoName names errno values", () => {
  expect(errnoName(2)).toBe("ENOENT");
  expect(errnoName(95)).toBe("ENOTSUP");
  expect(errnoName(61)).toBe("ENODATA");
});
