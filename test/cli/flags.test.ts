import { describe, expect, test } from "bun:test";
import { COMMAND_GLOBAL_OPTIONS } from "../../src/cli/usage.ts";
import { DEPRECATED_HELP_WARNING, FlagError, GLOBAL_OPTIONS, parseFlags } from "../../src/cli/flags.ts";
import { createLayerLike, layersLike } from "./fake-commands.ts";

const layerDefs = [...layersLike.options, ...COMMAND_GLOBAL_OPTIONS];
const createDefs = [...createLayerLike.options, ...COMMAND_GLOBAL_OPTIONS];

function parseError(defs: typeof layerDefs, argv: string[]): FlagError {
  try {
    parseFlags(defs, argv);
  } catch (error) {
    if (error instanceof FlagError) return error;
    throw error;
  }
  throw new Error(`no error for ${JSON.stringify(argv)}`);
}

describe("parseFlags: accepted forms", () => {
  const cases: Array<[string, string[], Record<string, unknown>, string[]]> = [
    ["long string, separate value", ["--graph", "/a", "x"], { graph: "/a" }, ["x"]],
    ["long string, =value", ["--graph=/a", "x"], { graph: "/a" }, ["x"]],
    ["short string, separate value", ["-g", "/a"], { graph: "/a" }, []],
    ["short string, =value", ["-g=/a"], { graph: "/a" }, []],
    ["double quotes stripped from =value", ['--graph="/a b"'], { graph: "/a b" }, []],
    ["single quotes stripped from =value", ["-g='/a'"], { graph: "/a" }, []],
    ["only one pair of quotes stripped", ["-g=\"'/a'\""], { graph: "'/a'" }, []],
    ["unbalanced quotes kept", ['-g="/a'], { graph: '"/a' }, []],
    ["a lone quote is kept", ['-g="'], { graph: '"' }, []],
    ["quotes in a separate value are kept", ["-g", '"/a"'], { graph: '"/a"' }, []],
    ["empty =value", ["--graph="], { graph: "" }, []],
    ["value may start with a dash", ["-i", "-j"], { id: "-j" }, []],
    ["bool long", ["--json"], { json: true }, []],
    ["bool short", ["-j"], { json: true }, []],
    ["bool =false", ["--json=false"], { json: false }, []],
    ["bool =0", ["-j=0"], { json: false }, []],
    ["bool =t", ["--debug=t"], { debug: true }, []],
    ["bool =True", ["-D=True"], { debug: true }, []],
    ["bool =FALSE", ["-D=FALSE"], { debug: false }, []],
    ["bool never takes the next word", ["--json", "false"], { json: true }, ["false"]],
    ["grouped bools", ["-jt"], { json: true, tree: true }, []],
    ["group with string letters takes following words in order", ["-gR", "/a", "/b", "c"], { graph: "/a", run: "/b" }, ["c"]],
    ["group ignores =value like mflag", ["-jt=false"], { json: true, tree: true }, []],
    ["-- ends options", ["--", "-j"], { json: false }, ["-j"]],
    ["first non-option word ends options", ["foo", "--json"], { json: false }, ["foo", "--json"]],
    ["a lone dash is a word", ["-", "-j"], { json: false }, ["-", "-j"]],
    ["an empty word is a word", ["", "-j"], { json: false }, ["", "-j"]],
    ["repeated string: last wins", ["-s", "vfs", "--storage-driver", "overlay"], { "storage-driver": "overlay" }, []],
  ];
  for (const [label, argv, expected, rest] of cases) {
    test(label, () => {
      const result = parseFlags(layerDefs.concat(createLayerLike.options.filter((d) => d.names[0] === "id")), argv);
      for (const [key, value] of Object.entries(expected)) expect(result.options[key]).toEqual(value as never);
      expect(result.rest).toEqual(rest);
    });
  }

  test("list options accumulate in order, keep empty values, never split on commas", () => {
    const result = parseFlags(createDefs, ["-n", "a,b", "--name", "", "-n=c", "--storage-opt", "x=1,y=2", "base"]);
    expect(result.options.name).toEqual(["a,b", "", "c"]);
    expect(result.options["storage-opt"]).toEqual(["x=1,y=2"]);
    expect(result.rest).toEqual(["base"]);
  });

  test("unset options: bools false, strings undefined or their default, lists empty", () => {
    const result = parseFlags(
      [...createDefs, { names: ["compression", "c"], type: "string", description: "x", defaultValue: "none" }],
      [],
    );
    expect(result.options).toMatchObject({ json: false, id: undefined, name: [], compression: "none", debug: false });
    expect(result.given).toEqual([]);
  });

  test("given holds the first names of options that appeared, whatever the spelling", () => {
    const result = parseFlags(GLOBAL_OPTIONS, ["-g", "/a", "--storage-opt", "x=y", "-D=false", "layers", "-s", "vfs"]);
    expect([...result.given].sort()).toEqual(["debug", "graph", "storage-opt"]);
  });

  test("global --help is an ordinary bool; parsing goes on after it", () => {
    const result = parseFlags(GLOBAL_OPTIONS, ["--help", "-g", "/a", "layers"]);
    expect(result.options.help).toBe(true);
    expect(result.options.graph).toBe("/a");
    expect(result.rest).toEqual(["layers"]);
  });

  test("global -help sets help and warns that it is deprecated", () => {
    const warnings: string[] = [];
    const result = parseFlags(GLOBAL_OPTIONS, ["-help"], (w) => warnings.push(w));
    expect(result.options.help).toBe(true);
    expect(warnings).toEqual([DEPRECATED_HELP_WARNING]);
    expect(DEPRECATED_HELP_WARNING).toBe("Warning: '-help' is deprecated, it will be replaced by '--help' soon. See usage.");
  });
});

