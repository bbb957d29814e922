/**
 * Positional arguments read from the synopses: what completion and the manual pages know about a
 * command's arguments comes from the usage line `--help` prints, so every synopsis must read right.
 */
import { describe, expect, test } from "bun:test";
import { argumentAt, positionalArguments } from "../../src/cli/arguments.ts";
import { argumentDescription } from "../../src/cli/man-page.ts";
import { loadAll } from "../../src/cli/dispatch.ts";
import { COMMANDS } from "../../src/commands/index.ts";

const visible = (await loadAll(COMMANDS)).filter((command) => command.hidden !== true);

describe("positional arguments from the synopsis", () => {
  test("reference words name their kinds; [word] is optional; [...] repeats; a | b is one argument", () => {
    const byName = (name: string) => positionalArguments(visible.find((c) => c.names[0] === name)!);
    expect(byName("layers")).toEqual([]);
    expect(byName("create-layer")).toEqual([{ word: "parentLayerNameOrID", optional: true, repeats: false, references: ["layer"] }]);
    expect(byName("delete")).toEqual([{ word: "layerOrImageOrContainerNameOrID", optional: false, repeats: true, references: ["layer", "image", "container"] }]);
    expect(byName("mount")[0]!.references).toEqual(["layer", "container"]);
    expect(byName("create-container")[0]!.references).toEqual(["image"]);
    expect(byName("get-image-data").map((a) => a.word)).toEqual(["imageNameOrID", "dataName"]);
    expect(byName("copy").map((a) => [a.word, a.optional, a.repeats])).toEqual([
      ["[sourceLayerNameOrID:]/path", false, true],
      ["[destinationLayerNameOrID:]/path", false, false],
    ]);
    const push = byName("push");
    expect(push.length).toBe(2);
    expect(push[1]!.word).toStartWith("docker://HOST[:PORT]/NAME[:TAG] | oci:PATH[:REF] | oci-archive:");
    expect(byName("completion")).toEqual([{ word: "bash|zsh|fish", optional: false, repeats: false, references: [], choices: ["bash", "zsh", "fish"] }]);
  });

  test("past the last argument only a repeated one continues", () => {
    const layer = positionalArguments(visible.find((c) => c.names[0] === "layer")!);
    expect(argumentAt(layer, 5)?.word).toBe("layerNameOrID");
    const createContainer = positionalArguments(visible.find((c) => c.names[0] === "create-container")!);
    expect(argumentAt(createContainer, 1)).toBeUndefined();
  });

  test("every command: the required words match its minimum argument count, and each word is described", () => {
    for (const command of visible) {
      const args = positionalArguments(command);
      expect([command.names[0], args.filter((a) => !a.optional).length]).toEqual([command.names[0], command.minArgs]);
      for (const arg of args) expect([command.names[0], arg.word, argumentDescription(arg)]).toEqual([command.names[0], arg.word, expect.any(String)]);
    }
  });
});
