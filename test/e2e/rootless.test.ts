/**
 * End-to-end: a store used from a user namespace, as rootless podman uses one. The binary runs
 * under `unshare --user --map-root-user`, where only the caller's own ID is mapped, and imports
 * a layer whose entries belong to 1000:1000: the kernel refuses those owners. Without
 * `<driver>.ignore_chown_errors` that is one line naming the entry, the owner and the option,
 * and nothing is stored; with it (as with 1.43) the layer is stored with the owners left as
 * created. Devices, which a user namespace cannot make, are left out of the tree as 1.43 leaves
 * them out (1.43 runs alongside as the oracle). And a plain user, in no namespace, can keep a
 * vfs store with `vfs.ignore_chown_errors=true`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, PEER_BINARY, TestStore, availableDrivers, peerSkipReason } from "../helpers/cli.ts";
import { makeTar, sh } from "../helpers/fixtures.ts";

let work: string;
/** A tar (Python's tarfile) of a directory, a file and a symlink, all owned by 1000:1000. */
let foreignOwners: string;
/** A tar (Python's tarfile) with a character device, a block device, a FIFO and a file. */
let devices: string;

/** Writes a tar of `entries` with Python's tarfile: [name, kind, uid] with kind a tarfile type constant's name. */
function pythonTar(path: string, entries: Array<[string, string, number]>): void {
  const script = [
    "import io, json, sys, tarfile",
    "t = tarfile.open(sys.argv[1], 'w')",
    "for name, kind, uid in json.loads(sys.argv[2]):",
    "    i = tarfile.TarInfo(name); i.type = getattr(tarfile, kind); i.uid = i.gid = uid",
    "    i.mode = 0o755 if kind == 'DIRTYPE' else 0o644",
    "    i.linkname = 'f' if kind == 'SYMTYPE' else ''",
    "    i.devmajor, i.devminor = (1, 3) if kind == 'CHRTYPE' else (7, 0)",
    "    data = b'hello' if kind == 'REGTYPE' else b''",
    "    i.size = len(data); t.addfile(i, io.BytesIO(data))",
    "t.close()",
  ].join("\n");
  sh(["python3", "-c", script, path, JSON.stringify(entries)]);
}

/** Why user namespaces cannot be used here, or undefined when they can. */
function userNamespaceSkipReason(): string | undefined {
  const probe = Bun.spawnSync(["unshare", "--user", "--map-root-user", "true"], { stderr: "pipe" });
  return probe.exitCode === 0 ? undefined : `unshare --user fails here: ${probe.stderr.toString().trim()}`;
}

