/**
 * CommandDefs shaped exactly like three real containers-storage 1.43 commands (names, synopsis,
 * description, options as its help shows them), for testing the CLI machinery without a store.
 */
import type { CommandEntry } from "../../src/cli/command-spec.ts";
import type { CommandDef } from "../../src/commands/command.ts";

const noRun = async () => 0;

export const layersLike: CommandDef = {
  names: ["layers"],
  synopsis: "[options [...]]",
  description: "List layers",
  minArgs: 0,
  maxArgs: Infinity,
  options: [
    { names: ["json", "j"], type: "bool", description: "Prefer JSON output" },
    { names: ["tree", "t"], type: "bool", description: "Use a tree" },
  ],
  run: noRun,
};

export const createLayerLike: CommandDef = {
  names: ["create-layer", "createlayer"],
  synopsis: "[options [...]] [parentLayerNameOrID]",
  description: "Create a new layer",
  minArgs: 0,
  maxArgs: 1,
  options: [
    { names: ["name", "n"], type: "list", description: "Layer name" },
    { names: ["id", "i"], type: "string", description: "Layer ID" },
    { names: ["label", "l"], type: "string", description: "Mount Label" },
    { names: ["readonly", "r"], type: "bool", description: "Mark as read-only" },
    { names: ["json", "j"], type: "bool", description: "Prefer JSON output" },
    { names: ["uidmap"], type: "string", description: "UID map" },
    { names: ["gidmap"], type: "string", description: "GID map" },
    { names: ["subuidmap"], type: "string", description: "subuid UID map for a user" },
    { names: ["subgidmap"], type: "string", description: "subgid GID map for a group" },
    { names: ["hostuidmap"], type: "bool", description: "Force host UID map" },
    { names: ["hostgidmap"], type: "bool", description: "Force host GID map" },
  ],
  run: noRun,
};

export const diffLike: CommandDef = {
  names: ["diff"],
  synopsis: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
  description: "Compare two layers",
  minArgs: 1,
  maxArgs: 2,
  options: [
    { names: ["file", "f"], type: "string", description: "Write to file instead of stdout" },
    { names: ["gzip", "c"], type: "bool", description: "Compress using gzip" },
    { names: ["bzip2", "bz2", "b"], type: "bool", description: "Compress using bzip2 (not currently supported)" },
    { names: ["xz", "x"], type: "bool", description: "Compress using xz (not currently supported)" },
    { names: ["uncompressed", "u"], type: "bool", description: "Use no compression" },
  ],
  run: noRun,
};

/** Not a real command: a string option with a default, to test `=default` in help. */
export const withDefaultLike: CommandDef = {
  names: ["with-default"],
  synopsis: "",
  description: "Has a default",
  minArgs: 0,
  maxArgs: 0,
  options: [{ names: ["compression", "c"], type: "string", description: "Compression to use", defaultValue: "none" }],
  run: noRun,
};

export const FAKE_COMMANDS: CommandDef[] = [createLayerLike, diffLike, layersLike];

/** FAKE_COMMANDS as registry entries, each loaded on demand like the real ones. */
export const FAKE_ENTRIES: CommandEntry<CommandDef>[] = FAKE_COMMANDS.map((def) => ({ names: def.names, load: async () => def }));
