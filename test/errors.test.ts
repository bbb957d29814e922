/** The error map: each group's exit status, and how system and SQLite failures are classified. */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AlreadyExistsError,
  ArchiveError,
  ArgumentCountError,
  CorruptError,
  DataItemUnknownError,
  ERROR_GROUPS,
  GlobalOptionError,
  IdInUseError,
  ImageInUseError,
  InitError,
  InvalidArgumentError,
  InvalidIdError,
  IoError,
  LayerInUseError,
  LayerUnknownError,
  NameInUseError,
  NotFoundError,
  NotSupportedError,
  PreconditionError,
  StorageError,
  SystemError,
  UnknownCommandError,
  UsageError,
  asStorageError,
  exitStatusOf,
  ioError,
  messageOf,
  withContext,
} from "../src/errors.ts";
import { FlagError } from "../src/cli/flags.ts";

describe("exit status by group (docs/errors.md)", () => {
  // containers-storage 1.43 exits 125 for option errors and `COMMAND --help` only; every other failure exits 1.
  const cases: Array<[string, unknown, number]> = [
    ["an unknown option after the command", new FlagError("undefined", "--bogus", "flag provided but not defined: --bogus"), 125],
    ["a usage error", new UsageError("bad"), 125],
    ["a bad option before the command", new GlobalOptionError("flag provided but not defined: -x"), 1],
    ["too few arguments", new ArgumentCountError("layer: more arguments required."), 1],
    ["an unknown command", new UnknownCommandError("nosuch: unrecognized command."), 1],
    ["an unknown layer", new LayerUnknownError(), 1],
    ["a missing data item", new DataItemUnknownError("size is not known"), 1],
    ["a name in use", new NameInUseError(), 1],
    ["an ID in use", new IdInUseError(), 1],
    ["a layer with children", new LayerInUseError("used by layer c: layer has children"), 1],
    ["an image used by a container", new ImageInUseError("image used by c: image is in use by a container"), 1],
    ["an invalid ID", new InvalidIdError("a/b"), 1],
    ["bad store options", new InitError("unable to parse key/value option: x"), 1],
    ["a bad tar", new ArchiveError("archive/tar: invalid tar header"), 1],
    ["a failed system call", new SystemError("write /x: no space left on device", "ENOSPC"), 1],
    ["something not supported", new NotSupportedError("unsupported compression format tar.xz"), 1],
    ["a bug", new TypeError("x is undefined"), 1],
    ["a thrown string", "oops", 1],
  ];
  for (const [what, error, status] of cases) {
    test(`${what} exits ${status}`, () => expect(exitStatusOf(error)).toBe(status));
  }

  test("specific classes belong to the group their meaning says", () => {
    expect(new LayerUnknownError()).toBeInstanceOf(NotFoundError);
    expect(new DataItemUnknownError("x")).toBeInstanceOf(NotFoundError);
    expect(new NameInUseError()).toBeInstanceOf(AlreadyExistsError);
    expect(new IdInUseError()).toBeInstanceOf(AlreadyExistsError);
    expect(new LayerInUseError("x")).toBeInstanceOf(PreconditionError);
    expect(new ImageInUseError("x")).toBeInstanceOf(PreconditionError);
    expect(new InvalidIdError("")).toBeInstanceOf(InvalidArgumentError);
    expect(new InitError("x")).toBeInstanceOf(InvalidArgumentError);
    expect(new FlagError("undefined", "-x", "x")).toBeInstanceOf(UsageError);
    expect(new UsageError("x")).toBeInstanceOf(InvalidArgumentError);
    expect(new ArchiveError("x")).toBeInstanceOf(CorruptError);
    expect(new SystemError("x")).toBeInstanceOf(IoError);
  });

  test("every group is in the table, so none falls through to the internal-error status by accident", () => {
    for (const group of [NotFoundError, AlreadyExistsError, PreconditionError, InvalidArgumentError, UsageError, CorruptError, IoError, NotSupportedError]) {
      expect(ERROR_GROUPS).toContain(group);
    }
    // A more specific group comes before the group it refines, or the general status would win.
    const at = (g: unknown) => ERROR_GROUPS.indexOf(g as (typeof ERROR_GROUPS)[number]);
    for (const specific of [GlobalOptionError, ArgumentCountError, UnknownCommandError]) expect(at(specific)).toBeLessThan(at(UsageError));
    expect(at(UsageError)).toBeLessThan(at(InvalidArgumentError));
  });
});

