/**
 * Hostile-input suite (DESIGN.md invariants 4, 5 and 6): layer tars that try to escape or break
 * the store, decompression bombs, and hostile IDs, names, references and options, on every
 * driver. For each: nothing outside the layer is created, changed or removed; a refusal is one
 * clear line with a non-zero exit and no stack trace; the store keeps working; nothing already
 * stored is lost; memory stays bounded.
 *
 * OCI_STORAGE_BOMB_GIB sets the size of the zeros behind the zstd bomb (1 GiB by default).
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sentinelState } from "../archive/apply-helpers.ts";
import { BINARY, type RunResult, TestStore, availableDrivers, runBinary } from "../helpers/cli.ts";
import { sh, sha256Bytes, sha256File } from "../helpers/fixtures.ts";
import { type HostileCase, OUTSIDE, buildCorpus } from "./hostile-corpus.ts";

const BOMB_GIB = Number(process.env.OCI_STORAGE_BOMB_GIB ?? 1);
/** Peak memory any single command may use, however large its input. */
const MEMORY_BOUND = 300 * 1024 * 1024;

const scratch = mkdtempSync(join(tmpdir(), "oci-hostile-"));
/** The absolute sentinel the corpus aims at: a file and a directory nothing may touch. */
const host = mkdtempSync(join(tmpdir(), "oci-hostile-host-"));
writeFileSync(join(host, "victim"), "victim\n");
mkdirSync(join(host, "victimdir"), { mode: 0o755 });
writeFileSync(join(host, "victimdir", "inner"), "inner\n");
const corpus: HostileCase[] = buildCorpus(join(scratch, "corpus"), host);
const keeperTar = join(scratch, "corpus", "valid.tar");
const passwdState = fileState("/etc/passwd");
let gzipBomb: string;
let zstdBomb: string;

beforeAll(() => {
  // A file entry claiming 10 GiB whose gzip-compressed body is 256 MiB of zeros, then nothing.
  gzipBomb = join(scratch, "bomb.tar.gz");
  sh([
    "python3",
    "-c",
    `import tarfile, zlib
info = tarfile.TarInfo("bomb"); info.size = 10 * 1024 ** 3
c = zlib.compressobj(1, zlib.DEFLATED, 31)
with open(${JSON.stringify(gzipBomb)}, "wb") as out:
    out.write(c.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
    zeros = bytes(1 << 20)
    for _ in range(256): out.write(c.compress(zeros))
    out.write(c.flush())`,
  ]);
  // A small valid archive followed by BOMB_GIB GiB of zeros, zstd-compressed (about 35 KiB per GiB).
  zstdBomb = join(scratch, "bomb.tar.zst");
  sh(["bash", "-c", `set -o pipefail; (cat ${keeperTar}; head -c ${BOMB_GIB}G /dev/zero) | zstd -1 -q -c > ${zstdBomb}`]);
}, 120_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(host, { recursive: true, force: true });
});

/** Host paths a broken extractor would write for the corpus's absolute and climbing names. */
const HOST_TARGETS = ["/pwned-abs", "/pwned", "/pwned-dotdot", "/b", "/dev-pwned", "/tmp/pwned", "/tmp/pwned-dotdot", join(process.cwd(), "..", "pwned-dotdot")];

function fileState(path: string): string {
  const s = statSync(path, { bigint: true });
  return `${s.ino} ${s.mode} ${s.nlink} ${s.size} ${s.mtimeNs} ${sha256File(path)}`;
}

/** Everything outside the store a hostile tar might touch. */
function world(outside: string): unknown {
  return {
    outside: sentinelState(outside, ""),
    host: sentinelState(host, ""),
    passwd: fileState("/etc/passwd"),
    strays: HOST_TARGETS.filter((p) => existsSync(p)),
  };
}

/** Asserts a refusal: non-zero exit, one short line on stderr, no stack trace, no internals of the store. */
function expectOneLineRefusal(r: RunResult, store: TestStore, what: string, options: { mayNameStore?: boolean; mayEchoLongInput?: boolean } = {}): void {
  const report = { what, code: r.code, stderr: r.stderr };
  expect(r.code, JSON.stringify(report)).not.toBe(0);
  expect(r.stderr.endsWith("\n") && r.stderr.indexOf("\n") === r.stderr.length - 1, JSON.stringify(report)).toBe(true);
  expect(r.stderr, what).not.toMatch(/^\s+at |internal error|Error:|RangeError|TypeError/m);
  if (!options.mayEchoLongInput) expect(r.stderr.length, what).toBeLessThan(600);
  if (!options.mayNameStore) expect(r.stderr, what).not.toContain(store.graph);
}

