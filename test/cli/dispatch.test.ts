import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ParsedOptions } from "../../src/commands/command.ts";
import { dispatch, type Dispatch, type DispatchHooks } from "../../src/cli/dispatch.ts";
import { FlagError } from "../../src/cli/flags.ts";
import { ArgumentCountError, GlobalOptionError, UnknownCommandError, UsageError, exitStatusOf } from "../../src/errors.ts";
import { FAKE_ENTRIES } from "./fake-commands.ts";

interface Captured {
  result: Dispatch;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], program = "oci-storage", hooks: DispatchHooks = {}): Promise<Captured> {
  let stdout = "";
  let stderr = "";
  const result = await dispatch(program, argv, FAKE_ENTRIES, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) }, hooks);
  return { result, stdout, stderr };
}

function exitCode(captured: Captured): number | "run" {
  return captured.result.kind === "exit" ? captured.result.code : "run";
}

const COMMAND_LINES =
  "  create-layer                  Create a new layer\n" +
  "  diff                          Compare two layers\n" +
  "  layers                        List layers\n";
const GLOBAL_HEAD = `Usage: oci-storage command [options [...]]\n\nCommands:\n\n${COMMAND_LINES}\nOptions:\n`;
const GLOBAL_OPTIONS_TEXT =
  "\n" +
  "  --debug, -D             Print debugging information\n" +
  "  --graph, -g             Root of the storage tree\n" +
  "  --help                  Print usage\n" +
  "  --run, -R               Root of the runtime state tree\n" +
  "  --storage-driver, -s    Storage driver to use ($STORAGE_DRIVER)\n" +
  "  --storage-opt=[]        Set storage driver options ($STORAGE_OPTS)\n";
const GLOBAL_OPTIONS_NO_HELP = GLOBAL_OPTIONS_TEXT.replace("  --help                  Print usage\n", "");
const LAYERS_HEAD = "Usage: oci-storage layers [options [...]]\n\nList layers\n\nOptions:\n";

describe("dispatch: global level (§1.1, §1.5)", () => {
  test("no arguments: usage with commands on stdout, options (without --help) on stderr, exit 1", async () => {
    const captured = await run([]);
    expect(exitCode(captured)).toBe(1);
    expect(captured.stdout).toBe(GLOBAL_HEAD);
    expect(captured.stderr).toBe(GLOBAL_OPTIONS_NO_HELP);
  });

  test("--help: everything on stdout, exit 0", async () => {
    const captured = await run(["--help"]);
    expect(exitCode(captured)).toBe(0);
    expect(captured.stdout).toBe(GLOBAL_HEAD + GLOBAL_OPTIONS_TEXT);
    expect(captured.stderr).toBe("");
  });

  test("--help wins over a command name after it", async () => {
    expect(exitCode(await run(["--help", "layers"]))).toBe(0);
  });

  test("-help: deprecation warning on stderr, then as --help", async () => {
    const captured = await run(["-help"]);
    expect(exitCode(captured)).toBe(0);
    expect(captured.stderr).toBe("Warning: '-help' is deprecated, it will be replaced by '--help' soon. See usage.\n");
    expect(captured.stdout).toBe(GLOBAL_HEAD + GLOBAL_OPTIONS_TEXT);
  });

  test("-h: usage, the help-requested line, usage again; exit 1", async () => {
    const captured = await run(["-h"]);
    expect(exitCode(captured)).toBe(1);
    expect(captured.stdout).toBe(`${GLOBAL_HEAD}flag: help requested while parsing arguments (1)\n${GLOBAL_HEAD}`);
    expect(captured.stderr).toBe(GLOBAL_OPTIONS_TEXT + GLOBAL_OPTIONS_TEXT);
  });

  test("unknown global option: error and hint on stderr, error and usage on stdout, exit 1", async () => {
    const captured = await run(["--bogus", "layers"]);
    expect(exitCode(captured)).toBe(1);
    expect(captured.stderr).toBe(`flag provided but not defined: --bogus\nSee 'oci-storage --help'.\n${GLOBAL_OPTIONS_TEXT}`);
    expect(captured.stdout).toBe(`flag provided but not defined: --bogus while parsing arguments (1)\n${GLOBAL_HEAD}`);
  });

  test("global string option without a value", async () => {
    const captured = await run(["-s"]);
    expect(exitCode(captured)).toBe(1);
    expect(captured.stderr.startsWith("flag needs an argument: -s\nSee 'oci-storage --help'.\n")).toBe(true);
  });

  test("options but no command word: usage, exit 1", async () => {
    const captured = await run(["-g", "/tmp/a"]);
    expect(exitCode(captured)).toBe(1);
    expect(captured.stdout).toBe(GLOBAL_HEAD);
    expect(captured.stderr).toBe(GLOBAL_OPTIONS_TEXT);
  });

  test("unknown command, including `help`, on stdout, exit 1", async () => {
    for (const word of ["help", "bogus"]) {
      const captured = await run([word]);
      expect(exitCode(captured)).toBe(1);
      expect(captured.stdout).toBe(`${word}: unrecognized command.\n`);
      expect(captured.stderr).toBe("");
    }
  });

  test("a boolean never takes the next word: `--debug false layers` looks up command `false`", async () => {
    expect((await run(["--debug", "false", "layers"])).stdout).toBe("false: unrecognized command.\n");
  });

  test("the program name is the one passed in", async () => {
    expect((await run(["-x"], "my-tool")).stderr.startsWith("flag provided but not defined: -x\nSee 'my-tool --help'.\n")).toBe(
      true,
    );
  });
});

