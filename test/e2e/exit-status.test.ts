/**
 * End-to-end: each group of failures (docs/errors.md) exits with its status and says what was
 * wrong in the words scripts match — run side by side with containers-storage 1.43 where it is
 * installed, comparing the exit status and the text a script would grep for.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PEER_BINARY, type RunResult, TestStore, peerSkipReason, runBinary } from "../helpers/cli.ts";
import { makeTar, sh } from "../helpers/fixtures.ts";

const peerReason = peerSkipReason();
if (peerReason) console.log(`exit-status tests run without the side-by-side check: ${peerReason}`);

/** One store per binary, driven by the same commands; a check runs on both and compares. */
class SideBySide {
  readonly ours = new TestStore("vfs");
  readonly peer = peerReason ? undefined : new TestStore("vfs", PEER_BINARY);

  /** Runs a command that must succeed on both. */
  setup(args: string[]): void {
    this.ours.ok(args);
    this.peer?.ok(args);
  }

  /**
   * Runs args on both; expects `status` from ours and the peer, and `text` (the part scripts
   * match) in both stderr outputs. Returns our result.
   */
  check(args: string[], status: number, text?: string, options: { stdin?: string } = {}): RunResult {
    const ours = this.ours.cli(args, options);
    expect({ args, code: ours.code }).toEqual({ args, code: status });
    if (text !== undefined) expect(ours.stderr + ours.stdout).toContain(text);
    if (this.peer) {
      const theirs = this.peer.cli(args, options);
      expect({ args, peer: theirs.code }).toEqual({ args, peer: status });
      if (text !== undefined) expect(theirs.stderr + theirs.stdout).toContain(text);
    }
    return ours;
  }

  destroy(): void {
    this.ours.destroy();
    this.peer?.destroy();
  }
}

describe("exit status of each group of failures, side by side with containers-storage 1.43", () => {
  let s: SideBySide;
  beforeEach(() => {
    s = new SideBySide();
    s.setup(["create-layer", "-i", "base", "-n", "base"]);
  });
  afterEach(() => s.destroy());

  test("usage: a bad option or value, or COMMAND --help, exits 125; a missing argument, too many, an unknown command exit 1", () => {
    s.check(["layers", "--bogus"], 125, "flag provided but not defined: --bogus");
    s.check(["layers", "--json=yes"], 125, 'invalid boolean value "yes" for  --json');
    s.check(["create-layer", "--name"], 125, "flag needs an argument: --name");
    s.check(["layers", "--help"], 125, "layers [options [...]]");
    s.check(["layer"], 1, "layer: more arguments required.");
    s.check(["create-layer", "a", "b"], 1, "create-layer: too many arguments ([a b]).");
    s.check(["nosuchcommand"], 1, "nosuchcommand: unrecognized command.");
    s.check(["--help"], 0);
  });

  test("not found: an unknown layer, image, container or data item exits 1 with 1.43's words", () => {
    s.check(["layer", "nosuch"], 1);
    s.check(["delete-layer", "nosuch"], 1, "nosuch: identifier is not a layer");
    s.check(["get-layer-data", "nosuch", "item"], 1, "layer not known");
    s.check(["mount", "nosuch"], 1, "layer not known while mounting nosuch");
    s.check(["create-image", "nosuch"], 1, "layer not known");
    s.check(["create-container", "nosuch"], 1, "image not known");
    s.check(["delete-container", "nosuch"], 1, "identifier is not a container");
    s.setup(["create-image", "-i", "img", "base"]);
    s.check(["get-image-data", "img", "nope"], 1, 'locating item named "nope" for image with ID "img"');
    s.check(["get-image-data-size", "img", "nope"], 1, "size is not known");
  });

  test("already exists: a name or ID in use exits 1", () => {
    s.check(["create-layer", "-n", "base"], 1, "that name is already in use");
    s.check(["create-layer", "-i", "base"], 1, "that ID is already in use");
    s.setup(["create-image", "-i", "img", "-n", "img", "base"]);
    s.check(["create-image", "-n", "img", "base"], 1, 'image name "img" is already associated with image "img": that name is already in use');
  });

  test("in use: a layer with children, an image with a container, shutdown with a mounted layer exit 1", () => {
    s.setup(["create-layer", "-i", "child", "base"]);
    s.check(["delete-layer", "base"], 1, "base: used by layer child: layer has children");
    s.setup(["create-image", "-i", "img", "child"]);
    s.setup(["create-container", "-i", "ctr", "img"]);
    s.check(["delete-image", "img"], 1, "img: image used by ctr: image is in use by a container");
    s.setup(["mount", "base"]);
    s.check(["shutdown"], 1, "shutdown: a layer is mounted: layer is in use by a container");
    s.setup(["unmount", "base"]);
    // The layer is intact after every refusal.
    expect(s.ours.json(["layers", "-j"]).map((l: { id: string }) => l.id).sort()).toEqual(["base", "child", s.ours.json(["container", "-j", "ctr"])[0].layer].sort());
  });

  test("invalid argument: a malformed digest or ID map exits 1", () => {
    s.check(["images-by-digest", "sha256:abc"], 1, "sha256:abc: invalid checksum digest length");
    s.check(["create-layer", "--uidmap", "bad"], 1, 'initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: ["bad"]');
  });

  test("corrupt input: a tar that is not one, or is cut short, exits 1 and leaves the layer usable", () => {
    const garbage = join(s.ours.dir, "garbage.tar");
    writeFileSync(garbage, "this is not a tar archive ".repeat(40));
    s.check(["applydiff", "-f", garbage, "base"], 1, "archive/tar: invalid tar header");
    const whole = makeTar({ "etc/hosts": "127.0.0.1 localhost\n".repeat(200) });
    const truncated = join(s.ours.dir, "truncated.tar");
    writeFileSync(truncated, readFileSync(whole).subarray(0, 1500));
    s.check(["applydiff", "-f", truncated, "base"], 1, "unexpected EOF");
    s.check(["import-layer", "-f", truncated], 1, "unexpected EOF");
    // The failed import-layer left nothing behind, and base is still there.
    expect(s.ours.json(["layers", "-j"]).map((l: { id: string }) => l.id)).toEqual(["base"]);
  });
});

