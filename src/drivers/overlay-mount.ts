/**
 * The overlayfs mount of a layer, described as data (a KernelMountSpec the Mounter runs):
 * which lower dirs, upper and work dir, which options, and what must be prepared on disk first.
 * Describing a mount reads the layer's link files and writes nothing.
 */
import { join } from "node:path";
import { NotSupportedError } from "../errors.ts";
import type { KernelMountSpec, MountRequest } from "./driver.ts";
import type { LinkRepair, OverlayLayout } from "./overlay-layout.ts";
import type { OverlayOptions } from "./overlay-options.ts";

/** The kernel's overlayfs stacks at most this many lower dirs (OVL_MAX_STACK; measured on 6.18). */
export const MAX_LOWER_LAYERS = 500;
/** mount(2) copies one page of option data, including its terminating NUL. */
const MOUNT_OPTIONS_MAX_BYTES = 4095;
const READ_ONLY_MOUNT_OPTIONS = ["ro", "nosuid", "noexec"];

/**
 * The overlayfs mount of a layer at target. Read-write: lowerdir = the parent chain (or the
 * layer's empty/ dir), upperdir = diff, workdir = work, both named through the layer's own
 * link so that the ID's length and characters never reach the option string. Read-only:
 * lower dirs only (the layer's own diff first), at least two as the kernel requires. What must
 * exist or go before mounting (a base layer's empty/, the marker a volatile mount leaves,
 * missing l/ links) is in the spec's preparation, which the Mounter runs.
 */
export function describeOverlayMount(layout: OverlayLayout, options: OverlayOptions, id: string, target: string, request: MountRequest): KernelMountSpec {
  const { own, lowers } = layout.chain(id);
  const prepare = { directories: [] as string[], remove: [] as string[], links: [] as LinkRepair[] };
  const [self, ...below] = layout.resolveLinks(id, [own, ...lowers], prepare.links);
  const emptyName = `${self!.mountName}/../empty`;
  if (below.length === 0) prepare.directories.push(join(layout.layerDir(id), "empty"));
  const mountOptions: string[] = [];
  if (request.readOnly) {
    const layers = [self!.mountName, ...below.map((b) => b.mountName)];
    if (layers.length === 1) layers.push(emptyName);
    checkDepth(id, layers.length);
    mountOptions.push(`lowerdir=${layers.join(":")}`, ...READ_ONLY_MOUNT_OPTIONS);
  } else {
    const layers = below.length > 0 ? below.map((b) => b.mountName) : [emptyName];
    checkDepth(id, layers.length);
    mountOptions.push(`lowerdir=${layers.join(":")}`, `upperdir=${self!.mountName}`, `workdir=${self!.mountName}/../work`);
    if (request.volatile) mountOptions.push("volatile");
    // After a volatile mount the kernel refuses the work dir until this marker is gone.
    prepare.remove.push(join(layout.layerDir(id), "work", "work", "incompat", "volatile"));
  }
  mountOptions.push(...options.mountOptions, ...request.options);
  const joined = mountOptions.join(",");
  if (options.mountProgram === undefined && Buffer.byteLength(joined) > MOUNT_OPTIONS_MAX_BYTES) {
    throw new NotSupportedError(`overlay: the mount options of layer ${id} take ${Buffer.byteLength(joined)} bytes, more than the kernel's limit of ${MOUNT_OPTIONS_MAX_BYTES}`);
  }
  return { kind: "overlay", target, options: joined, cwd: layout.linkDir, program: options.mountProgram, prepare };
}

function checkDepth(id: string, lowerCount: number): void {
  if (lowerCount > MAX_LOWER_LAYERS) {
    throw new NotSupportedError(`max depth exceeded: layer ${id} needs ${lowerCount} lower layers, overlayfs stacks at most ${MAX_LOWER_LAYERS}`);
  }
}