describe("dispatch: command level (§1.2, §1.5, §1.6)", () => {
  const store = ["-g", "/tmp/s/root", "-R", "/tmp/s/run", "-s", "vfs"];

  test("unknown option: error and hint naming the command as typed, exit 125, nothing on stdout", async () => {
    const captured = await run([...store, "createlayer", "--bogus"]);
    expect(exitCode(captured)).toBe(125);
    expect(captured.stdout).toBe("");
    expect(captured.stderr).toBe("flag provided but not defined: --bogus\nSee 'oci-storage createlayer --help'.\n");
  });

  test("bad boolean value, exit 125", async () => {
    const captured = await run(["layers", "--json=yes"]);
    expect(exitCode(captured)).toBe(125);
    expect(captured.stderr).toBe(
      'invalid boolean value "yes" for  --json: strconv.ParseBool: parsing "yes": invalid syntax\n' +
        "See 'oci-storage layers --help'.\n",
    );
  });

  test("a string letter without a value inside a group reports both failures, like mflag", async () => {
    const captured = await run(["create-layer", "-ji"]);
    expect(exitCode(captured)).toBe(125);
    expect(captured.stderr).toBe(
      "flag needs an argument: -i\nSee 'oci-storage create-layer --help'.\n" +
        "flag provided but not defined: -ji\nSee 'oci-storage create-layer --help'.\n",
    );
  });

  for (const help of ["--help", "-help", "-h"]) {
    test(`${help} after the command: usage head on stdout, options with current global values on stderr, exit 125`, async () => {
      const captured = await run([...store, "--debug", "layers", help]);
      expect(exitCode(captured)).toBe(125);
      expect(captured.stdout).toBe(LAYERS_HEAD);
      expect(captured.stderr).toBe(
        "\n" +
          "  --debug, -D=true            Print debugging information\n" +
          "  --graph, -g=/tmp/s/root     Root of the storage tree\n" +
          "  --json, -j                  Prefer JSON output\n" +
          "  --run, -R=/tmp/s/run        Root of the runtime state tree\n" +
          "  --storage-driver, -s=vfs    Storage driver to use ($STORAGE_DRIVER)\n" +
          "  --storage-opt=[]            Set storage driver options ($STORAGE_OPTS)\n" +
          "  --tree, -t                  Use a tree\n",
      );
    });
  }

  test("-h inside a group prints usage, then the group error; exit 125", async () => {
    const captured = await run(["layers", "-jh"]);
    expect(exitCode(captured)).toBe(125);
    expect(captured.stdout).toBe(LAYERS_HEAD);
    expect(captured.stderr.endsWith("flag provided but not defined: -jh\nSee 'oci-storage layers --help'.\n")).toBe(true);
  });

  test("too few arguments: message and usage, exit 1", async () => {
    const captured = await run(["diff"]);
    expect(exitCode(captured)).toBe(1);
    expect(captured.stdout).toBe(
      "diff: more arguments required.\n" +
        "Usage: oci-storage diff [options [...]] layerNameOrID [referenceLayerNameOrID]\n\nCompare two layers\n\nOptions:\n",
    );
    expect(captured.stderr).toContain("  --bzip2, --bz2, -b ");
  });

  test("too many arguments: Go slice format, command named as typed, exit 1", async () => {
    const captured = await run(["createlayer", "a", "b c"]);
    expect(exitCode(captured)).toBe(1);
    expect(captured.stdout.split("\n")[0]).toBe("createlayer: too many arguments ([a b c]).");
    expect(captured.stdout).toContain("Usage: oci-storage createlayer [options [...]] [parentLayerNameOrID]\n");
  });

  test("unlimited commands accept and keep extra arguments", async () => {
    const captured = await run(["layers", "foo", "bar"]);
    expect(captured.result).toMatchObject({ kind: "run", args: ["foo", "bar"] });
  });

  test("options after the first argument are arguments", async () => {
    const captured = await run(["layers", "foo", "--json"]);
    expect(captured.result).toMatchObject({ kind: "run", args: ["foo", "--json"], options: { json: false } });
  });

  test("-- ends the command's options", async () => {
    expect((await run(["diff", "--", "-j"])).result).toMatchObject({ kind: "run", args: ["-j"] });
  });
});

