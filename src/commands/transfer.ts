/** pull SOURCE and push IMAGE DESTINATION: whole images through the transports (docs/cli.md). */
import { InvalidArgumentError } from "../errors.ts";
import type { CommandDef } from "./command.ts";
import { JSON_OPTION, NO_PROGRESS_OPTION, listOption, printJson, progressDisplay, stringOption, wantsJson } from "./common.ts";
import { REGISTRY_OPTIONS, registryOptions } from "./registry.ts";
import { imageJson } from "./render.ts";

export const pull: CommandDef = {
  names: ["pull"],
  namesIoFailures: true,
  synopsis: "[options [...]] docker://[HOST[:PORT]/]NAME[:TAG|@DIGEST] | oci:PATH[:REF] | oci-archive:FILE[:REF] | docker-archive:FILE[:NAME:TAG|:@INDEX] | dir:PATH",
  description: "Store an image from a registry, an OCI layout, an OCI archive, a docker-archive tarball or a dir: directory",
  minArgs: 1,
  maxArgs: 1,
  options: [
    { names: ["name", "n"], type: "list", description: "Name to give the image (repeatable; default: the source's, completed as podman does)" },
    { names: ["platform"], type: "string", description: "OS/ARCH[/VARIANT] to pick from an index (default: this host's)" },
    { names: ["all"], type: "bool", description: "Store every image of an index (the names go to the one --platform picks)" },
    { names: ["max-parallel"], type: "string", description: "Layers downloaded at once from a registry", defaultValue: "3" },
    ...REGISTRY_OPTIONS,
    NO_PROGRESS_OPTION,
    JSON_OPTION,
  ],
  async run(ctx) {
    const { pullImages } = await import("../transports/pull.ts");
    const { hostPlatform, parsePlatform } = await import("../transports/manifest.ts");
    const platformText = stringOption(ctx, "platform");
    const names = listOption(ctx, "name");
    const maxParallel = Number(stringOption(ctx, "max-parallel") ?? "3");
    if (!Number.isInteger(maxParallel) || maxParallel < 1 || maxParallel > 64) throw new InvalidArgumentError(`invalid --max-parallel "${stringOption(ctx, "max-parallel")}": expected a whole number from 1 to 64`);
    const all = ctx.options.all === true;
    const images = await pullImages(ctx.store, ctx.args[0]!, {
      names: names.length > 0 ? names : undefined,
      platform: platformText === undefined ? hostPlatform() : parsePlatform(platformText),
      all,
      progress: progressDisplay(ctx),
      maxParallel,
      transport: { registry: { ...registryOptions(ctx), blobHints: ctx.store } },
    });
    if (wantsJson(ctx)) printJson(ctx, all ? images.map(imageJson) : imageJson(images[0]!));
    else ctx.stdout(images.map((image) => `${image.id}\n`).join(""));
    return 0;
  },
};

export const push: CommandDef = {
  names: ["push"],
  synopsis: "[options [...]] imageNameOrID docker://HOST[:PORT]/NAME[:TAG] | oci:PATH[:REF] | oci-archive:FILE[:REF] | docker-archive:FILE[:NAME:TAG] | dir:PATH",
  description: "Write an image to a registry, an OCI layout, an OCI archive, a docker-archive tarball or a dir: directory",
  minArgs: 2,
  maxArgs: 2,
  options: [
    { names: ["compression-format"], type: "string", description: "Layer compression: gzip, zstd or none (default: gzip; docker-archive: none)", valueHint: ["gzip", "zstd", "none"] },
    { names: ["format", "f"], type: "string", description: "Manifest type: oci or v2s2 (default: oci; docker-archive: v2s2)", valueHint: ["oci", "v2s2"] },
    ...REGISTRY_OPTIONS,
    { ...NO_PROGRESS_OPTION, description: "Print nothing: no progress, no digest" },
  ],
  async run(ctx) {
    const compression = stringOption(ctx, "compression-format");
    if (compression !== undefined && compression !== "gzip" && compression !== "zstd" && compression !== "none") throw new InvalidArgumentError(`invalid --compression-format "${compression}": expected gzip, zstd or none`);
    const format = stringOption(ctx, "format");
    if (format !== undefined && format !== "oci" && format !== "v2s2") throw new InvalidArgumentError(`invalid --format "${format}": expected oci or v2s2`);
    const { pushImage } = await import("../transports/push.ts");
    const digest = await pushImage(ctx.store, ctx.args[0]!, ctx.args[1]!, {
      compression,
      format,
      progress: progressDisplay(ctx),
      transport: { registry: { ...registryOptions(ctx), blobHints: ctx.store } },
    });
    if (ctx.options.quiet !== true) ctx.stdout(`${digest}\n`);
    return 0;
  },
};