describe("failures from the system are I/O errors naming the path", () => {
  const dir = mkdtempSync(join(tmpdir(), "oci-errors-"));

  test("a node:fs error becomes '<op> <path>: <reason>' in Go's words, keeping the errno name", () => {
    let thrown: unknown;
    try {
      readFileSync(join(dir, "missing"));
    } catch (e) {
      thrown = e;
    }
    const known = asStorageError(thrown);
    expect(known).toBeInstanceOf(SystemError);
    expect((known as SystemError).code).toBe("ENOENT");
    expect(known!.message).toBe(`open ${join(dir, "missing")}: no such file or directory`);
    expect(messageOf(thrown)).toBe(known!.message);
  });

  test("ioError words ENOSPC and EROFS as Go does", () => {
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    expect(ioError("write", "/mnt/full/x", full).message).toBe("write /mnt/full/x: no space left on device");
    const readOnly = Object.assign(new Error("EROFS: read-only file system, open '/ro/x'"), { code: "EROFS", syscall: "open", path: "/ro/x" });
    expect(messageOf(readOnly)).toBe("open /ro/x: read-only file system");
    expect(exitStatusOf(readOnly)).toBe(1);
  });

  test("a file that is not a database is a corrupt database, not an internal error", () => {
    const path = join(dir, "not-a.db");
    writeFileSync(path, "this is not an SQLite database file, just some text".repeat(100));
    let thrown: unknown;
    try {
      new Database(path).query("SELECT * FROM sqlite_master").all();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeDefined();
    expect(asStorageError(thrown)).toBeInstanceOf(CorruptError);
    expect(messageOf(thrown)).toMatch(/^database: database is corrupt: /);
  });

  test("SQLite's extended corruption codes are a corrupt database too", () => {
    // bun:sqlite reports extended codes (a duplicate key is SQLITE_CONSTRAINT_PRIMARYKEY, not SQLITE_CONSTRAINT).
    const db = new Database(":memory:");
    db.run("CREATE TABLE t (a TEXT PRIMARY KEY)");
    db.run("INSERT INTO t VALUES ('x')");
    let duplicate: unknown;
    try {
      db.run("INSERT INTO t VALUES ('x')");
    } catch (e) {
      duplicate = e;
    }
    db.close();
    expect((duplicate as { code?: string }).code).toBe("SQLITE_CONSTRAINT_PRIMARYKEY");
    const brokenIndex = Object.assign(new Error("database disk image is malformed"), { code: "SQLITE_CORRUPT_INDEX", errno: 779 });
    expect(asStorageError(brokenIndex)).toBeInstanceOf(CorruptError);
    expect(messageOf(brokenIndex)).toMatch(/^database: database is corrupt: /);
  });

  test("withContext prefixes the message and keeps the class, so the exit status stays the cause's", () => {
    const wrapped = withContext("sha256:abc", new InvalidArgumentError("invalid checksum digest length"));
    expect(wrapped).toBeInstanceOf(InvalidArgumentError);
    expect((wrapped as Error).message).toBe("sha256:abc: invalid checksum digest length");
    const fsError = Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: "EACCES", syscall: "open", path: "/x" });
    expect(messageOf(withContext("error copying \"/a\" to \"/b\"", fsError))).toBe('error copying "/a" to "/b": open /x: permission denied');
    const bug = new TypeError("boom");
    expect(withContext("ctx", bug)).toBe(bug);
  });

  test("anything else is a bug: 'internal error: <first line>'", () => {
    expect(asStorageError(new TypeError("a\nb"))).toBeUndefined();
    expect(messageOf(new TypeError("x is undefined\nat ..."))).toBe("internal error: x is undefined");
    expect(messageOf(new LayerUnknownError())).toBe("layer not known");
    expect(new LayerUnknownError()).toBeInstanceOf(StorageError);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));
});
