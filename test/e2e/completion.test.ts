/**
 * End-to-end: shell completion. `oci-storage __complete` answers for every command (names,
 * options, option values, the stored objects a reference argument names); the bash script is
 * run in a real bash (complete -p, the function with COMP_WORDS/COMP_CWORD, and typed TABs on a
 * terminal), the zsh script in a real zsh (syntax, typed TABs), the fish script in fish
 * (`complete -C`). Completion never creates a store and never prints an error.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { positionalArguments } from "../../src/cli/arguments.ts";
import { COMMAND_GLOBAL_OPTIONS } from "../../src/cli/usage.ts";
import { loadAll } from "../../src/cli/dispatch.ts";
import { COMMANDS } from "../../src/commands/index.ts";
import { BINARY, TestStore, runBinary } from "../helpers/cli.ts";
import { ShellSession } from "../helpers/terminal.ts";

const work = mkdtempSync(join(tmpdir(), "oci-completion-"));
const visible = (await loadAll(COMMANDS)).filter((command) => command.hidden !== true);
const store = new TestStore("vfs");
/** PATH with the binary under test first, as `oci-storage`. */
const PATH = `${dirname(BINARY)}:${process.env.PATH}`;
let ids: Record<string, string> = {};

beforeAll(() => {
  const first = (out: string) => out.split("\n")[0]!;
  ids = {
    base: first(store.ok(["create-layer", "-n", "base"])),
    second: first(store.ok(["create-layer", "-n", "second", "base"])),
  };
  ids.image = first(store.ok(["create-image", "-n", "localhost/app:1.0", "-n", "other-image", "second"]));
  ids.web = first(store.ok(["create-container", "-n", "web", "localhost/app:1.0"]));
});
afterAll(() => {
  store.destroy();
  rmSync(work, { recursive: true, force: true });
});

interface Reply {
  kind: string;
  prefix: string;
  noSpace: boolean;
  values: string[];
}

/** `__complete` for the words after the program name (the last one being typed). */
function complete(words: string[], env: Record<string, string> = {}): Reply {
  const r = runBinary(["__complete", "--", ...words], { env });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const [kind, prefix, flags, ...lines] = r.stdout.replace(/\n$/, "").split("\n");
  return { kind: kind!, prefix: prefix!, noSpace: flags === "nospace", values: lines.map((line) => line.split("\t")[0]!) };
}

/** The reply kind for an option whose value is a path. */
const PATH_KINDS = { file: "files", directory: "directories" };

const names = (kinds: string[]) =>
  [
    ...(kinds.includes("layer") ? ["base", "second"] : []),
    ...(kinds.includes("image") ? ["localhost/app:1.0", "other-image"] : []),
    ...(kinds.includes("container") ? ["web"] : []),
  ].sort();

