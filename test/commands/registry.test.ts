/** The command registry: every entry loads its definition, under the names the entry lists. */
import { describe, expect, test } from "bun:test";
import { COMMANDS } from "../../src/commands/index.ts";

describe("command registry", () => {
  test("each entry loads a definition with exactly the entry's names, so lookup and help agree", async () => {
    for (const entry of COMMANDS) {
      const def = await entry.load();
      expect({ entry: entry.names, def: def.names }).toEqual({ entry: entry.names, def: entry.names });
      expect(typeof def.run).toBe("function");
    }
  });

  test("no name or alias belongs to two commands", () => {
    const names = COMMANDS.flatMap((entry) => entry.names);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });
});