const skipReason = userNamespaceSkipReason();
if (skipReason) console.log(`skipping the user-namespace tests: ${skipReason}`);

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oci-rootless-"));
  foreignOwners = join(work, "owners.tar");
  pythonTar(foreignOwners, [["d", "DIRTYPE", 1000], ["d/f", "REGTYPE", 1000], ["d/l", "SYMTYPE", 1000]]);
  devices = join(work, "devices.tar");
  pythonTar(devices, [["null", "CHRTYPE", 0], ["loop0", "BLKTYPE", 0], ["pipe", "FIFOTYPE", 0], ["f", "REGTYPE", 0]]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a program inside a user namespace that maps only root. */
function namespaced(program: string, args: string[]) {
  const r = Bun.spawnSync(["unshare", "--user", "--map-root-user", program, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A layer's diff as GNU tar lists it (`tar -tv --numeric-owner`). */
function diffListing(s: TestStore, layer: string): string {
  const pipeline = `'${BINARY}' ${s.globals.map((g) => `'${g}'`).join(" ")} diff '${layer}' | tar -tv --numeric-owner`;
  return Bun.spawnSync(["bash", "-c", pipeline], { stdout: "pipe" }).stdout.toString();
}

/** The names below a directory with their kinds, sorted ("pipe fifo"). */
function kinds(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .map((e) => `${e.name} ${e.isFIFO() ? "fifo" : e.isCharacterDevice() ? "char" : e.isBlockDevice() ? "block" : e.isFile() ? "file" : "other"}`)
    .sort();
}

describe.skipIf(skipReason !== undefined)("devices in a user namespace (vfs)", () => {
  test("are left out of the tree, as containers-storage 1.43 leaves them out; the FIFO is made; the diff keeps them", () => {
    const s = new TestStore("vfs");
    try {
      const r = namespaced(BINARY, [...s.globals, "import-layer", "-i", "devices", "-f", devices]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const tree = kinds(join(s.graph, "vfs", "dir", "devices"));
      expect(tree).toEqual(["f file", "pipe fifo"]);
      const listing = diffListing(s, "devices");
      expect(listing).toMatch(/^c.* 1,3 .* null$/m);
      expect(listing).toMatch(/^b.* 7,0 .* loop0$/m);
      expect(s.ok(["check"])).toBe("");
      const peerSkip = peerSkipReason();
      if (peerSkip) {
        console.log(`skipping the side-by-side part: ${peerSkip}`);
        return;
      }
      const peerDir = mkdtempSync(join(tmpdir(), "oci-peer-"));
      try {
        const peer = namespaced(PEER_BINARY, ["--graph", join(peerDir, "g"), "--run", join(peerDir, "r"), "-s", "vfs", "import-layer", "-i", "devices", "-f", devices]);
        expect(peer.code).toBe(0);
        expect(kinds(join(peerDir, "g", "vfs", "dir", "devices"))).toEqual(tree);
      } finally {
        rmSync(peerDir, { recursive: true, force: true });
      }
    } finally {
      s.destroy();
    }
  });
});

describe.skipIf(skipReason !== undefined)("overlay asked for in a user namespace without a mount namespace of its own", () => {
  test("fails the store's first command with one line saying the test mount failed, and why", () => {
    const dir = mkdtempSync(join(tmpdir(), "oci-userns-overlay-"));
    try {
      const r = namespaced(BINARY, ["--graph", join(dir, "g"), "--run", join(dir, "r"), "-s", "overlay", "layers"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toStartWith(`error initializing: failed to GetDriver graph overlay ${join(dir, "g")}: driver not supported: a test mount of overlayfs on ${join(dir, "g")} failed: `);
      expect(r.stdout).toContain("permission denied");
      // mount(8)'s lines, each trimmed, joined into the one.
      expect(r.stdout.trimEnd()).not.toMatch(/\n|\s{2}/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a plain user (no user namespace) with vfs.ignore_chown_errors=true", () => {
  test("keeps a vfs store: base and child layers, a root-owned tar imported, mounted and given back by diff", () => {
    if (process.getuid?.() !== 0) {
      console.log("skipping the plain-user test: it needs root to switch to another user");
      return;
    }
    // Under /tmp itself: the test run's TMPDIR (npm test makes one) is root's alone, closed to the user.
    const home = mkdtempSync("/tmp/oci-plain-user-");
    try {
      chownSync(home, 65534, 65534);
      // In the user's own directory: makeTar's is root's alone.
      const tar = join(home, "etc.tar");
      copyFileSync(makeTar({ "etc/": "", "etc/motd": "hi\n" }), tar);
      chmodSync(tar, 0o644);
      const run = (args: string[]) => {
        const r = Bun.spawnSync(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", BINARY, "--graph", join(home, "g"), "--run", join(home, "r"), "-s", "vfs", "--storage-opt", "vfs.ignore_chown_errors=true", ...args], { stdout: "pipe", stderr: "pipe" });
        return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
      };
      expect(run(["create-layer", "-i", "base"])).toEqual({ code: 0, stdout: "base\n", stderr: "" });
      expect(run(["import-layer", "-i", "etc", "-f", tar, "base"]).code).toBe(0);
      expect(run(["create-layer", "-i", "top", "etc"]).code).toBe(0);
      const mountPoint = run(["mount", "top"]).stdout.trim();
      expect(lstatSync(join(mountPoint, "etc", "motd")).uid).toBe(65534);
      expect(run(["unmount", "top"]).code).toBe(0);
      const diff = Bun.spawnSync(["bash", "-c", `setpriv --reuid 65534 --regid 65534 --clear-groups '${BINARY}' --graph '${join(home, "g")}' --run '${join(home, "r")}' -s vfs diff etc | tar -tv --numeric-owner`], { stdout: "pipe" });
      expect(diff.stdout.toString()).toMatch(/^-rw-r--r-- 0\/0 .* \.\/etc\/motd$/m);
      expect(run(["check"])).toEqual({ code: 0, stdout: "", stderr: "" });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

for (const driver of availableDrivers()) {
  describe.skipIf(skipReason !== undefined)(`the ${driver} driver in a user namespace`, () => {
    let s: TestStore;
    beforeAll(() => {
      s = new TestStore(driver);
      s.ok(["create-layer", "-i", "base"]);
    });
    afterAll(() => s.destroy());

    /** Runs the binary on the test store inside a user namespace that maps only root. */
    const inNamespace = (args: string[]) => namespaced(BINARY, [...s.globals, ...args]);

    test("owners the kernel refuses fail the import with one line naming the entry, the owner and the option; nothing is stored", () => {
      const r = inNamespace(["import-layer", "-i", "refused", "-f", foreignOwners, "base"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        'extracting "d/": setting owner 1000:1000: invalid argument (not mapped in this user namespace? the driver option ignore_chown_errors=true leaves such owners as created)\n',
      );
      expect(s.ok(["layers"])).toBe("base\n");
      expect(s.ok(["check"])).toBe("");
    });

    test(`with ${driver}.ignore_chown_errors=true the layer is stored, its entries owned as created`, () => {
      const r = inNamespace(["--storage-opt", `${driver}.ignore_chown_errors=true`, "import-layer", "-i", "kept", "-f", foreignOwners, "base"]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const mountPoint = s.ok(["mount", "kept"]).trim();
      try {
        for (const entry of ["d", "d/f", "d/l"]) {
          const st = lstatSync(join(mountPoint, entry));
          expect([entry, st.uid, st.gid]).toEqual([entry, 0, 0]);
        }
      } finally {
        s.ok(["unmount", "kept"]);
      }
      // The layer's diff is the tar as given, owners and all.
      expect(diffListing(s, "kept")).toContain("1000/1000");
    });
  });
}

describe("ignore_chown_errors is checked as 1.43 checks it", () => {
  test("vfs takes it with the vfs. or . prefix and a boolean; a bare key or another word is refused", () => {
    const s = new TestStore("vfs");
    try {
      expect(s.cli(["--storage-opt", ".ignore_chown_errors=1", "layers"]).code).toBe(0);
      expect(s.cli(["--storage-opt", "ignore_chown_errors=1", "layers"]).stdout).toBe("error initializing: vfs driver does not support ignore_chown_errors options\n");
      expect(s.cli(["--storage-opt", "vfs.ignore_chown_errors=yes", "layers"]).stdout).toBe(
        'error initializing: vfs: vfs.ignore_chown_errors: invalid boolean "yes"\n',
      );
      expect(s.cli(["--storage-opt", ".mountopt=nodev", "layers"]).stdout).toBe("error initializing: vfs driver does not support .mountopt options\n");
    } finally {
      s.destroy();
    }
  });
});
