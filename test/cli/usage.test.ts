import { afterEach, describe, expect, test } from "bun:test";
import { commandUsage, formatOptionList, globalUsage } from "../../src/cli/usage.ts";
import { createLayerLike, FAKE_COMMANDS, withDefaultLike } from "./fake-commands.ts";

const savedHome = process.env.HOME;
afterEach(() => {
  process.env.HOME = savedHome;
});

describe("globalUsage", () => {
  test("lists primary command names padded to 30 columns, in registry order", () => {
    const usage = globalUsage("oci-storage", FAKE_COMMANDS);
    expect(usage.commands).toBe(
      "Usage: oci-storage command [options [...]]\n" +
        "\n" +
        "Commands:\n" +
        "\n" +
        "  create-layer                  Create a new layer\n" +
        "  diff                          Compare two layers\n" +
        "  layers                        List layers\n" +
        "\n" +
        "Options:\n",
    );
  });

  test("option list: blank line, sorted by first name, aligned like mflag, lists show =[]", () => {
    process.env.HOME = "/nonexistent-home";
    expect(globalUsage("oci-storage", FAKE_COMMANDS).options).toBe(
      "\n" +
        "  --debug, -D             Print debugging information\n" +
        "  --graph, -g             Root of the storage tree\n" +
        "  --help                  Print usage\n" +
        "  --run, -R               Root of the runtime state tree\n" +
        "  --storage-driver, -s    Storage driver to use ($STORAGE_DRIVER)\n" +
        "  --storage-opt=[]        Set storage driver options ($STORAGE_OPTS)\n",
    );
  });

  test("--help can be left out of the list (1.43 run without arguments)", () => {
    const options = globalUsage("oci-storage", FAKE_COMMANDS, false).options;
    expect(options).not.toContain("--help");
    expect(options).toContain("  --debug, -D             Print debugging information\n");
  });

  test("the program name is the one passed in", () => {
    expect(globalUsage("my-storage", []).commands.startsWith("Usage: my-storage command [options [...]]\n")).toBe(true);
  });
});

describe("commandUsage", () => {
  test("head names the command as typed, with synopsis and description", () => {
    const usage = commandUsage("oci-storage", createLayerLike, "createlayer", {});
    expect(usage.head).toBe(
      "Usage: oci-storage createlayer [options [...]] [parentLayerNameOrID]\n\nCreate a new layer\n\nOptions:\n",
    );
  });

  test("options include the global options (no --help) with their current values", () => {
    process.env.HOME = "/nonexistent-home";
    const usage = commandUsage("oci-storage", createLayerLike, "create-layer", {
      graph: "/tmp/store/root",
      run: "",
      "storage-opt": ["a=b", "c=d"],
      debug: true,
    });
    expect(usage.options).toBe(
      "\n" +
        "  --debug, -D=true               Print debugging information\n" +
        "  --gidmap                       GID map\n" +
        "  --graph, -g=/tmp/store/root    Root of the storage tree\n" +
        "  --hostgidmap                   Force host GID map\n" +
        "  --hostuidmap                   Force host UID map\n" +
        "  --id, -i                       Layer ID\n" +
        "  --json, -j                     Prefer JSON output\n" +
        "  --label, -l                    Mount Label\n" +
        "  --name, -n=[]                  Layer name\n" +
        "  --readonly, -r                 Mark as read-only\n" +
        "  --run, -R                      Root of the runtime state tree\n" +
        "  --storage-driver, -s           Storage driver to use ($STORAGE_DRIVER)\n" +
        "  --storage-opt=[a=b c=d]        Set storage driver options ($STORAGE_OPTS)\n" +
        "  --subgidmap                    subgid GID map for a group\n" +
        "  --subuidmap                    subuid UID map for a user\n" +
        "  --uidmap                       UID map\n",
    );
  });

  test("string options with a default show =default", () => {
    expect(commandUsage("oci-storage", withDefaultLike, "with-default", {}).options).toContain("  --compression, -c=none ");
  });
});

describe("formatOptionList", () => {
  test("values that Go treats as zero are not shown", () => {
    const list = formatOptionList(
      [
        { names: ["a"], type: "string", description: "A" },
        { names: ["b"], type: "string", description: "B" },
        { names: ["c"], type: "bool", description: "C" },
      ],
      { a: "0", b: "false", c: false },
    );
    expect(list).toBe("\n  -a                 A\n  -b                 B\n  -c                 C\n");
  });

  test("the column is at least 20 wide and 3 past the longest cell", () => {
    const short = formatOptionList([{ names: ["x"], type: "bool", description: "X" }]);
    expect(short).toBe(`\n  -x${" ".repeat(16)} X\n`);
    const long = formatOptionList([{ names: ["a-very-long-option-name", "v"], type: "bool", description: "V" }]);
    expect(long).toBe(`\n  --a-very-long-option-name, -v${" ".repeat(3)} V\n`);
  });

  test("multi-line descriptions continue in the description column", () => {
    const list = formatOptionList([{ names: ["force", "f"], type: "bool", description: "Line one\nline two" }]);
    expect(list).toBe(`\n  --force, -f${" ".repeat(7)} Line one\n${" ".repeat(20)} line two\n`);
  });

  test("options without a description are hidden, as in mflag", () => {
    const list = formatOptionList([
      { names: ["hidden"], type: "bool", description: "" },
      { names: ["shown"], type: "bool", description: "S" },
    ]);
    expect(list).not.toContain("hidden");
    expect(list).toContain("--shown");
  });

  test("a value under $HOME is shown with ~, as mflag does", () => {
    process.env.HOME = "/root";
    const list = formatOptionList([{ names: ["graph", "g"], type: "string", description: "G" }], {
      graph: "/root/store",
    });
    expect(list).toBe("\n  --graph, -g=~/store    G\n");
  });

  test("the home prefix test is a plain string prefix, as in mflag; list values are not abbreviated", () => {
    process.env.HOME = "/root";
    const list = formatOptionList(
      [
        { names: ["graph", "g"], type: "string", description: "G" },
        { names: ["storage-opt"], type: "list", description: "O" },
      ],
      { graph: "/rootx", "storage-opt": ["/root/y"] },
    );
    expect(list).toContain("  --graph, -g=~x ");
    expect(list).toContain("  --storage-opt=[/root/y] ");
  });

  test("a home of / is not abbreviated", () => {
    process.env.HOME = "/";
    const list = formatOptionList([{ names: ["graph", "g"], type: "string", description: "G" }], { graph: "/store" });
    expect(list).toContain("-g=/store");
  });

  test("options sort by first name without dashes; a prefix sorts first", () => {
    const list = formatOptionList([
      { names: ["zeta"], type: "bool", description: "Z" },
      { names: ["metadata-file", "f"], type: "string", description: "F" },
      { names: ["q"], type: "bool", description: "Q" },
      { names: ["metadata", "m"], type: "string", description: "M" },
    ]);
    const names = list.split("\n").filter((line) => line !== "").map((line) => line.trim().split(" ")[0]);
    expect(names).toEqual(["--metadata,", "--metadata-file,", "-q", "--zeta"]);
  });

  test("several long spellings are all listed", () => {
    const list = formatOptionList([{ names: ["bzip2", "bz2", "b"], type: "bool", description: "Compress using bzip2" }]);
    expect(list).toBe("\n  --bzip2, --bz2, -b    Compress using bzip2\n");
  });
});