describe("__complete", () => {
  test("every command: its name, every option, every option's listed values and the objects its arguments name", () => {
    const everyCommand = complete([""]).values;
    expect(everyCommand).toEqual(visible.map((c) => c.names[0]!));
    for (const command of visible) {
      const name = command.names[0]!;
      const options = [...command.options, ...COMMAND_GLOBAL_OPTIONS];
      const longNames = options.flatMap((o) => o.names.filter((n) => n.length > 1).map((n) => `--${n}`));
      expect([name, complete([name, "--"]).values.sort()]).toEqual([name, longNames.sort()]);
      for (const option of options) {
        if (option.type === "bool" || option.valueHint === undefined) continue;
        const value = complete([name, `--${option.names[0]}`, ""]);
        if (typeof option.valueHint === "string") expect([name, option.names[0], value.kind]).toEqual([name, option.names[0], PATH_KINDS[option.valueHint]]);
        else expect([name, option.names[0], value.values]).toEqual([name, option.names[0], [...option.valueHint]]);
      }
      const first = positionalArguments(command)[0];
      if (first?.references.length) {
        const offered = complete([...store.globals, name, ""]).values.sort();
        expect([name, offered]).toEqual([name, names(first.references)]);
      }
    }
  }, 600_000);

  test("aliases, global options after the command, IDs once something is typed, values in --opt=value", () => {
    expect(complete([...store.globals, "createcontainer", "loc"]).values).toEqual(["localhost/app:1.0"]);
    // The store chosen by options after the command name, as the command itself would use it.
    expect(complete(["layer", ...store.globals, "s"]).values).toEqual(["second"]);
    expect(complete([...store.globals, "layer", ids.second!.slice(0, 3)]).values).toContain(ids.second!);
    expect(complete(["--storage-driver=o"]).values).toEqual(["--storage-driver=overlay"]);
    expect(complete(["diff", "--file="])).toMatchObject({ kind: "files", prefix: "--file=" });
    expect(complete(["-s", ""]).values).toEqual(["overlay", "vfs"]);
    expect(complete(["--graph", ""]).kind).toBe("directories");
    expect(complete(["completion", ""]).values).toEqual(["bash", "zsh", "fish"]);
    expect(complete(["man", "create-"]).values).toEqual(["create-layer", "create-image", "create-container"]);
    expect(complete(["pull", "oci"])).toMatchObject({ values: ["oci:", "oci-archive:"], noSpace: true });
    expect(complete(["pull", "oci-archive:./x"])).toMatchObject({ kind: "files", prefix: "oci-archive:" });
    expect(complete(["pull", "do"]).values).toEqual(["docker://", "docker-archive:"]);
    expect(complete(["pull", "docker://quay.io/x"])).toMatchObject({ kind: "words", values: [] });
    expect(complete(["__compl"]).values).toEqual([]);
    // Once an argument is given, mflag takes no more options: nor does completion offer them.
    expect(complete([...store.globals, "layer", "base", "--"]).values).toEqual([]);
  });

  test("a store that does not exist is not created, and a broken configuration stays silent", () => {
    const missing = join(work, "no-store");
    expect(complete(["--graph", missing, "--run", `${missing}-run`, "layer", ""]).values).toEqual([]);
    expect(existsSync(missing)).toBe(false);
    expect(existsSync(`${missing}-run`)).toBe(false);
    const conf = join(work, "broken.conf");
    writeFileSync(conf, "[storage\n");
    const broken = runBinary(["__complete", "--", "layer", ""], { env: { OCI_STORAGE_CONF: conf } });
    expect(broken).toMatchObject({ code: 1, stdout: "", stderr: "" });
    // Commands and options need no store: the configuration is not even read.
    expect(complete(["lay"], { OCI_STORAGE_CONF: conf }).values).toEqual(["layer", "layer-parent-owners", "layers"]);
  });

  test("is not listed in the usage, and has no manual page", () => {
    expect(runBinary(["--help"]).stdout).not.toContain("__complete");
    expect(runBinary(["man", "__complete"])).toMatchObject({ code: 1, stderr: "__complete: unrecognized command.\n" });
  });
});

describe("completion", () => {
  test("prints a script for bash, zsh and fish; another shell is one line and exit 1", () => {
    for (const shell of ["bash", "zsh", "fish"]) expect(runBinary(["completion", shell]).stdout).toContain("__complete --");
    expect(runBinary(["completion", "tcsh"])).toMatchObject({ code: 1, stdout: "", stderr: 'unsupported shell "tcsh": expected bash, zsh or fish\n' });
    expect(runBinary(["completion"]).code).toBe(1);
  });
});

