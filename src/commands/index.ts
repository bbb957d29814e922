/**
 * Every command, in the order of the global usage listing (docs/cli-contract.md §1.7), each by
 * its names and the module that defines it. A command's module, and whatever it imports, is
 * loaded only when that command runs (or the global usage lists them all): a new command adds
 * its line here, with the same names as its definition (test/commands/registry.test.ts checks).
 */
import type { CommandEntry } from "../cli/command-spec.ts";
import type { CommandDef } from "./command.ts";

const command = (names: string[], load: () => Promise<CommandDef>): CommandEntry<CommandDef> => ({ names, load });

/** The data item commands of one kind, in dataCommands' order: list-KIND-data (alias listKINDdata), get-, ... */
function dataCommandEntries(kind: "container" | "image" | "layer"): CommandEntry<CommandDef>[] {
  const forms = kind === "layer" ? ["list-%-data", "get-%-data", "set-%-data"] : ["list-%-data", "get-%-data", "get-%-data-size", "get-%-data-digest", "set-%-data"];
  return forms.map((form, index) => {
    const name = form.replace("%", kind);
    return command([name, name.replaceAll("-", "")], async () => (await import("./data.ts")).dataCommands(kind)[index]!);
  });
}

export const COMMANDS: CommandEntry<CommandDef>[] = [
  command(["container"], async () => (await import("./containers.ts")).container),
  ...dataCommandEntries("container"),
  command(["get-container-dir", "getcontainerdir"], async () => (await import("./containers.ts")).getContainerDir),
  command(["get-container-run-dir", "getcontainerrundir"], async () => (await import("./containers.ts")).getContainerRunDir),
  command(["container-parent-owners"], async () => (await import("./parent-owners.ts")).containerParentOwners),
  command(["containers"], async () => (await import("./containers.ts")).containers),
  command(["copy"], async () => (await import("./copy.ts")).copy),
  command(["create-layer", "createlayer"], async () => (await import("./layers.ts")).createLayer),
  command(["import-layer", "importlayer"], async () => (await import("./layers.ts")).importLayer),
  command(["create-image", "createimage"], async () => (await import("./images.ts")).createImage),
  command(["create-container", "createcontainer"], async () => (await import("./containers.ts")).createContainer),
  command(["delete"], async () => (await import("./delete.ts")).deleteAny),
  command(["delete-layer", "deletelayer"], async () => (await import("./delete.ts")).deleteLayer),
  command(["delete-image", "deleteimage"], async () => (await import("./delete.ts")).deleteImage),
  command(["delete-container", "deletecontainer"], async () => (await import("./delete.ts")).deleteContainer),
  command(["changes"], async () => (await import("./content.ts")).changes),
  command(["diffsize", "diff-size"], async () => (await import("./content.ts")).diffSize),
  command(["diff"], async () => (await import("./content.ts")).diff),
  command(["applydiff", "apply-diff"], async () => (await import("./content.ts")).applyDiff),
  command(["exists"], async () => (await import("./delete.ts")).exists),
  command(["image"], async () => (await import("./images.ts")).image),
  ...dataCommandEntries("image"),
  command(["images"], async () => (await import("./images.ts")).images),
  command(["images-by-digest"], async () => (await import("./images.ts")).imagesByDigest),
  command(["layer"], async () => (await import("./layers.ts")).layer),
  command(["layer-parent-owners"], async () => (await import("./parent-owners.ts")).layerParentOwners),
  ...dataCommandEntries("layer"),
  command(["layers"], async () => (await import("./layers.ts")).layers),
  command(["metadata"], async () => (await import("./names.ts")).metadata),
  command(["set-metadata", "setmetadata"], async () => (await import("./names.ts")).setMetadata),
  command(["mount"], async () => (await import("./mount.ts")).mount),
  command(["unmount", "umount"], async () => (await import("./mount.ts")).unmount),
  command(["mounted"], async () => (await import("./mount.ts")).mounted),
  command(["login"], async () => (await import("./registry.ts")).login),
  command(["logout"], async () => (await import("./registry.ts")).logout),
  command(["pull"], async () => (await import("./transfer.ts")).pull),
  command(["push"], async () => (await import("./transfer.ts")).push),
  command(["get-names", "getnames"], async () => (await import("./names.ts")).getNames),
  command(["add-names", "addnames"], async () => (await import("./names.ts")).addNames),
  command(["set-names", "setnames"], async () => (await import("./names.ts")).setNames),
  command(["shutdown"], async () => (await import("./store-commands.ts")).shutdown),
  command(["status"], async () => (await import("./store-commands.ts")).status),
  command(["version"], async () => (await import("./store-commands.ts")).version),
  command(["wipe"], async () => (await import("./store-commands.ts")).wipe),
  command(["check"], async () => (await import("./check.ts")).check),
  command(["man"], async () => (await import("./documentation.ts")).manCommand(COMMANDS)),
  command(["completion"], async () => (await import("./documentation.ts")).completion),
  command(["__complete"], async () => (await import("./documentation.ts")).completeCommand(COMMANDS)),
];