/** Runs fn with a fresh mount point for a file system made by mountArgs; always unmounts. */
function withMount(parent: string, mountArgs: (target: string) => string[], fn: (target: string) => void): void {
  const target = join(parent, "mnt");
  mkdirSync(target, { recursive: true });
  sh(["mount", ...mountArgs(target)]);
  try {
    fn(target);
  } finally {
    Bun.spawnSync(["umount", "-l", target]);
  }
}

const rootReason = process.getuid?.() === 0 ? undefined : "mounting a read-only bind mount or a tmpfs needs root";
if (rootReason) console.log(`skipping I/O exit-status tests: ${rootReason}`);

describe.skipIf(rootReason !== undefined)("I/O errors name the path and exit 1, as containers-storage's do", () => {
  let s: SideBySide;
  beforeEach(() => {
    s = new SideBySide();
  });
  afterEach(() => s.destroy());

  test("a read-only graph root: writing commands fail naming the database and 'read-only file system' (1.43: every command, at start)", () => {
    for (const store of [s.ours, s.peer]) {
      if (!store) continue;
      store.ok(["create-layer", "-i", "base"]);
      withMount(store.dir, (target) => ["--bind", store.graph, target], () => {
        sh(["mount", "-o", "remount,bind,ro", join(store.dir, "mnt")]);
        const args = ["--graph", join(store.dir, "mnt"), "--run", store.run, "--storage-driver", "vfs"];
        for (const command of [["layers"], ["create-layer"], ["delete-layer", "base"]]) {
          const r = runBinary([...args, ...command], {}, store.binary);
          // Reading a read-only store works here (docs/robustness.md); 1.43 cannot even open it.
          const reads = store === s.ours && command[0] === "layers";
          expect({ binary: store.binary, command, code: r.code }).toEqual({ binary: store.binary, command, code: reads ? 0 : 1 });
          if (reads) expect(r.stdout).toBe("base\n");
          else if (store === s.ours) expect(r.stderr).toMatch(/^(base: |create-layer: )?opening database .*\/oci-storage\.db for writing: read-only file system\n$/);
          else expect(r.stdout + r.stderr).toMatch(/^error initializing: .*read-only file system\n/);
        }
      });
    }
  });

  test("a full file system while applying a layer: exit 1, 'no space left on device'", () => {
    for (const store of [s.ours, s.peer]) {
      if (!store) continue;
      withMount(store.dir, (target) => ["-t", "tmpfs", "-o", "size=2m", "tmpfs", target], (target) => {
        const args = ["--graph", join(target, "graph"), "--run", store.run, "--storage-driver", "vfs"];
        expect(runBinary([...args, "create-layer", "-i", "base"], {}, store.binary).code).toBe(0);
        // 3 MB of file content does not fit in the 2 MiB file system.
        const tar = makeTar({ big: "0123456789abcdef".repeat(187_500) });
        const r = runBinary([...args, "applydiff", "-f", tar, "base"], {}, store.binary);
        expect({ binary: store.binary, code: r.code }).toEqual({ binary: store.binary, code: 1 });
        expect(r.stderr).toContain("no space left on device");
        // Ours names the command and the entry it was writing, even though the disk is full for the database too.
        if (store === s.ours) expect(r.stderr).toBe('applydiff: extracting "./big": no space left on device\n');
      });
    }
  });
});