describe("bash", () => {
  const script = join(work, "oci-storage.bash");
  beforeAll(() => writeFileSync(script, runBinary(["completion", "bash"]).stdout));

  /** Runs the completion function as bash would for the line, with COMP_WORDS split at COMP_WORDBREAKS as bash splits it. */
  function bashComplete(lines: string[]): string[][] {
    const program = [
      `source ${script}`,
      "complete -p oci-storage",
      'split() { local -a w=(); local word; for word in $1; do while [[ $word =~ ^([^:=]*)([:=]+)(.*)$ ]]; do [[ -n ${BASH_REMATCH[1]} ]] && w+=("${BASH_REMATCH[1]}"); w+=("${BASH_REMATCH[2]}"); word=${BASH_REMATCH[3]}; done; [[ -n $word ]] && w+=("$word"); done; [[ $1 == *" " ]] && w+=(""); COMP_WORDS=("${w[@]}"); }',
      ...lines.map(
        (line) =>
          `COMP_LINE=${JSON.stringify(line)}; COMP_POINT=\${#COMP_LINE}; split "$COMP_LINE"; COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _oci_storage; printf '%s\\n' "\${COMPREPLY[*]}"`,
      ),
    ].join("\n");
    const r = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", program], { env: { ...process.env, PATH }, stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    const [registration, ...replies] = r.stdout.toString().replace(/\n$/, "").split("\n");
    expect(registration).toBe("complete -F _oci_storage oci-storage");
    return replies.map((reply) => (reply === "" ? [] : reply.split(" ")));
  }

  test("the function, with COMP_WORDS and COMP_CWORD: commands, every command's options, names, values", () => {
    const g = store.globals.join(" ");
    const lines = [
      "oci-storage cre",
      ...visible.map((c) => `oci-storage ${c.names[0]} --`),
      `oci-storage ${g} layer `,
      `oci-storage ${g} mount w`,
      `oci-storage ${g} create-container localhost/app:`,
      "oci-storage --storage-driver=o",
      "oci-storage completion z",
      `oci-storage import-layer -f ${work}/oci-storage.ba`,
    ];
    const replies = bashComplete(lines);
    expect(replies[0]).toEqual(["create-layer", "create-image", "create-container"]);
    visible.forEach((command, index) => {
      const longNames = [...command.options, ...COMMAND_GLOBAL_OPTIONS].flatMap((o) => o.names.filter((n) => n.length > 1).map((n) => `--${n}`));
      expect([command.names[0], replies[index + 1]!.sort()]).toEqual([command.names[0], longNames.sort()]);
    });
    const rest = replies.slice(visible.length + 1);
    expect(rest).toEqual([["base", "second"], ["web"], ["1.0"], ["overlay"], ["zsh"], [`${work}/oci-storage.bash`]]);
  }, 600_000);

  test("typed TABs in an interactive bash complete the line", async () => {
    const bash = new ShellSession(["bash", "--norc", "--noprofile", "-i"], { PATH });
    try {
      await bash.run(`source ${script}; bind -x '"\\C-x\\C-l": printf "\\n<<%s>>\\n" "$READLINE_LINE"'`);
      const g = store.globals.join(" ");
      expect(await bash.complete("oci-storage creat")).toBe("oci-storage create-");
      expect(await bash.complete("oci-storage --storage-driver=ov")).toBe("oci-storage --storage-driver=overlay ");
      expect(await bash.complete(`oci-storage ${g} create-container localhost/app:`)).toBe(`oci-storage ${g} create-container localhost/app:1.0 `);
      expect(await bash.complete(`oci-storage ${g} delete-layer sec`)).toBe(`oci-storage ${g} delete-layer second `);
      // A name with a space and a $ comes out quoted, so the line runs as completed.
      store.ok(["create-container", "-n", "my web $HOME", "other-image"]);
      expect(await bash.complete(`oci-storage ${g} delete-container my`)).toBe(`oci-storage ${g} delete-container my\\ web\\ \\$HOME `);
    } finally {
      store.cli(["delete-container", "my web $HOME"]);
      await bash.close();
    }
  }, 120_000);
});

describe("zsh", () => {
  const dir = join(work, "zsh-functions");
  beforeAll(() => {
    mkdirSync(dir);
    writeFileSync(join(dir, "_oci-storage"), runBinary(["completion", "zsh"]).stdout);
  });

  test("the script parses", () => {
    const r = Bun.spawnSync(["zsh", "-n", join(dir, "_oci-storage")], { stderr: "pipe" });
    expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
  });

  test("typed TABs in an interactive zsh with compinit complete the line", async () => {
    const zsh = new ShellSession(["zsh", "-f", "-i"], { PATH });
    try {
      await zsh.run(`fpath=(${dir} $fpath); autoload -U compinit; compinit -u -D; show-line() { zle -M "<<$BUFFER>>" }; zle -N show-line; bindkey '^X^L' show-line`);
      const g = store.globals.join(" ");
      expect(await zsh.complete("oci-storage creat")).toBe("oci-storage create-");
      expect(await zsh.complete("oci-storage --storage-driver=ov")).toBe("oci-storage --storage-driver=overlay ");
      expect(await zsh.complete(`oci-storage ${g} create-container loc`)).toBe(`oci-storage ${g} create-container localhost/app:1.0 `);
      expect(await zsh.complete(`oci-storage import-layer -f ${dir}/_oci-st`)).toBe(`oci-storage import-layer -f ${dir}/_oci-storage `);
    } finally {
      await zsh.close();
    }
  }, 120_000);
});

describe("fish", () => {
  const script = join(work, "oci-storage.fish");
  beforeAll(() => writeFileSync(script, runBinary(["completion", "fish"]).stdout));

  test("the script parses, and complete -C answers from it", () => {
    const syntax = Bun.spawnSync(["fish", "--no-execute", script], { stderr: "pipe" });
    expect([syntax.exitCode, syntax.stderr.toString()]).toEqual([0, ""]);
    const g = store.globals.join(" ");
    const lines = ["oci-storage creat", "oci-storage --storage-driver=", `oci-storage ${g} create-container `, `oci-storage import-layer -f ${work}/oci-storage.fi`];
    const program = [`source ${script}`, ...lines.map((line) => `complete -C ${JSON.stringify(line)} | cut -f1 | string join ' '`)].join("\n");
    const r = Bun.spawnSync(["fish", "--no-config", "-c", program], { env: { ...process.env, PATH }, stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString().split("\n").slice(0, -1)).toEqual([
      "create-container create-image create-layer",
      "--storage-driver=overlay --storage-driver=vfs",
      "localhost/app:1.0 other-image",
      `${work}/oci-storage.fish`,
    ]);
  });
});
