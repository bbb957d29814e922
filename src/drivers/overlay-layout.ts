/**
 * The overlay driver's on-disk layout (docs/cli-contract.md §6.3), and the short names that keep
 * lowerdir= options short:
 *
 *   <graphroot>/overlay/l/<LINKID> -> ../<id>/diff   one short link per layer
 *   <graphroot>/overlay/<id>/link                    the layer's LINKID
 *   <graphroot>/overlay/<id>/lower                   "l/<LINKID>:l/<LINKID>..." of its lower layers, nearest first
 *   <graphroot>/overlay/<id>/{diff,work,merged}, and empty/ for base layers
 *
 * Layers of read-only image stores are found under their own graph roots' overlay/ homes.
 * See docs/decisions/0004-overlay-driver.md for why link IDs are 6 characters here.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { CorruptError } from "../errors.ts";

/** Characters of a link ID: base32 (A–Z, 2–7), as containers-storage uses. */
const LINK_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/** 6 characters: 2^30 IDs, and 500 lower dirs take 3.5 KB of the 4 KB option page. */
const LINK_ID_LENGTH = 6;
/** The directory of short links, under the driver's home. */
export const LINK_DIR = "l";
const MOUNT_PROGRAM_MARKER = ".has-mount-program";
/** Names in the driver's home that are not layers. */
const RESERVED_NAMES = new Set([LINK_DIR, MOUNT_PROGRAM_MARKER]);

/** A link of l/ to recreate before mounting. */
export type LinkRepair = { path: string; target: string };
/** A link as a mount option names it (bare in l/, or absolute in a read-only store) and the diff dir it leads to. */
export type ResolvedLink = { mountName: string; dir: string };

function newLinkId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(LINK_ID_LENGTH));
  let id = "";
  for (const byte of bytes) id += LINK_ALPHABET[byte & 31];
  return id;
}

/** The errno name of a node:fs error. */
export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException)?.code;
}

/** A small text file's trimmed content, or undefined when it does not exist. */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

function lstatOrNull(path: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return null;
    throw error;
  }
}

/** Where the overlay driver's layers, links and markers are, here and in read-only image stores. */
export class OverlayLayout {
  /** <graphroot>/overlay */
  readonly home: string;
  /** <graphroot>/overlay/l */
  readonly linkDir: string;
  /** The marker recording whether the store was made with a mount program. */
  readonly mountProgramMarker: string;

  constructor(
    graphRoot: string,
    private readonly imageStores: string[],
  ) {
    this.home = join(graphRoot, "overlay");
    this.linkDir = join(this.home, LINK_DIR);
    this.mountProgramMarker = join(this.home, MOUNT_PROGRAM_MARKER);
  }

  /** True for names in the home that are not layers (l/, markers). */
  isReserved(name: string): boolean {
    return RESERVED_NAMES.has(name);
  }

  /** A layer's directory in this store (whether or not it exists). */
  ownDir(id: string): string {
    return join(this.home, id);
  }

  /** A layer's directory here, or in the first read-only store that has it. */
  layerDir(id: string): string {
    const own = this.ownDir(id);
    if (existsSync(own)) return own;
    for (const store of this.imageStores) {
      const other = join(store, "overlay", id);
      if (existsSync(other)) return other;
    }
    return own;
  }

  /** Layer IDs with a directory in this store's home. */
  listLayerIds(): string[] {
    if (!existsSync(this.home)) return [];
    return readdirSync(this.home, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !this.isReserved(entry.name))
      .map((entry) => entry.name);
  }

  /** Where a link name resolves: here (as the bare name, relative to l/) or in a read-only store (absolute). */
  private linkPath(link: string): { mountName: string; absolute: string } | undefined {
    const own = join(this.linkDir, link);
    if (lstatOrNull(own)) return { mountName: link, absolute: own };
    for (const store of this.imageStores) {
      const other = join(store, "overlay", LINK_DIR, link);
      if (lstatOrNull(other)) return { mountName: other, absolute: other };
    }
    return undefined;
  }