describe("parseFlags: errors", () => {
  const cases: Array<[string, string[], FlagError["kind"], string, string]> = [
    ["unknown long", ["--bogus"], "undefined", "--bogus", "flag provided but not defined: --bogus"],
    ["unknown long with =value names the option only", ["--bogus=1"], "undefined", "--bogus", "flag provided but not defined: --bogus"],
    ["unknown short", ["-x"], "undefined", "-x", "flag provided but not defined: -x"],
    ["unknown letter names the whole group", ["-jx"], "undefined", "-jx", "flag provided but not defined: -jx"],
    ["single-dash long name is a group", ["-json"], "undefined", "-json", "flag provided but not defined: -json"],
    ["short name spelled long", ["--j"], "undefined", "--j", "flag provided but not defined: --j"],
    ["string option at the end", ["-s"], "needs-argument", "-s", "flag needs an argument: -s"],
    ["long string option at the end", ["--graph"], "needs-argument", "--graph", "flag needs an argument: --graph"],
    ["string letter without a word in a group", ["-jg"], "undefined", "-jg", "flag provided but not defined: -jg"],
    [
      "bad boolean, named as typed",
      ["--json=yes"],
      "bad-bool",
      "--json",
      'invalid boolean value "yes" for  --json: strconv.ParseBool: parsing "yes": invalid syntax',
    ],
    [
      "bad boolean, short",
      ["-j=on"],
      "bad-bool",
      "-j",
      'invalid boolean value "on" for  -j: strconv.ParseBool: parsing "on": invalid syntax',
    ],
    [
      "bad boolean value is Go-quoted",
      ['-D=a"b'],
      "bad-bool",
      "-D",
      'invalid boolean value "a\\"b" for  -D: strconv.ParseBool: parsing "a\\"b": invalid syntax',
    ],
    ["bad syntax", ["-=x"], "bad-syntax", "-=x", "bad flag syntax: -=x"],
    ["--help where help is not an option", ["--help"], "help", "--help", "flag: help requested"],
    ["-help where help is not an option", ["-help"], "help", "-help", "flag: help requested"],
    ["-h", ["-j", "-h"], "help", "-h", "flag: help requested"],
    ["-h=1 is still help", ["-h=1"], "help", "-h", "flag: help requested"],
  ];
  for (const [label, argv, kind, flag, message] of cases) {
    test(label, () => {
      const error = parseError(layerDefs, argv);
      expect(error.kind).toBe(kind);
      expect(error.flag).toBe(flag);
      expect(error.message).toBe(message);
    });
  }

  test("a group error carries the letter's own failure, which mflag reports first", () => {
    const missingValue = parseError(createDefs, ["-ji"]);
    expect(missingValue.message).toBe("flag provided but not defined: -ji");
    expect(missingValue.inner?.message).toBe("flag needs an argument: -i");
    const help = parseError(layerDefs, ["-jh"]);
    expect(help.message).toBe("flag provided but not defined: -jh");
    expect(help.inner?.kind).toBe("help");
    expect(parseError(layerDefs, ["-jx"]).inner).toBeUndefined();
  });

  test("global -h is a help request even though --help is an option", () => {
    expect(parseError(GLOBAL_OPTIONS, ["-h"]).kind).toBe("help");
  });

  test("a bad boolean for global -help fails before the deprecation warning", () => {
    const warnings: string[] = [];
    expect(() => parseFlags(GLOBAL_OPTIONS, ["-help=maybe"], (w) => warnings.push(w))).toThrow(
      'invalid boolean value "maybe" for  -help',
    );
    expect(warnings).toEqual([]);
  });
});
