/**
 * `check`: finds every inconsistency between the database, the driver's layer directories and
 * the run root's mount state, and repairs what can be repaired without losing complete data.
 * Work that a live process is doing (a layer it is creating or deleting) is never a problem.
 * Every repair re-checks its problem under the store's locks and follows the store's own
 * protocols, so running it next to other oci-storage processes, or killing it, is safe.
 */
import { existsSync, readFileSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { unmountPath } from "../drivers/mounter.ts";
import { immediate } from "./database.ts";
import { isTokenAlive, processToken } from "../sys/liveness.ts";
import { newLayerRecord } from "./records.ts";
import type { Store } from "./store.ts";

export type ProblemKind = "layer" | "image" | "container" | "mount";

/** One inconsistency, as `check` prints it. */
export interface Problem {
  kind: ProblemKind;
  /** The object's ID, or the path of a mount no record knows. */
  id: string;
  problem: string;
  repairable: boolean;
}

/** A problem found by checkStore, with the action that repairs it. */
export interface Finding extends Problem {
  repair?: () => Promise<void>;
}

/** A problem after `check --repair`, saying whether it is gone. */
export interface RepairOutcome extends Problem {
  repaired: boolean;
}

/** How many check-and-repair rounds may run: a repair can make another problem repairable (a child removed frees its parent). */
const MAX_REPAIR_ROUNDS = 5;

/** Every inconsistency in the store right now. */
export function checkStore(store: Store): Finding[] {
  // Directories are listed before rows are read: a layer is always recorded before its
  // directory is made and its directory removed before its row, so no live work looks orphaned.
  const layerDirs = store.driver.listLayerIds();
  const containerDirs = containerDirectories(store);
  return [...checkLayers(store, layerDirs), ...checkImages(store), ...checkContainers(store, containerDirs), ...checkMounts(store)];
}

/** Repairs what can be repaired and reports every problem found, each marked repaired or not. */
export async function repairStore(store: Store): Promise<RepairOutcome[]> {
  const found = new Map<string, Problem>();
  for (let round = 0; round < MAX_REPAIR_ROUNDS; round++) {
    const findings = checkStore(store);
    for (const f of findings) if (!found.has(keyOf(f))) found.set(keyOf(f), { kind: f.kind, id: f.id, problem: f.problem, repairable: f.repairable });
    const repairable = findings.filter((f) => f.repairable);
    if (repairable.length === 0) break;
    for (const finding of repairable) {
      try {
        await finding.repair?.();
      } catch {
        // What could not be repaired is still found by the final check and reported as remaining.
      }
    }
  }
  const remaining = new Set(checkStore(store).map(keyOf));
  return [...found.values()].map((p) => ({ ...p, repaired: !remaining.has(keyOf(p)) }));
}

function keyOf(p: Problem): string {
  return `${p.kind}\u0000${p.id}\u0000${p.problem}`;
}

// ---- layers ----------------------------------------------------------------------------------

function checkLayers(store: Store, dirs: string[]): Finding[] {
  const catalog = store.catalogForCheck;
  const rows = catalog.layerRows();
  const findings: Finding[] = [];
  const known = new Set(store.layers().map((l) => l.id));
  const rowIds = new Set(rows.map((r) => r.id));
  for (const row of rows) {
    if (row.state !== "complete") {
      if (inProgress(row.owner)) continue;
      const doing = row.state === "creating" ? "created" : "deleted";
      findings.push({ kind: "layer", id: row.id, problem: `left half-${doing} by a process that died (incomplete)`, repairable: true, repair: () => store.recover() });
      continue;
    }
    if (row.parent !== "" && !known.has(row.parent) && !busyLayer(store, row.parent)) {
      findings.push({ kind: "layer", id: row.id, problem: `parent layer ${row.parent} is missing`, repairable: false });
    }
    if (!store.driver.exists(row.id) && stillComplete(store, row.id)) {
      const user = layerUser(store, row.id);
      findings.push({
        kind: "layer",
        id: row.id,
        problem: user ? `content directory is missing (still used by ${user})` : "content directory is missing",
        repairable: user === undefined,
        repair: () => store.deleteLayer(row.id),
      });
    }
  }
  for (const id of dirs) {
    if (rowIds.has(id) || !store.driver.exists(id) || catalog.layerRowExists(id)) continue;
    findings.push({ kind: "layer", id, problem: "directory has no layer record (orphan)", repairable: true, repair: () => removeOrphanLayer(store, id) });
  }
  return findings;
}

function stillComplete(store: Store, id: string): boolean {
  return store.catalogForCheck.getLayer(id) !== undefined;
}

/** What keeps a layer from being removed: a child layer, an image or a container. */
function layerUser(store: Store, id: string): string | undefined {
  const catalog = store.catalogForCheck;
  const child = catalog.layerRows().find((r) => r.parent === id);
  if (child) return `layer ${child.id}`;
  const image = catalog.imagesUsingLayer(id)[0];
  if (image) return `image ${image}`;
  const container = catalog.containerOfLayer(id);
  if (container) return `container ${container}`;
  return undefined;
}

/**
 * Removes a layer directory that no row knows. It is first claimed with a 'deleting' row owned
 * by this process, so that nobody creates a layer with that ID meanwhile and a crash here is
 * finished by the next recovery.
 */
async function removeOrphanLayer(store: Store, id: string): Promise<void> {
  const catalog = store.catalogForCheck;
  const token = processToken();
  const claimed = immediate(catalog.db, () => {
    if (catalog.layerRowExists(id)) return false;
    catalog.insertLayer(newLayerRecord(id), token);
    catalog.setLayerState(id, "deleting", token);
    return true;
  });
  if (!claimed) return;
  await store.driver.remove(id);
  immediate(catalog.db, () => catalog.deleteObject("layer", id));
}

// ---- images ----------------------------------------------------------------------------------

function checkImages(store: Store): Finding[] {
  const catalog = store.catalogForCheck;
  const known = new Set(store.layers().map((l) => l.id));
  const findings: Finding[] = [];
  for (const image of catalog.listImages()) {
    if (image.topLayer !== "" && !known.has(image.topLayer) && !busyLayer(store, image.topLayer)) {
      findings.push({ kind: "image", id: image.id, problem: `top layer ${image.topLayer} is missing`, repairable: false });
    }
    for (const mapped of image.mappedLayers) {
      if (known.has(mapped) || busyLayer(store, mapped)) continue;
      findings.push({
        kind: "image",
        id: image.id,
        problem: `mapped layer ${mapped} is missing`,
        repairable: true,
        repair: async () => dropMappedLayer(store, image.id, mapped),
      });
    }
  }
  return findings;
}

/** True when a live process is creating or deleting the layer right now. */
function busyLayer(store: Store, id: string): boolean {
  const row = store.catalogForCheck.layerRows().find((r) => r.id === id);
  return row !== undefined && row.state !== "complete" && inProgress(row.owner);
}

/** True when another live process owns the work; what this process claimed and could not finish (a failed recovery) is still a problem. */
function inProgress(owner: string): boolean {
  return owner !== processToken() && isTokenAlive(owner);
}

function dropMappedLayer(store: Store, imageId: string, layerId: string): void {
  const catalog = store.catalogForCheck;
  immediate(catalog.db, () => {
    const image = catalog.getImage(imageId);
    if (!image || catalog.getLayer(layerId)) return;
    catalog.setMappedLayers(imageId, image.mappedLayers.filter((l) => l !== layerId));
  });
}

// ---- containers ------------------------------------------------------------------------------

interface ContainerDirectory {
  id: string;
  path: string;
}

/** The per-container directories under the graph root and the run root. */
function containerDirectories(store: Store): ContainerDirectory[] {
  const result: ContainerDirectory[] = [];
  for (const base of [store.graphRoot, store.runRoot]) {
    const home = join(base, `${store.driverName}-containers`);
    if (!existsSync(home)) continue;
    for (const id of readdirSync(home)) result.push({ id, path: join(home, id) });
  }
  return result;
}

function checkContainers(store: Store, dirs: ContainerDirectory[]): Finding[] {
  const catalog = store.catalogForCheck;
  const images = new Set(store.images().map((i) => i.id));
  const rows = new Map(catalog.layerRows().map((r) => [r.id, r]));
  const findings: Finding[] = [];
  for (const container of catalog.listContainers()) {
    if (container.image !== "" && !images.has(container.image)) {
      findings.push({ kind: "container", id: container.id, problem: `image ${container.image} is missing`, repairable: false });
    }
    // A layer being created or deleted is reported (or being worked on) as a layer.
    if (!rows.has(container.layer)) {
      findings.push({ kind: "container", id: container.id, problem: `layer ${container.layer} is missing`, repairable: false });
    }
  }
  for (const dir of dirs) {
    if (catalog.containerExists(dir.id) || !existsSync(dir.path)) continue;
    findings.push({
      kind: "container",
      id: dir.id,
      problem: `directory ${dir.path} has no container record (orphan)`,
      repairable: true,
      repair: async () => {
        if (!catalog.containerExists(dir.id)) rmSync(dir.path, { recursive: true, force: true });
      },
    });
  }
  return findings;
}

// ---- mounts ----------------------------------------------------------------------------------

interface KernelMount {
  path: string;
  fsType: string;
  /** The path inside the mounted filesystem that appears at the mount point ("/" unless a bind mount). */
  root: string;
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The kernel's mount table for this process's mount namespace. */
function kernelMounts(): KernelMount[] {
  const mounts: KernelMount[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (separator < 0 || fields.length < separator + 2) continue;
    mounts.push({ root: unescapeMountField(fields[3]!), path: unescapeMountField(fields[4]!), fsType: fields[separator + 1]! });
  }
  return mounts;
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function isUnder(path: string, dir: string): boolean {
  return path.startsWith(`${dir}/`);
}

/** Layer mounts the driver makes: overlayfs (or a FUSE overlay) mounted fresh, not bind mounts of a directory. */
function isLayerMount(mount: KernelMount): boolean {
  return (mount.fsType === "overlay" || mount.fsType.startsWith("fuse.")) && mount.root === "/";
}

function checkMounts(store: Store): Finding[] {
  const rowIds = new Set(store.catalogForCheck.layerRows().map((r) => r.id));
  const roots = [canonical(store.graphRoot), canonical(store.runRoot)];
  const mountPointOwners = new Map<string, string>();
  for (const id of [...rowIds, ...store.driver.listLayerIds()]) mountPointOwners.set(canonical(store.driver.mountPoint(id)), id);
  return store.mounts.whileLocked((rows) => {
    const findings: Finding[] = [];
    const kernel = kernelMounts();
    const kernelPoints = new Set(kernel.map((m) => m.path));
    const recorded = new Set<string>();
    for (const row of rows) {
      const dropRow = async () => void store.mounts.unmount(row.layer, true);
      if (!rowIds.has(row.layer)) {
        findings.push({ kind: "mount", id: row.layer, problem: `recorded as mounted at ${row.path}, but the layer does not exist`, repairable: true, repair: dropRow });
      } else if (row.kernel && !kernelPoints.has(canonical(row.path))) {
        findings.push({ kind: "mount", id: row.layer, problem: `recorded as mounted at ${row.path}, but the kernel has no such mount (stale)`, repairable: true, repair: dropRow });
      }
      if (row.kernel) recorded.add(canonical(row.path));
    }
    for (const mount of kernel) {
      if (!isLayerMount(mount) || recorded.has(mount.path) || !roots.some((root) => isUnder(mount.path, root))) continue;
      const owner = mountPointOwners.get(mount.path);
      findings.push({
        kind: "mount",
        id: owner ?? mount.path,
        problem: `${mount.fsType} mount at ${mount.path} is not recorded in the run root (unknown)`,
        repairable: true,
        repair: async () => unmountUnknown(store, mount.path),
      });
    }
    return findings;
  });
}

/** Unmounts a mount no row knows, re-checked under the run root's lock. */
function unmountUnknown(store: Store, path: string): void {
  store.mounts.whileLocked((rows) => {
    if (rows.some((r) => r.kernel && canonical(r.path) === path)) return;
    if (kernelMounts().some((m) => m.path === path)) unmountPath(path);
  });
}

/**
 * Part of recovery at every open: releases what a process that died while mounting left behind.
 * Unmounts kernel mounts at layers' mount points that no row counts (the process died after
 * mount(8), before counting it) and drops rows whose kernel mount is gone. Costs one read of
 * the mount table when there is nothing to do.
 */
export function releaseUncountedMounts(store: Store): void {
  const kernel = kernelMounts();
  const layerMounts = kernel.filter(isLayerMount);
  // vfs "mounts" are directories the kernel never lists: none can go stale, and mounts.db stays closed.
  const hasStale = store.driverName !== "vfs" && store.mounts.staleMounts(new Set(kernel.map((m) => m.path))).length > 0;
  if (layerMounts.length === 0 && !hasStale) return;
  const graph = canonical(store.graphRoot);
  const candidates = layerMounts.filter((m) => isUnder(m.path, graph));
  if (candidates.length === 0 && !hasStale) return;
  const mountPoints = new Set(store.catalogForCheck.layerRows().map((r) => canonical(store.driver.mountPoint(r.id))));
  const ours = candidates.filter((m) => mountPoints.has(m.path));
  if (ours.length === 0 && !hasStale) return;
  store.mounts.whileLocked((rows) => {
    // Re-read under the lock: a row may have been counted again meanwhile.
    for (const row of store.mounts.staleMounts()) store.mounts.unmount(row.layer, true);
    const counted = new Set(rows.filter((r) => r.kernel && r.count > 0).map((r) => canonical(r.path)));
    const present = new Set(kernelMounts().map((m) => m.path));
    for (const mount of ours) if (!counted.has(mount.path) && present.has(mount.path)) unmountPath(mount.path);
  });
}