describe("dispatch: what a command gets to run", () => {
  test("command options, arguments, alias as typed", async () => {
    const captured = await run(["createlayer", "-n", "a", "--name=b", "-ji", "ID", "parent"]);
    expect(captured.stdout + captured.stderr).toBe("");
    if (captured.result.kind !== "run") throw new Error("expected run");
    expect(captured.result.command.names[0]).toBe("create-layer");
    expect(captured.result.invokedAs).toBe("createlayer");
    expect(captured.result.args).toEqual(["parent"]);
    expect(captured.result.options).toEqual({
      name: ["a", "b"],
      id: "ID",
      label: undefined,
      readonly: false,
      json: true,
      uidmap: undefined,
      gidmap: undefined,
      subuidmap: undefined,
      subgidmap: undefined,
      hostuidmap: false,
      hostgidmap: false,
    });
  });

  test("global options after the command override single values and append to --storage-opt", async () => {
    const captured = await run([
      "-g",
      "/a",
      "--storage-opt",
      "x=1",
      "-D",
      "layers",
      "-g",
      "/b",
      "--storage-opt",
      "y=2",
      "-s",
      "vfs",
      "-D=false",
    ]);
    if (captured.result.kind !== "run") throw new Error("expected run");
    expect(captured.result.globals).toEqual({
      graph: "/b",
      run: undefined,
      "storage-driver": "vfs",
      "storage-opt": ["x=1", "y=2"],
      debug: false,
    });
    expect([...captured.result.globalsBeforeCommand].sort()).toEqual(["debug", "graph", "storage-opt"]);
    expect(captured.result.options).toEqual({ json: false, tree: false });
  });

  test("store options only after the command leave globalsBeforeCommand without them (phase A)", async () => {
    const captured = await run(["--debug", "layers", "-s", "vfs"]);
    if (captured.result.kind !== "run") throw new Error("expected run");
    expect([...captured.result.globalsBeforeCommand]).toEqual(["debug"]);
    expect(captured.result.globals["storage-driver"]).toBe("vfs");
  });

  test("defaultGlobals supplies configured values: they show in command help and after-command options override them", async () => {
    const hooks: DispatchHooks = {
      defaultGlobals: (globals, given) =>
        given.includes("graph") ? globals : { ...globals, graph: "/conf/root", "storage-opt": ["overlay.mountopt=nodev"] },
    };
    const help = await run(["layers", "--help"], "oci-storage", hooks);
    expect(help.stderr).toContain("  --graph, -g=/conf/root ");
    expect(help.stderr).toContain("  --storage-opt=[overlay.mountopt=nodev] ");

    const ran = await run(["layers", "--storage-opt", "a=b", "-g", "/mine"], "oci-storage", hooks);
    if (ran.result.kind !== "run") throw new Error("expected run");
    expect(ran.result.globals.graph).toBe("/mine");
    expect(ran.result.globals["storage-opt"]).toEqual(["overlay.mountopt=nodev", "a=b"]);

    const explicit = await run(["-g", "/x", "layers"], "oci-storage", hooks);
    if (explicit.result.kind !== "run") throw new Error("expected run");
    expect(explicit.result.globals["storage-opt"]).toEqual([]);
  });
});

/**
 * The same invocations given to the real containers-storage 1.43 (when installed) must produce the
 * same output and exit status. Only invocations that stop before the store is opened are compared;
 * the reference binary reads a config that points at a temp dir, in case one ever gets further.
 */