/** Where a layer's own files are on each driver. */
function contentDir(store: TestStore, id: string): string {
  return store.driver === "vfs" ? join(store.graph, "vfs", "dir", id) : join(store.graph, "overlay", id, "diff");
}

/** Checks one "inside" expectation: "file [content]", "file mode NNNN", "dir [mode NNNN]", "char", "block", "fifo", "->target". */
function expectInside(dir: string, rel: string, want: string): void {
  const path = join(dir, rel);
  const s = lstatSync(path);
  if (want.startsWith("->")) {
    expect(s.isSymbolicLink(), rel).toBe(true);
    expect(readlinkSync(path)).toBe(want.slice(2));
    return;
  }
  const [type, ...rest] = want.split(" ");
  const kinds: Record<string, boolean> = { file: s.isFile(), dir: s.isDirectory(), char: s.isCharacterDevice(), block: s.isBlockDevice(), fifo: s.isFIFO() };
  expect(kinds[type!], `${rel} is a ${type}`).toBe(true);
  if (rest[0] === "mode") expect((s.mode & 0o7777).toString(8), rel).toBe(rest[1]!);
  else if (rest.length > 0) expect(readFileSync(path, "utf8"), rel).toBe(rest.join(" "));
}

/** Layer rows in any state, read from the database (cheaper than a command per check). */
function layerIds(store: TestStore): string[] {
  const db = new Database(join(store.graph, "oci-storage.db"), { readonly: true });
  try {
    return (db.query("SELECT id FROM layers ORDER BY id").all() as Array<{ id: string }>).map((r) => r.id);
  } finally {
    db.close();
  }
}

function driverEntries(store: TestStore): string[] {
  const home = store.driver === "vfs" ? join(store.graph, "vfs", "dir") : join(store.graph, "overlay");
  return readdirSync(home).filter((n) => n !== "l").sort();
}

