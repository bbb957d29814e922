/**
 * Reading never needs a writable graph root (docs/robustness.md): a store whose file system is
 * remounted read-only lists, examines, exports and (vfs) mounts as before, with its database
 * opened read-only — whether SQLite left its -wal and -shm files behind (a writer was killed)
 * or not (the last command ended cleanly) — and refuses writes with one line. Recovery that
 * cannot run is said once on stderr and done by the first command after the remount. A
 * read-only image store on a read-only file system works the same.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers, runBinary } from "../helpers/cli.ts";
import { sh, sha256Bytes, sha256File } from "../helpers/fixtures.ts";
import { SmallFs, type SmallFsKind, smallFsSkipReason } from "../helpers/small-fs.ts";

const skip = smallFsSkipReason();
const work = mkdtempSync(join(tmpdir(), "oci-ro-root-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function tarOf(spec: Record<string, Uint8Array | string>, name: string): string {
  const root = join(work, `${name}-tree`);
  for (const [path, content] of Object.entries(spec)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  const out = join(work, `${name}.tar`);
  sh(["tar", "-C", root, "--owner=0", "--group=0", "--mtime=2024-05-01 10:00:00", "--sort=name", "-cf", out, "."]);
  return out;
}

const baseTar = tarOf({ "etc/hostname": "read-only\n", "usr/bin/tool": crypto.getRandomValues(new Uint8Array(40_000)) }, "base");
const upperTar = tarOf({ "etc/motd": "upper\n", "var/lib/data": crypto.getRandomValues(new Uint8Array(20_000)) }, "upper");
/** A tar big enough that a kill part-way through it leaves the database's WAL holding frames. */
const bigTar = tarOf(Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`big/f${i}`, crypto.getRandomValues(new Uint8Array(60_000))])), "big");
const manifest = '{"schemaVersion":2}';

const NOT_WRITABLE = /^[^\n]*: read-only file system\n$/;

