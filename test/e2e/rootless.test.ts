/**
 * End-to-end: a store used from a user namespace, as rootless podman uses one. The binary runs
 * under `unshare --user --map-root-user`, where only the caller's own ID is mapped, and imports
 * a layer whose entries belong to 1000:1000: the kernel refuses those owners. Without
 * `<driver>.ignore_chown_errors` that is one line naming the entry, the owner and the option,
 * and nothing is stored; with it (as with 1.43) the layer is stored with the owners left as
 * created.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore, availableDrivers } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";

let work: string;
/** A tar (Python's tarfile) of a directory, a file and a symlink, all owned by 1000:1000. */
let foreignOwners: string;

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
  const script = [
    "import io, sys, tarfile",
    "t = tarfile.open(sys.argv[1], 'w')",
    "for name, kind in [('d', tarfile.DIRTYPE), ('d/f', tarfile.REGTYPE), ('d/l', tarfile.SYMTYPE)]:",
    "    i = tarfile.TarInfo(name); i.type = kind; i.uid = i.gid = 1000",
    "    i.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644",
    "    i.linkname = 'f' if kind == tarfile.SYMTYPE else ''",
    "    data = b'hello' if kind == tarfile.REGTYPE else b''",
    "    i.size = len(data); t.addfile(i, io.BytesIO(data))",
    "t.close()",
  ].join("\n");
  sh(["python3", "-c", script, foreignOwners]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

for (const driver of availableDrivers()) {
  describe.skipIf(skipReason !== undefined)(`the ${driver} driver in a user namespace`, () => {
    let s: TestStore;
    beforeAll(() => {
      s = new TestStore(driver);
      s.ok(["create-layer", "-i", "base"]);
    });
    afterAll(() => s.destroy());

    /** Runs the binary on the test store inside a user namespace that maps only root. */
    const inNamespace = (args: string[]) => {
      const r = Bun.spawnSync(["unshare", "--user", "--map-root-user", BINARY, ...s.globals, ...args], { stdout: "pipe", stderr: "pipe" });
      return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    };

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
      const listing = Bun.spawnSync(["bash", "-c", `'${BINARY}' ${s.globals.map((g) => `'${g}'`).join(" ")} diff kept | tar -tv --numeric-owner`], { stdout: "pipe" });
      expect(listing.stdout.toString()).toContain("1000/1000");
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
