/** End-to-end: the command line itself — usage, errors, exit codes, configuration phases — through the compiled binary. */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, PEER_BINARY, TestStore, peerSkipReason, runBinary } from "../helpers/cli.ts";

const work = mkdtempSync(join(tmpdir(), "oci-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A config file pointing at stores inside the temp dir, so phase A never touches system paths. */
function config(name: string, body: string): string {
  const path = join(work, `${name}.conf`);
  writeFileSync(path, body);
  return path;
}

describe("command line", () => {
  test("no arguments prints usage and exits 1; --help exits 0", () => {
    const none = runBinary([]);
    expect(none.code).toBe(1);
    expect(none.stdout).toStartWith("Usage: oci-storage command [options [...]]\n\nCommands:\n\n");
    expect(none.stdout).toContain("  create-layer                  Create a new layer\n");
    const help = runBinary(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--storage-driver, -s");
  });

  test("unknown commands and options are named; option errors exit 125", () => {
    const unknown = runBinary(["frobnicate"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe("frobnicate: unrecognized command.\n");
    const s = new TestStore("vfs");
    const bad = s.cli(["layers", "--bogus"]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toStartWith("flag provided but not defined: --bogus\nSee 'oci-storage layers --help'.\n");
    const badBool = s.cli(["layers", "--json=yes"]);
    expect(badBool.code).toBe(125);
    expect(badBool.stderr).toContain('invalid boolean value "yes" for  --json');
    const global = runBinary(["--bogus", "layers"]);
    expect(global.code).toBe(1);
    expect(global.stderr).toContain("flag provided but not defined: --bogus");
    s.destroy();
  });

  test("command --help prints usage and exits 125", () => {
    const r = runBinary(["create-layer", "--help"]);
    expect(r.code).toBe(125);
    expect(r.stdout).toBe("Usage: oci-storage create-layer [options [...]] [parentLayerNameOrID]\n\nCreate a new layer\n\nOptions:\n");
    expect(r.stderr).toContain("--name, -n=[]");
  });

  test("argument counts are checked before the store is opened", () => {
    const s = new TestStore("vfs");
    const few = s.cli(["get-image-data", "x"]);
    expect(few.code).toBe(1);
    expect(few.stdout).toStartWith("get-image-data: more arguments required.\n");
    const many = s.cli(["create-layer", "a", "b"]);
    expect(many.code).toBe(1);
    expect(many.stdout).toStartWith("create-layer: too many arguments ([a b]).\n");
    expect(existsSync(s.graph)).toBe(false);
    s.destroy();
  });

  test("grouped short flags, --flag=value and options after the first argument being arguments", () => {
    const s = new TestStore("vfs");
    s.ok(["create-layer", "-i", "L", "-n", "x"]);
    expect(s.ok(["layers", "-jt"])).toStartWith('[{"id":"L"');
    expect(s.ok(["layers", "--json=false"])).toBe("L\n\tname: x\n");
    const r = s.cli(["layer", "x", "--json"]);
    expect(r.code).toBe(1); // "--json" is a second reference that does not resolve
    expect(r.stdout).toBe("ID: L\nName: x\n");
    s.destroy();
  });

  test("errors are one line without a stack trace; --debug adds details", () => {
    const s = new TestStore("vfs");
    const r = s.cli(["layer-parent-owners-does-not-exist"]);
    expect(r.stdout).toBe("layer-parent-owners-does-not-exist: unrecognized command.\n");
    const plain = s.cli(["applydiff", "nope"], { stdin: "" });
    expect(plain.stderr).toBe("layer not known\n");
    const debug = runBinary(["--debug", ...s.globals, "layers"]);
    expect(debug.stderr).toContain(`level=debug msg="Root: ${s.graph}"`);
    s.destroy();
  });

  test("version prints this tool's version, build, target and SQLite version", () => {
    const s = new TestStore("vfs");
    const text = s.ok(["version"]);
    expect(text).toMatch(/^Version: \d+\.\d+\.\d+\nBuild: \S+\nTarget: linux-\S+ \(local build\)\nBun: [\d.]+\nSQLite: 3\.\d+\.\d+\nSchema: \d+\n$/);
    const json = s.json(["version", "-j"]);
    expect(json[0]).toEqual(["Version", expect.any(String)]);
    s.destroy();
  });

  test("status prints the store's pairs on stderr, JSON on stdout", () => {
    const s = new TestStore("vfs");
    const r = s.cli(["status"]);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`Root: ${s.graph}\nRun Root: ${s.run}\nDriver Name: vfs\nDriver Options: []\n`);
    expect(s.json(["status", "-j"])).toEqual([
      ["Root", s.graph],
      ["Run Root", s.run],
      ["Driver Name", "vfs"],
      ["Driver Options", "[]"],
    ]);
    s.destroy();
  });

  test("unknown drivers and bad storage options fail initialisation", () => {
    const dir = join(work, "drv");
    const r = runBinary(["--graph", dir, "--run", `${dir}-run`, "-s", "bogus", "layers"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`error initializing: failed to GetDriver graph bogus ${dir}: driver not supported\n`);
    const opt = runBinary(["--graph", dir, "--run", `${dir}-run`, "-s", "vfs", "--storage-opt", "novalue", "layers"]);
    expect(opt.stdout).toBe("error initializing: unable to parse key/value option: novalue\n");
    const vfsOpt = runBinary(["--graph", dir, "--run", `${dir}-run`, "-s", "vfs", "--storage-opt", "vfs.mountopt=nodev", "layers"]);
    expect(vfsOpt.stdout).toBe("error initializing: vfs driver does not support mount options\n");
  });

  test("an existing store keeps its driver; asking for another one is a clear error", () => {
    const s = new TestStore("vfs");
    s.ok(["create-layer", "-i", "L"]);
    const other = runBinary(["--graph", s.graph, "--run", s.run, "-s", "overlay", "layers"]);
    expect(other.code).toBe(1);
    expect(other.stdout).toContain("uses the vfs driver, not overlay");
    expect(runBinary(["--graph", s.graph, "--run", s.run, "layers"]).stdout).toBe("L\n");
    s.destroy();
  });

  test("phase A: config file and environment apply when no store option precedes the command", () => {
    const graph = join(work, "a-graph");
    const run = join(work, "a-run");
    const conf = config("a", `[storage]\ndriver = "vfs"\ngraphroot = "${graph}"\nrunroot = "${run}"\n`);
    const env = { OCI_STORAGE_CONF: conf };
    expect(runBinary(["create-layer", "-i", "fromconf"], { env }).code).toBe(0);
    expect(runBinary(["layers"], { env }).stdout).toBe("fromconf\n");
    // Options after the command override the file.
    const other = join(work, "a-other");
    expect(runBinary(["layers", "--graph", other, "--run", `${other}-run`], { env }).stdout).toBe("");
    // STORAGE_OPTS replaces the option list and is checked by the driver.
    const bad = runBinary(["layers"], { env: { ...env, STORAGE_OPTS: "vfs.bogus=1" } });
    expect(bad.stdout).toBe("error initializing: vfs driver does not support vfs.bogus options\n");
    // Phase B: a store option before the command ignores the file and the environment.
    const b = runBinary(["--graph", graph, "--run", run, "layers"], { env: { ...env, STORAGE_OPTS: "vfs.bogus=1" } });
    expect(b.stdout).toBe("fromconf\n");
  });

  test("an empty --graph, --run or --storage-driver counts as not given, as in 1.43 (scripts pass unset variables)", () => {
    const graph = join(work, "empty-graph");
    const run = join(work, "empty-run");
    const env = { OCI_STORAGE_CONF: config("empty", `[storage]\ndriver = "vfs"\ngraphroot = "${graph}"\nrunroot = "${run}"\n`) };
    expect(runBinary(["create-layer", "-i", "configured"], { env }).code).toBe(0);
    // Before the command: the configured store, as with no option at all.
    expect(runBinary(["--graph", "", "--run", "", "-s", "", "layers"], { env }).stdout).toBe("configured\n");
    // After the command, and with the roots given: the store keeps its recorded driver.
    expect(runBinary(["layers", "-s", "", "--graph", ""], { env }).stdout).toBe("configured\n");
    const direct = runBinary(["--graph", graph, "--run", run, "-s", "", "layers"]);
    expect(direct.stdout).toBe("configured\n");
    expect(direct.code).toBe(0);
  });

  test("a malformed config file is named with its line", () => {
    const conf = config("bad", '[storage]\ndriver = "vfs"\ngraphroot =\n');
    const r = runBinary(["layers"], { env: { OCI_STORAGE_CONF: conf } });
    expect(r.code).toBe(1);
    expect(r.stdout).toStartWith(`error initializing: ${conf}:3: invalid TOML`);
  });

  test("a setting of the wrong type is an error naming the file and the setting, where 1.43 fails too", () => {
    const cases: Array<[string, string]> = [
      ['[storage]\ndriver = "vfs"\ngraphroot = 5\n', "storage.graphroot must be a string, not a number"],
      ["[storage]\ndriver = true\n", "storage.driver must be a string, not a boolean"],
      ['[storage]\nrunroot = ["/a"]\n', "storage.runroot must be a string, not a list"],
      ["storage = 1\n", "[storage] must be a table, not a number"],
      ['[storage]\noptions = "x"\n', "[storage.options] must be a table, not a string"],
      ['[storage]\ndriver = "vfs"\n[storage.options]\nadditionalimagestores = "/ro"\n', "storage.options.additionalimagestores must be a list of strings"],
    ];
    const peerSkip = peerSkipReason();
    if (peerSkip) console.log(`skipping the side-by-side part: ${peerSkip}`);
    for (const [i, [text, message]] of cases.entries()) {
      const conf = config(`typed-${i}`, text);
      const r = runBinary(["layers"], { env: { OCI_STORAGE_CONF: conf } });
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: `error initializing: ${conf}: ${message}\n` });
      if (!peerSkip) {
        const peer = runBinary(["layers"], { env: { CONTAINERS_STORAGE_CONF: conf } }, PEER_BINARY);
        expect(peer.code).not.toBe(0);
      }
    }
  });

  test("a directory where the user's config file goes is an error naming it, as containers-storage 1.43 does", () => {
    const home = join(work, "dir-home");
    const conf = join(home, ".config", "oci-storage", "storage.conf");
    mkdirSync(conf, { recursive: true });
    const r = runBinary(["layers"], { env: { HOME: home, XDG_CONFIG_HOME: "" } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`error initializing: reading configuration ${conf}: is a directory\n`);
  });

  /** What a terminal shows: stdout and stderr through one pipe, with the program's name and the store's roots made alike. */
  function bothStreams(binary: string, args: string[], s: TestStore): string {
    const p = Bun.spawnSync(["sh", "-c", 'exec "$@" 2>&1', "sh", binary, ...s.globals, ...args], { stdout: "pipe" });
    return p.stdout.toString().replaceAll(s.graph, "<graph>").replaceAll(s.run, "<run>").replaceAll(binary === BINARY ? "oci-storage" : "containers-storage", "<program>");
  }

  test("usage printed on both streams reads in order on a terminal, as containers-storage 1.43 prints it", () => {
    const s = new TestStore("vfs");
    // Usage first (stdout), then the options (stderr): written in that order, not stdout last.
    const help = bothStreams(BINARY, ["layers", "--help"], s);
    expect(help).toStartWith("Usage: <program> layers [options [...]]\n\nList layers\n\nOptions:\n\n  --debug, -D");
    const missing = bothStreams(BINARY, ["exists"], s);
    expect(missing).toStartWith("exists: more arguments required.\nUsage: <program> exists");
    expect(missing.indexOf("Options:\n")).toBeLessThan(missing.indexOf("--container, -c"));
    const none = bothStreams(BINARY, [], s);
    expect(none).toStartWith("Usage: <program> command [options [...]]\n\nCommands:\n");
    expect(none.indexOf("  create-layer ")).toBeLessThan(none.indexOf("  --storage-opt=[]"));
    const skip = peerSkipReason();
    if (skip) console.log(`skipping the side-by-side part: ${skip}`);
    else expect(help).toBe(bothStreams(PEER_BINARY, ["layers", "--help"], s));
    s.destroy();
  });

  test("mount, unmount and mounted of several references print their lines and failures in 1.43's order", () => {
    const skip = peerSkipReason();
    if (skip) return console.log(`skipping: ${skip}`);
    const seen = [BINARY, PEER_BINARY].map((binary) => {
      const s = new TestStore("vfs", binary);
      s.ok(["create-layer", "-n", "base"]);
      s.ok(["create-image", "-n", "img", "base"]);
      s.ok(["create-container", "-n", "c", "img"]);
      const id = s.json(["container", "--json", "c"])[0].layer;
      const steps = [["mount", "nope", "c"], ["unmount", "c", "nope", "c"], ["mount", "c"], ["mounted", "c", "nope", "c"], ["unmount", "c"]];
      const text = steps.map((args) => `$ ${args.join(" ")}\n${bothStreams(binary, args, s).replaceAll(id, "<layer>")}`).join("");
      s.destroy();
      return text;
    });
    expect(seen[0]).toContain("$ mount nope c\nlayer not known while mounting nope\n\n<graph>/vfs/dir/<layer>\n");
    expect(seen[0]).toContain("$ unmount c nope c\nc mountpoint unmounted\nc mountpoint unmounted\nlayer not known while unmounting nope\n");
    expect(seen[0]).toBe(seen[1]!);
  });

  test("data commands' descriptions use the right article", () => {
    const usage = runBinary(["--help"]).stdout;
    expect(usage).toContain("  list-image-data               List data items that are attached to an image\n");
    expect(usage).toContain("  set-container-data            Set data that is attached to a container\n");
    expect(usage).toContain("  get-layer-data                Get data that is attached to a layer\n");
  });

  /** `layers | head -c 5` in bash (after `prelude`) on a store listing more than a pipe holds: the exit status of each side and our stderr. */
  function layersIntoHead(s: TestStore, prelude: string): { status: string; stderr: string } {
    const errors = join(s.dir, "head.err");
    const command = [s.binary, ...s.globals, "layers"].map((word) => `'${word}'`).join(" ");
    const run = Bun.spawnSync(["bash", "-c", `${prelude} ${command} 2>'${errors}' | head -c 5 >/dev/null; echo \${PIPESTATUS[@]}`], { stdout: "pipe" });
    return { status: run.stdout.toString().trim(), stderr: readFileSync(errors, "utf8") };
  }

  test("a listing whose reader stops early (| head) ends silently with 141, like 1.43; with SIGPIPE ignored, with one line", () => {
    // 300 names of 250 characters: ~77 KB of listing, more than a pipe holds, so the write finds the reader gone.
    const names = Array.from({ length: 300 }, (_, i) => ["-n", `name-${i}-${"x".repeat(240)}`]).flat();
    const ours = new TestStore("vfs");
    ours.ok(["create-layer", ...names]);
    expect(layersIntoHead(ours, "trap - PIPE;")).toEqual({ status: "141 0", stderr: "" });
    expect(layersIntoHead(ours, "trap '' PIPE;")).toEqual({ status: "1 0", stderr: "write /dev/stdout: broken pipe\n" });
    ours.destroy();
    const skip = peerSkipReason();
    if (skip) return console.log(`skipping the side-by-side part: ${skip}`);
    const peer = new TestStore("vfs", PEER_BINARY);
    peer.ok(["create-layer", ...names]);
    expect(layersIntoHead(peer, "trap - PIPE;")).toEqual({ status: "141 0", stderr: "" });
    peer.destroy();
  });
});