  /** Link names of the layer itself and of its lower layers (nearest first). */
  chain(id: string): { own: string; lowers: string[] } {
    const dir = this.layerDir(id);
    const own = readText(join(dir, "link"));
    if (own === undefined) throw new CorruptError(`overlay: layer ${id} has no link file`);
    const lower = readText(join(dir, "lower"));
    const lowers = lower ? lower.split(":").map((entry) => entry.replace(/^l\//, "")) : [];
    return { own, lowers };
  }

  /**
   * Resolves link names to what a mount option names and the diff dir behind it. A link of this
   * store that is missing but named by some layer's link file is answered as it will be once the
   * Mounter has recreated it (listed in repairs); nothing is written here.
   */
  resolveLinks(id: string, links: string[], repairs: LinkRepair[] = []): ResolvedLink[] {
    let owners: Map<string, string> | undefined;
    return links.map((link) => {
      const found = this.linkPath(link);
      if (found) return { mountName: found.mountName, dir: resolve(dirname(found.absolute), readlinkSync(found.absolute)) };
      owners ??= this.linkOwners();
      const owner = owners.get(link);
      if (owner === undefined) throw new CorruptError(`overlay: layer ${id}: lower layer link ${LINK_DIR}/${link} is missing`);
      repairs.push({ path: join(this.linkDir, link), target: `../${owner}/diff` });
      return { mountName: link, dir: join(this.home, owner, "diff") };
    });
  }

  /** Link name -> layer, from the link files of this store's layers. */
  private linkOwners(): Map<string, string> {
    const owners = new Map<string, string>();
    for (const id of this.listLayerIds()) {
      const link = readText(join(this.home, id, "link"));
      if (link !== undefined) owners.set(link, id);
    }
    return owners;
  }

  /** The diff dirs of the layer's lower layers, nearest first. */
  lowerDirs(id: string): string[] {
    return this.resolveLinks(id, this.chain(id).lowers).map(({ dir }) => dir);
  }

  /** The `lower` file content of a new layer on parent: the parent's link, then the parent's lowers. */
  lowerEntryOver(parent: string): string {
    const parentDir = this.layerDir(parent);
    const parentLink = readText(join(parentDir, "link"));
    if (parentLink === undefined) throw new CorruptError(`overlay: parent layer ${parent} has no link file`);
    const parentLower = readText(join(parentDir, "lower"));
    return parentLower ? `${LINK_DIR}/${parentLink}:${parentLower}` : `${LINK_DIR}/${parentLink}`;
  }

  /** Gives the layer a fresh link ID: the link file first, so that a crash never leaves an unowned symlink. */
  makeLink(id: string): void {
    for (;;) {
      const link = newLinkId();
      writeFileSync(join(this.home, id, "link"), link);
      try {
        symlinkSync(`../${id}/diff`, join(this.linkDir, link));
        return;
      } catch (error) {
        if (errorCode(error) !== "EEXIST") throw error;
      }
    }
  }

  /** What is wrong with the layer's short link in l/: missing, or leading elsewhere; undefined when it is right (or the layer has no link file). */
  linkProblem(id: string): string | undefined {
    const link = readText(join(this.home, id, "link"));
    if (link === undefined) return undefined;
    const expected = `../${id}/diff`;
    let target: string;
    try {
      target = readlinkSync(join(this.linkDir, link));
    } catch (error) {
      if (errorCode(error) === "ENOENT") return `overlay short link ${LINK_DIR}/${link} is missing`;
      if (errorCode(error) === "EINVAL") return `overlay short link ${LINK_DIR}/${link} is not a symlink`;
      throw error;
    }
    return target === expected ? undefined : `overlay short link ${LINK_DIR}/${link} leads to ${target}, not ${expected}`;
  }

  /** Makes the layer's short link again from its link file, replacing a wrong one, while the layer's diff dir is there. */
  repairLink(id: string): void {
    const link = readText(join(this.home, id, "link"));
    if (link === undefined || !existsSync(join(this.home, id, "diff"))) return;
    mkdirSync(this.linkDir, { recursive: true, mode: 0o700 });
    const path = join(this.linkDir, link);
    rmSync(path, { force: true });
    symlinkSync(`../${id}/diff`, path);
  }

  /** Removes the layer's short link, if it still leads to this layer. */
  removeLink(id: string): void {
    const link = readText(join(this.home, id, "link"));
    if (link === undefined) return;
    const linkFile = join(this.linkDir, link);
    try {
      if (readlinkSync(linkFile) === `../${id}/diff`) unlinkSync(linkFile);
    } catch (error) {
      if (errorCode(error) !== "ENOENT" && errorCode(error) !== "EINVAL") throw error;
    }
  }
}