for (const kind of ["tmpfs", "ext4"] as SmallFsKind[]) {
  for (const driver of availableDrivers()) {
    describe.skipIf(skip !== undefined)(`read-only graph root: ${driver} on ${kind}`, () => {
      let fs: SmallFs;
      let s: TestStore;
      let ids: { base: string; upper: string; image: string };
      beforeAll(() => {
        fs = new SmallFs(kind, 32);
      });
      afterAll(() => fs?.destroy());
      afterEach(() => {
        fs.setReadOnly(false);
        s?.destroy();
      });

      function makeStore(): void {
        s = new TestStore(driver, undefined, join(fs.path, "graph"));
        const base = s.ok(["import-layer", "-n", "base", "-f", baseTar]).split("\n")[0]!;
        const upper = s.ok(["import-layer", "-n", "upper", "-f", upperTar, "base"]).split("\n")[0]!;
        const image = s.ok(["create-image", "-n", "image", "-m", "image metadata", "upper"]).split("\n")[0]!;
        s.ok(["set-image-data", "image", "manifest"], { stdin: manifest });
        s.ok(["set-layer-data", "upper", "note"], { stdin: "layer note" });
        s.ok(["create-container", "-n", "ctr", "image"]);
        s.ok(["set-container-data", "ctr", "state"], { stdin: "container state" });
        ids = { base, upper, image };
      }

      /** Every reading command works and says nothing on stderr but the notice given. */
      function expectReadable(notice = ""): void {
        const read = (args: string[]) => {
          const r = s.cli(args);
          expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: notice });
          return r;
        };
        expect(JSON.parse(read(["layers", "-j"]).stdout).map((l: { id: string }) => l.id).slice(0, 2)).toEqual([ids.base, ids.upper]);
        expect(read(["images", "-q"]).stdout).toBe(`${ids.image}\n`);
        expect(JSON.parse(read(["containers", "-j"]).stdout)).toHaveLength(1);
        expect(read(["layer", "upper"]).stdout).toContain(`Parent: ${ids.base}\n`);
        expect(read(["image", "image"]).stdout).toContain("Data: manifest\n");
        read(["container", "ctr"]);
        expect(read(["exists", "image"]).stdout).toBe("image: true\n");
        expect(read(["metadata", "-q", "image"]).stdout).toBe("image metadata\n");
        expect(read(["get-image-data", "image", "manifest"]).stdout).toBe(manifest);
        expect(read(["get-layer-data", "upper", "note"]).stdout).toBe("layer note");
        expect(read(["get-container-data", "ctr", "state"]).stdout).toBe("container state");
        expect(read(["list-container-data", "ctr"]).stdout).toBe("state\n");
        expect(sha256Bytes(read(["diff", "-u", "base"]).stdoutBytes)).toBe(sha256File(baseTar));
        expect(sha256Bytes(read(["diff", "-u", "upper"]).stdoutBytes)).toBe(sha256File(upperTar));
        expect(read(["changes", "upper"]).stdout).toContain(`Add "/etc/motd"\n`);
        if (driver === "vfs") {
          const path = read(["mount", "upper"]).stdout.trim();
          expect(readdirSync(join(path, "etc")).sort()).toEqual(["hostname", "motd"]);
          read(["unmount", "upper"]);
        }
      }

      /** Writing commands fail with one line naming the read-only file system, and change nothing. */
      function expectWritesRefused(): void {
        for (const args of [["create-layer", "base"], ["set-image-data", "image", "other"], ["delete-container", "ctr"], ["add-names", "-n", "more", "base"]]) {
          const r = s.cli(args, { stdin: "x" });
          expect({ args, code: r.code }).toEqual({ args, code: 1 });
          expect(r.stderr).toMatch(NOT_WRITABLE);
        }
      }

      test("after a clean end the database opens read-only without its WAL files: reading works, writing is refused", () => {
        makeStore();
        expect(readdirSync(join(fs.path, "graph")).filter((f) => f.startsWith("oci-storage.db"))).toEqual(["oci-storage.db"]);
        fs.setReadOnly(true);
        expectReadable();
        expectWritesRefused();
        // After a reboot too (an empty run root): overlay cannot probe its kernel support on a
        // read-only root, and needs no probe to read.
        const rebooted = ["--graph", s.graph, "--run", join(s.dir, "run-after-reboot"), "--storage-driver", driver];
        const listed = runBinary([...rebooted, "layers", "-j"]);
        expect({ code: listed.code, out: listed.stderr || listed.stdout.slice(0, 1) }).toEqual({ code: 0, out: "[" });
        expect(JSON.parse(listed.stdout)).toHaveLength(3);
        expect(sha256Bytes(runBinary([...rebooted, "diff", "-u", "upper"]).stdoutBytes)).toBe(sha256File(upperTar));
        const check = s.cli(["check"]);
        expect({ code: check.code, out: check.stdout + check.stderr }).toEqual({ code: 0, out: "" });
        fs.setReadOnly(false);
        expect(s.json(["layers", "-j"]).length).toBe(3);
      });

      test("with a writer killed mid-apply, the WAL it left is read, recovery waits with one notice, and runs after the remount", () => {
        makeStore();
        const killed = s.cli(["import-layer", "-n", "killed", "-f", bigTar, "upper"], { env: { OCI_STORAGE_CRASH_AT: "mid-apply" } });
        expect(killed.code).not.toBe(0);
        expect(existsSync(join(fs.path, "graph", "oci-storage.db-wal"))).toBe(true);
        fs.setReadOnly(true);
        const notice = "cleaning up after interrupted commands (1 layer) must wait for a command that can write: ";
        const r = s.cli(["layers"]);
        expect(r.code).toBe(0);
        expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
        expect(r.stderr.startsWith(notice)).toBe(true);
        expect(r.stderr).toMatch(NOT_WRITABLE);
        expectReadable(r.stderr);
        const check = s.cli(["check"]);
        expect(check.code).toBe(1);
        expect(check.stdout).toMatch(/^layer [0-9a-f]{64}: left half-created by a process that died \(incomplete\)\n$/);
        fs.setReadOnly(false);
        const after = s.cli(["layers"]);
        expect({ code: after.code, stderr: after.stderr }).toEqual({ code: 0, stderr: "" });
        const clean = s.cli(["check"]);
        expect({ code: clean.code, out: clean.stdout + clean.stderr }).toEqual({ code: 0, out: "" });
        s.ok(["import-layer", "-n", "again", "-f", bigTar, "upper"]);
      });

      test("a read-only image store on a read-only file system is listed and used like any other", () => {
        makeStore();
        s.ok(["shutdown", "-f"]);
        fs.setReadOnly(true);
        const own = new TestStore(driver);
        try {
          const cli = (args: string[]) => runBinary([...own.globals, "--storage-opt", `${driver}.imagestore=${s.graph}`, ...args]);
          const layers = cli(["layers", "-j"]);
          expect({ code: layers.code, stderr: layers.stderr }).toEqual({ code: 0, stderr: "" });
          expect(JSON.parse(layers.stdout).map((l: { id: string }) => l.id)).toEqual([ids.base, ids.upper, expect.any(String)]);
          expect(cli(["get-image-data", "image", "manifest"]).stdout).toBe(manifest);
          expect(sha256Bytes(cli(["diff", "-u", "upper"]).stdoutBytes)).toBe(sha256File(upperTar));
          expect(cli(["create-container", "-n", "mine", "image"]).code).toBe(0);
          const path = cli(["mount", "mine"]).stdout.trim();
          expect(readdirSync(join(path, "etc")).sort()).toEqual(["hostname", "motd"]);
          expect(cli(["unmount", "mine"]).code).toBe(0);
        } finally {
          own.destroy();
        }
      });
    });
  }
}
