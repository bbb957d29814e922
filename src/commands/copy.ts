/** copy [SRCLAYER:]SRC... [DSTLAYER:]DST — files into or out of layers (docs/cli-contract.md §3.7.5). */
import { InvalidArgumentError } from "../errors.ts";
import type { CommandDef } from "./command.ts";
import { JSON_OPTION, stringOption } from "./common.ts";

/** Parses --chown UID[:GID] (GID defaults to UID), numeric only, with containers-storage's message. */
export function parseChown(text: string): { uid: number; gid: number } {
  const [uidText, gidText = uidText] = text.split(":", 2) as [string, string?];
  const parse = (value: string, what: string) => {
    if (!/^[0-9]+$/.test(value) || Number(value) > 0xffffffff) {
      throw new InvalidArgumentError(`error "${value}" as a numeric ${what}: strconv.ParseUint: parsing "${value}": invalid syntax`);
    }
    return Number(value);
  };
  return { uid: parse(uidText, "UID"), gid: parse(gidText ?? uidText, "GID") };
}

/** "LAYER:PATH" names a path in a layer; anything without a colon is a host path. */
function endpoint(arg: string): { layer?: string; path: string } {
  const colon = arg.indexOf(":");
  return colon < 0 ? { path: arg } : { layer: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

export const copy: CommandDef = {
  names: ["copy"],
  namesIoFailures: true,
  synopsis: "[options [...]] [sourceLayerNameOrID:]/path [...] [destinationLayerNameOrID:]/path",
  description: "Copy files or directories into a layer, possibly from another layer",
  minArgs: 2,
  maxArgs: Infinity,
  options: [{ names: ["chown"], type: "string", description: "Set owner on new copies (UID[:GID], numeric)" }, JSON_OPTION],
  async run(ctx) {
    const chownText = stringOption(ctx, "chown");
    const chown = chownText !== undefined ? parseChown(chownText) : undefined;
    const destination = endpoint(ctx.args[ctx.args.length - 1]!);
    for (const source of ctx.args.slice(0, -1)) await ctx.store.copyPath(endpoint(source), destination, chown);
    return 0;
  },
};