/** Runs the binary asynchronously and reports its peak memory. */
async function runMeasured(store: TestStore, args: string[]): Promise<RunResult & { maxRss: number }> {
  const proc = Bun.spawn([BINARY, ...store.globals, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr, stdoutBytes: new TextEncoder().encode(stdout), maxRss: proc.resourceUsage()?.maxRSS ?? 0 };
}

for (const driver of availableDrivers()) {
  describe(`hostile layer tars on ${driver}`, () => {
    let store: TestStore;
    let outside: string;
    let keeper: { id: string; diffSha: string; image: string; container: string };
    /** Layers the corpus made (accepted cases); they stay, so that later cases run on a fuller store. */
    const accepted: string[] = [];

    beforeAll(() => {
      store = new TestStore(driver);
      outside = join(store.dir, "outside");
      mkdirSync(join(outside, "dir"), { recursive: true });
      writeFileSync(join(outside, "secret"), "secret\n");
      writeFileSync(join(outside, "dir", "file"), "file\n");
      // Work already stored, which no hostile input may damage.
      const id = store.json(["import-layer", "-j", "-n", "keeper", "-f", keeperTar]).id;
      const image = store.json(["create-image", "-j", "-n", "keeper-image", id]).id;
      store.ok(["set-image-data", "-f", keeperTar, image, "manifest"]);
      const container = store.json(["create-container", "-j", "-n", "keeper-container", "--metadata", "kept", image]).id;
      keeper = { id, diffSha: sha256File(keeperTar), image, container };
    }, 60_000);
    afterAll(() => store.destroy(), 60_000);

    for (const c of corpus) {
      test(`${c.name} (${c.expect})`, () => {
        const before = world(outside);
        const layersBefore = layerIds(store);
        const entriesBefore = driverEntries(store);
        const r = store.cli(["import-layer", "-j", "-f", c.file]);
        expect(world(outside)).toEqual(before);
        const outcome = r.code === 0 ? "accepted" : "refused";
        if (c.expect !== "either") expect({ outcome, stderr: r.stderr }).toEqual({ outcome: c.expect, stderr: c.expect === "accepted" ? "" : r.stderr });
        if (r.code === 0) {
          const id = JSON.parse(r.stdout).id;
          for (const [rel, want] of Object.entries(c.inside ?? {})) expectInside(contentDir(store, id), rel, want);
          accepted.push(id);
        } else {
          expectOneLineRefusal(r, store, c.name);
          if (c.error) expect(r.stderr).toMatch(c.error);
          // Nothing of a refused layer is left: no record, no directory.
          expect(layerIds(store)).toEqual(layersBefore);
          expect(driverEntries(store)).toEqual(entriesBefore);
        }
      });
    }

    test("a child layer cannot reach outside through its parent's symlinks, and its opaque root hides but keeps the parent's files", () => {
      const parentTar = join(scratch, `parent-${driver}.tar`);
      const tree = mkdtempSync(join(scratch, "parent-"));
      mkdirSync(join(tree, "dir"));
      writeFileSync(join(tree, "dir", "keep"), "keep\n");
      sh(["ln", "-s", host, join(tree, "evil")]);
      sh(["ln", "-s", OUTSIDE, join(tree, "up")]);
      sh(["tar", "-C", tree, "-cf", parentTar, "."]);
      const parent = store.json(["import-layer", "-j", "-f", parentTar]).id;
      const before = world(outside);
      const childTar = join(scratch, `child-${driver}.tar`);
      const childTree = mkdtempSync(join(scratch, "child-"));
      mkdirSync(join(childTree, "evil"));
      writeFileSync(join(childTree, "evil", "pwned"), "x");
      mkdirSync(join(childTree, "up"));
      writeFileSync(join(childTree, "up", "pwned"), "x");
      sh(["tar", "-C", childTree, "-cf", childTar, "./evil/pwned", "./up/pwned"]);
      const r = store.cli(["import-layer", "-j", "-f", childTar, parent]);
      if (r.code !== 0) expectOneLineRefusal(r, store, "child through parent symlinks");
      const opaqueTar = join(scratch, `opaque-${driver}.tar`);
      const opaqueTree = mkdtempSync(join(scratch, "opaque-"));
      writeFileSync(join(opaqueTree, ".wh..wh..opq"), "");
      writeFileSync(join(opaqueTree, "new"), "new\n");
      sh(["tar", "-C", opaqueTree, "-cf", opaqueTar, "./.wh..wh..opq", "./new"]);
      const opaque = store.json(["import-layer", "-j", "-f", opaqueTar, parent]).id;
      expect(world(outside)).toEqual(before);
      // The parent re-exports byte for byte, so none of its files changed.
      expect(sha256Bytes(store.cli(["diff", "-u", parent]).stdoutBytes)).toBe(sha256File(parentTar));
      const mountPoint = store.ok(["mount", opaque]).trim();
      // overlayfs ignores an opaque marker on a layer's root directory, so only vfs hides the parent's files.
      if (driver === "vfs") expect(readdirSync(mountPoint).sort()).toEqual(["new"]);
      else expect(readdirSync(mountPoint)).toContain("new");
      store.ok(["unmount", opaque]);
      for (const id of [opaque, ...(r.code === 0 ? [JSON.parse(r.stdout).id] : []), parent]) store.ok(["delete-layer", id]);
    }, 30_000);

    test("applydiff of a hostile tar onto an existing layer stays inside that layer", () => {
      const target = store.json(["create-layer", "-j"]).id;
      const before = world(outside);
      for (const c of corpus.filter((k) => k.expect !== "accepted").slice(0, 8)) {
        const r = store.cli(["applydiff", "-f", c.file, target]);
        if (r.code !== 0) expectOneLineRefusal(r, store, `applydiff ${c.name}`);
        expect(world(outside), c.name).toEqual(before);
      }
      store.ok(["delete-layer", target]);
    }, 30_000);

    test("a gzip bomb (a 10 GiB file entry, 256 MiB of zeros, then nothing) is refused in bounded memory", async () => {
      const layersBefore = layerIds(store);
      const entriesBefore = driverEntries(store);
      const r = await runMeasured(store, ["import-layer", "-f", gzipBomb]);
      expectOneLineRefusal(r, store, "gzip bomb");
      expect(r.stderr).toMatch(/unexpected EOF/);
      expect(r.maxRss).toBeGreaterThan(0);
      expect(r.maxRss).toBeLessThan(MEMORY_BOUND);
      expect(layerIds(store)).toEqual(layersBefore);
      expect(driverEntries(store)).toEqual(entriesBefore);
    }, 120_000);

    test(`a zstd bomb (${BOMB_GIB} GiB of zeros after the end of the archive) is read in bounded memory and stores only the archive`, async () => {
      const r = await runMeasured(store, ["import-layer", "-j", "-f", zstdBomb]);
      expect(r.maxRss).toBeGreaterThan(0);
      expect(r.maxRss).toBeLessThan(MEMORY_BOUND);
      if (r.code !== 0) {
        expectOneLineRefusal(r, store, "zstd bomb");
        return;
      }
      const layer = JSON.parse(r.stdout);
      expect(layer["diff-size"]).toBe(statSync(keeperTar).size + BOMB_GIB * 1024 ** 3);
      expect(readdirSync(contentDir(store, layer.id)).sort()).toEqual(["etc"]);
      store.ok(["delete-layer", layer.id]);
    }, 300_000);

    test("the store still works and lost nothing", () => {
      const containerLayer = store.json(["container", "-j", keeper.container])[0].layer;
      expect(store.json(["layers", "-j"]).map((l: { id: string }) => l.id).sort()).toEqual([keeper.id, containerLayer, ...accepted].sort());
      expect(sha256Bytes(store.cli(["diff", "-u", keeper.id]).stdoutBytes)).toBe(keeper.diffSha);
      expect(store.json(["layer", "-j", "keeper"])[0].id).toBe(keeper.id);
      expect(readFileSync(keeperTar)).toEqual(Buffer.from(store.cli(["get-image-data", "keeper-image", "manifest"]).stdoutBytes));
      expect(store.ok(["metadata", "-q", "keeper-container"])).toBe("kept\n");
      const fresh = store.json(["create-layer", "-j", "keeper"]).id;
      store.ok(["delete-layer", fresh]);
      const check = store.cli(["check"]);
      expect(check.stdout + check.stderr).toBe("");
      expect(check.code).toBe(0);
    }, 30_000);
  });
}

for (const driver of availableDrivers()) {
  describe(`hostile references and options on ${driver}`, () => {
    let store: TestStore;
    let base: string;
    beforeAll(() => {
      store = new TestStore(driver);
      base = store.json(["create-layer", "-j", "-n", "base"]).id;
      store.ok(["create-image", "-n", "img", base]);
    }, 60_000);
    afterAll(() => store.destroy(), 60_000);

    test("IDs that are paths, longer than a file name or hidden are refused with one clear line", () => {
      const refused = ["../x", "/", ".", "..", "a/b", "x".repeat(100 * 1024), "y".repeat(256), "é".repeat(128), ".hidden", ".has-mount-program"];
      const layersBefore = layerIds(store);
      for (const id of refused) {
        for (const args of [["create-layer", "-i", id], ["create-image", "-i", id, base], ["create-container", "-i", id, "img"]]) {
          const r = store.cli(args);
          expectOneLineRefusal(r, store, `${args[0]} -i ${JSON.stringify(id.slice(0, 20))}`);
          expect(r.stderr).toStartWith("invalid ID ");
        }
      }
      expect(layerIds(store)).toEqual(layersBefore);
      expect(store.json(["images", "-j"])).toHaveLength(1);
      expect(store.json(["containers", "-j"])).toEqual([]);
    }, 60_000);

    test("odd but harmless IDs are kept exactly, and the driver's own names stay the driver's", () => {
      for (const id of ["a\nb", "tab\tx", "ünï名前", " ", "-x", "z".repeat(255), "l"]) {
        const r = store.cli(["create-layer", "-j", "-i", id, base]);
        if (r.code !== 0) {
          // overlay keeps its short links in a directory named "l".
          expectOneLineRefusal(r, store, `create-layer -i ${JSON.stringify(id)}`);
          expect(r.stderr).toContain("reserved");
          expect(readdirSync(join(store.graph, "overlay", "l")).length).toBeGreaterThan(0);
          continue;
        }
        expect(JSON.parse(r.stdout).id).toBe(id);
        expect(store.json(["layer", "-j", "--", id])[0].id).toBe(id);
        store.ok(["delete-layer", "--", id]);
      }
      // Whatever was refused, every layer still mounts (overlay: through its short link).
      const child = store.json(["create-layer", "-j", base]).id;
      const mountPoint = store.ok(["mount", child]).trim();
      expect(existsSync(mountPoint)).toBe(true);
      store.ok(["unmount", child]);
      store.ok(["delete-layer", child]);
      expect(store.cli(["check"]).code).toBe(0);
    }, 60_000);

    test("names and references that look like paths or are huge are only data", () => {
      const names = ["", "../x", "/", "a\nb", "tab\tx", "ünï", "n".repeat(100 * 1024)];
      const id = store.json(["create-layer", "-j", ...names.flatMap((n) => ["-n", n])]).id;
      expect(store.json(["layer", "-j", id])[0].names).toEqual(names);
      for (const name of names) expect(store.json(["layer", "-j", name])[0].id).toBe(id);
      expect(store.json(["get-names", "-j", "../x"])).toEqual(names);
      store.ok(["delete-layer", id]);
      for (const args of [
        ["mount", "/etc"],
        ["unmount", "../../x"],
        ["delete-layer", "../../../x"],
        ["delete-image", "/etc/passwd"],
        ["delete-container", ""],
        ["get-container-dir", "../../x"],
        ["get-container-run-dir", "/"],
        ["metadata", "/etc/passwd"],
        ["diff", "../x"],
        ["applydiff", "-f", "/dev/null", "/"],
      ]) {
        const r = store.cli(args);
        expect(r.code, args.join(" ")).not.toBe(0);
        if (r.stderr !== "") expectOneLineRefusal(r, store, args.join(" "));
      }
      for (const path of ["/x", "/etc/x"]) expect(existsSync(path)).toBe(false);
    }, 60_000);

    test("data items with path-like names and NUL bytes round-trip and stay in the database", () => {
      const file = join(scratch, `data-${driver}`);
      const bytes = new Uint8Array([0, 1, 2, 0, 0xff, 0xfe, 10, 0]);
      writeFileSync(file, bytes);
      for (const name of ["../../../../outside/pwned", "/etc/passwd", "a\nb\tc"]) {
        store.ok(["set-image-data", "-f", file, "img", name]);
        expect(new Uint8Array(store.cli(["get-image-data", "img", name]).stdoutBytes)).toEqual(bytes);
      }
      store.ok(["set-metadata", "-f", file, "img"]);
      expect(store.json(["image", "-j", "img"])[0].metadata).toBe(new TextDecoder().decode(bytes));
      expect(existsSync(join(store.dir, "outside"))).toBe(false);
      expect(fileState("/etc/passwd")).toBe(passwdState);
    });

    test("--storage-opt junk fails with one line, or is harmless", () => {
      const junk = ["foo", "=", "=x", `${driver}.imagestore=`, `${driver}.mountopt=`, "q".repeat(2000), `${driver}.size=abc`, `${driver}.mount_program=/nonexistent`, `${driver}.skip_mount_home=maybe`];
      for (const option of junk) {
        const r = runBinary(["--graph", store.graph, "--run", store.run, "--storage-driver", driver, "--storage-opt", option, "layers", "-j"]);
        // Errors opening the store go to stdout as "error initializing: ..." (docs/cli-contract.md §1.1 step 8).
        const message = r.stdout.startsWith("error initializing: ") ? r.stdout : r.stderr;
        if (r.code !== 0) expectOneLineRefusal({ ...r, stderr: message }, store, `--storage-opt ${option.slice(0, 40)}`, { mayNameStore: true, mayEchoLongInput: true });
      }
      expect(layerIds(store)).toContain(base);
    });

    test("bad --uidmap and --gidmap values are refused with one line before anything is made", () => {
      const layersBefore = layerIds(store);
      const bad = ["0:0", "a:b:c", "0:0:4294967296", "-1:0:1", "0:0:1:0:5:1", "0:4294967295:10", "4294967290:0:10", "0:0:1:", "0x0:0:1", "9".repeat(3000)];
      for (const map of bad) {
        for (const option of ["--uidmap", "--gidmap"]) {
          const r = store.cli(["create-layer", option, map]);
          expectOneLineRefusal(r, store, `${option} ${map.slice(0, 40)}`);
        }
      }
      expect(layerIds(store)).toEqual(layersBefore);
    }, 60_000);
  });
}
