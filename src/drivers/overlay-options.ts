/** The overlay driver's options (`overlay.KEY=VALUE`, docs/cli-contract.md §6.3): parsed and checked as containers-storage checks them. */
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { InitError, NotSupportedError } from "../errors.ts";
import { booleanOption, imageStoresOption, splitDriverOption } from "./options.ts";

export interface OverlayOptions {
  /** overlay.mountopt: options added to every mount. */
  mountOptions: string[];
  /** overlay.mount_program: a FUSE program (e.g. fuse-overlayfs) run instead of mount(8). */
  mountProgram: string | undefined;
  /** Graph roots of read-only stores whose layers may be lower layers. */
  imageStores: string[];
  /** overlay.ignore_chown_errors: owners the kernel refuses are left as created (rootless stores). */
  ignoreChownErrors: boolean;
}

/** Options accepted with the overlay., overlay2. or . prefix (docs/cli-contract.md §6.3); the rest are checked and not needed here. */
const KNOWN_OPTIONS = new Set([
  "mountopt",
  "size",
  "inodes",
  "imagestore",
  "additionalimagestore",
  "additionallayerstore",
  "mount_program",
  "skip_mount_home",
  "ignore_chown_errors",
  "force_mask",
  "override_kernel_check",
]);

/** Parses and checks overlay driver options (KEY=VALUE); unknown keys fail like containers-storage. */
export function parseOverlayOptions(options: string[]): OverlayOptions {
  const result: OverlayOptions = { mountOptions: [], mountProgram: undefined, imageStores: [], ignoreChownErrors: false };
  for (const option of options) {
    const { key, value } = splitDriverOption(option);
    const match = /^(overlay2?\.|\.)(.*)$/.exec(key);
    const bare = match?.[2] ?? "";
    if (!KNOWN_OPTIONS.has(bare)) throw new InitError(`overlay: Unknown option ${key}`);
    const stores = imageStoresOption(bare, value);
    if (stores) {
      for (const store of stores) {
        if (!isAbsolute(store)) throw new InitError(`overlay: image path ${JSON.stringify(store)} is not absolute.  Can not be relative`);
        result.imageStores.push(store);
      }
      continue;
    }
    switch (bare) {
      case "mountopt":
        result.mountOptions.push(...value.split(",").filter(Boolean));
        break;
      case "mount_program":
        if (value !== "") {
          if (!existsSync(value)) throw new InitError(`overlay: can't stat program ${JSON.stringify(value)}: no such file or directory`);
          result.mountProgram = value;
        }
        break;
      case "size":
      case "inodes":
        if (value !== "" && value !== "0") throw new NotSupportedError(`overlay: ${key} needs project quotas, which this build does not set up`);
        break;
      case "ignore_chown_errors":
        result.ignoreChownErrors = booleanOption("overlay", key, value);
        break;
      case "skip_mount_home":
      case "override_kernel_check":
        booleanOption("overlay", key, value);
        break;
      // force_mask and additionallayerstore only matter for rootless and lazy-pull setups; accepted, unused.
    }
  }
  return result;
}