const reference = Bun.which("containers-storage");
describe.skipIf(reference === null)("dispatch matches containers-storage 1.43", () => {
  let dir = "";
  let config = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cli-dispatch-"));
    config = join(dir, "storage.conf");
    writeFileSync(config, `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const hooks: DispatchHooks = {
    defaultGlobals: (globals: ParsedOptions, given: string[]) => {
      const explicit = ["graph", "run", "storage-driver", "storage-opt"].some((name) => given.includes(name));
      return explicit ? globals : { ...globals, graph: `${dir}/root`, run: `${dir}/run`, "storage-driver": "vfs" };
    },
  };
  /** Commands of the real binary are many more; leave their lines out of the comparison. */
  const withoutCommandLines = (text: string) => text.replace(/^ {2}[a-z][a-z-]* +\S.*\n/gm, "");

  const store = () => ["-g", `${dir}/r`, "-R", `${dir}/rr`, "-s", "vfs"];
  const cases: Array<() => string[]> = [
    () => [],
    () => ["--help"],
    () => ["-help"],
    () => ["-h"],
    () => ["--bogus"],
    () => ["-jx"],
    () => ["-Dh"],
    () => ["-=x"],
    () => ["-g"],
    () => ["--debug=yes"],
    () => ["-help=maybe"],
    () => ["-g", `${dir}/r`, "-R", `${dir}/rr`],
    () => ["-g", "-R"],
    () => ["help"],
    () => ["--", "--help"],
    () => ["--debug", "false", "layers"],
    () => [...store(), "layers", "--bogus"],
    () => [...store(), "layers", "--bogus=1"],
    () => [...store(), "layers", "-jx"],
    () => [...store(), "layers", "-json"],
    () => [...store(), "layers", "--json=yes"],
    () => [...store(), "layers", "-D=maybe"],
    () => [...store(), "layers", "-j=on"],
    () => [...store(), "create-layer", "-i"],
    () => [...store(), "create-layer", "-ji"],
    () => [...store(), "layers", "-jh"],
    () => [...store(), "layers", "-help"],
    () => [...store(), "layers", "--help"],
    () => [...store(), "layers", "-h"],
    () => [...store(), "layers", "-=x"],
    () => [...store(), "layers", "--=x"],
    () => [...store(), "diff"],
    () => [...store(), "diff", "-f", "out"],
    () => [...store(), "createlayer", "a", "b", "c"],
    () => [...store(), "diff", "--help"],
    () => [...store(), "createlayer", "-n", "x", "--help"],
    () => ["layers", "--help"],
    () => ["--debug", "diff"],
    () => ["-g", `${dir}/r`, "-R", `${dir}/rr`, "--debug", "--storage-opt", "x=y", "diff", "--storage-opt", "z=w"],
    () => ["-g", `${dir}/r`, "diff", "-g", `${dir}/other`, "a", "b", "c"],
    () => [...store(), "layers", "-s"],
    () => [...store(), "layers", "-gR", `${dir}/a`],
  ];
  for (const makeArgv of cases) {
    test(makeArgv().join(" ").replaceAll(/\/tmp\/cli-dispatch-\w+/g, "<dir>") || "(no arguments)", async () => {
      const argv = makeArgv();
      const ours = await run(argv, "containers-storage", hooks);
      expect(ours.result.kind).toBe("exit");
      const theirs = Bun.spawnSync(["containers-storage", ...argv], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", CONTAINERS_STORAGE_CONF: config },
      });
      expect({
        code: exitCode(ours),
        stdout: withoutCommandLines(ours.stdout),
        stderr: ours.stderr,
      }).toEqual({
        code: theirs.exitCode,
        stdout: withoutCommandLines(theirs.stdout.toString()),
        stderr: theirs.stderr.toString(),
      });
    });
  }
});

describe("dispatch: a failed command line is a UsageError whose class sets the exit status", () => {
  const cases: Array<[string[], new (...args: never[]) => UsageError, number]> = [
    [["layers", "--bogus"], FlagError, 125],
    [["layers", "--json=yes"], FlagError, 125],
    [["layers", "--help"], FlagError, 125],
    [["-x", "layers"], GlobalOptionError, 1],
    [["-h"], GlobalOptionError, 1],
    [[], GlobalOptionError, 1],
    [["nosuch"], UnknownCommandError, 1],
    [["diff"], ArgumentCountError, 1],
    [["create-layer", "a", "b"], ArgumentCountError, 1],
  ];
  for (const [argv, errorClass, status] of cases) {
    test(`${argv.join(" ") || "(no arguments)"}: ${errorClass.name}, exit ${status}`, async () => {
      const { result } = await run(argv);
      expect(result.kind).toBe("exit");
      if (result.kind !== "exit") return;
      expect(result.error).toBeInstanceOf(errorClass);
      expect(result.code).toBe(status);
      expect(exitStatusOf(result.error)).toBe(status);
    });
  }

  test("help asked for before the command is no error: exit 0", async () => {
    const { result } = await run(["--help"]);
    expect(result).toEqual({ kind: "exit", code: 0 });
  });
});
