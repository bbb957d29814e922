/**
 * `check`: finds every inconsistency between the database, the driver's layer directories and
 * the run root's mount state, and repairs what can be repaired without losing complete data.
 * Work that a live process is doing (a layer it is creating or deleting) is never a problem.
 * Every repair re-checks its problem under the store's locks and follows the store's own
 * protocols, so running it next to other oci-storage processes, or killing it, is safe.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { unmountPath } from "../drivers/mounter.ts";
import { isTokenAlive, processToken } from "../sys/liveness.ts";
import { containersHome } from "./containers.ts";
import { deleteLayer } from "./layer-lifecycle.ts";
import { canonical, isLayerMount, isUnder, kernelMounts } from "./mount-table.ts";
import type { StoreParts } from "./parts.ts";
import { newLayerRecord } from "./records.ts";
import { recover } from "./recovery.ts";

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
export function checkStore(parts: StoreParts): Finding[] {
  // Directories are listed before rows are read: a layer is always recorded before its
  // directory is made and its directory removed before its row, so no live work looks orphaned.
  const layerDirs = parts.driver.listLayerIds();
  const containerDirs = containerDirectories(parts);
  return [...checkLayers(parts, layerDirs), ...checkImages(parts), ...checkContainers(parts, containerDirs), ...checkMounts(parts)];
}

/** Repairs what can be repaired and reports every problem found, each marked repaired or not. */
export async function repairStore(parts: StoreParts): Promise<RepairOutcome[]> {
  const found = new Map<string, Problem>();
  for (let round = 0; round < MAX_REPAIR_ROUNDS; round++) {
    const findings = checkStore(parts);
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
  const remaining = new Set(checkStore(parts).map(keyOf));
  return [...found.values()].map((p) => ({ ...p, repaired: !remaining.has(keyOf(p)) }));
}

function keyOf(p: Problem): string {
  return `${p.kind}\u0000${p.id}\u0000${p.problem}`;
}

// ---- layers ----------------------------------------------------------------------------------

function checkLayers(parts: StoreParts, dirs: string[]): Finding[] {
  const catalog = parts.catalog;
  const rows = catalog.layerRows();
  const findings: Finding[] = [];
  const known = new Set(parts.roots.listEverywhere((c) => c.listLayers()).map((l) => l.id));
  const rowIds = new Set(rows.map((r) => r.id));
  for (const row of rows) {
    if (row.state !== "complete") {
      if (inProgress(row.owner)) continue;
      const doing = row.state === "creating" ? "created" : "deleted";
      findings.push({ kind: "layer", id: row.id, problem: `left half-${doing} by a process that died (incomplete)`, repairable: true, repair: async () => void (await recover(parts)) });
      continue;
    }
    if (row.parent !== "" && !known.has(row.parent) && !busyLayer(parts, row.parent)) {
      findings.push({ kind: "layer", id: row.id, problem: `parent layer ${row.parent} is missing`, repairable: false });
    }
    if (!parts.driver.exists(row.id) && stillComplete(parts, row.id)) {
      const user = layerUser(parts, row.id);
      findings.push({
        kind: "layer",
        id: row.id,
        problem: user ? `content directory is missing (still used by ${user})` : "content directory is missing",
        repairable: user === undefined,
        repair: () => deleteLayer(parts, row.id),
      });
    }
  }
  for (const row of rows) {
    if (row.state !== "complete" || !parts.driver.exists(row.id)) continue;
    for (const problem of parts.driver.layoutProblems(row.id)) {
      findings.push({ kind: "layer", id: row.id, problem, repairable: true, repair: async () => parts.driver.repairLayout(row.id) });
    }
  }
  for (const id of dirs) {
    if (rowIds.has(id) || !parts.driver.exists(id) || catalog.layerRowExists(id)) continue;
    findings.push({ kind: "layer", id, problem: "directory has no layer record (orphan)", repairable: true, repair: () => removeOrphanLayer(parts, id) });
  }
  return findings;
}

function stillComplete(parts: StoreParts, id: string): boolean {
  return parts.catalog.getLayer(id) !== undefined;
}

/** What keeps a layer from being removed: a child layer, an image or a container. */
function layerUser(parts: StoreParts, id: string): string | undefined {
  const catalog = parts.catalog;
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
async function removeOrphanLayer(parts: StoreParts, id: string): Promise<void> {
  const catalog = parts.catalog;
  const token = parts.token;
  const claimed = parts.freeingTx(() => {
    if (catalog.layerRowExists(id)) return false;
    catalog.insertLayer(newLayerRecord(id), token);
    catalog.setLayerState(id, "deleting", token);
    return true;
  });
  if (!claimed) return;
  await parts.driver.remove(id);
  parts.freeingTx(() => catalog.deleteObject("layer", id));
}

// ---- images ----------------------------------------------------------------------------------

function checkImages(parts: StoreParts): Finding[] {
  const catalog = parts.catalog;
  const known = new Set(parts.roots.listEverywhere((c) => c.listLayers()).map((l) => l.id));
  const findings: Finding[] = [];
  for (const image of catalog.listImages()) {
    if (image.topLayer !== "" && !known.has(image.topLayer) && !busyLayer(parts, image.topLayer)) {
      findings.push({ kind: "image", id: image.id, problem: `top layer ${image.topLayer} is missing`, repairable: false });
    }
    for (const mapped of image.mappedLayers) {
      if (known.has(mapped) || busyLayer(parts, mapped)) continue;
      findings.push({
        kind: "image",
        id: image.id,
        problem: `mapped layer ${mapped} is missing`,
        repairable: true,
        repair: async () => dropMappedLayer(parts, image.id, mapped),
      });
    }
  }
  return findings;
}

/** True when a live process is creating or deleting the layer right now. */
function busyLayer(parts: StoreParts, id: string): boolean {
  const row = parts.catalog.layerRows().find((r) => r.id === id);
  return row !== undefined && row.state !== "complete" && inProgress(row.owner);
}

/** True when another live process owns the work; what this process claimed and could not finish (a failed recovery) is still a problem. */
function inProgress(owner: string): boolean {
  return owner !== processToken() && isTokenAlive(owner);
}

function dropMappedLayer(parts: StoreParts, imageId: string, layerId: string): void {
  const catalog = parts.catalog;
  parts.freeingTx(() => {
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
function containerDirectories(parts: StoreParts): ContainerDirectory[] {
  const result: ContainerDirectory[] = [];
  for (const base of [parts.options.graphRoot, parts.options.runRoot]) {
    const home = containersHome(parts, base);
    if (!existsSync(home)) continue;
    for (const id of readdirSync(home)) result.push({ id, path: join(home, id) });
  }
  return result;
}

function checkContainers(parts: StoreParts, dirs: ContainerDirectory[]): Finding[] {
  const catalog = parts.catalog;
  const images = new Set(parts.roots.listEverywhere((c) => c.listImages()).map((i) => i.id));
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

function checkMounts(parts: StoreParts): Finding[] {
  const rowIds = new Set(parts.catalog.layerRows().map((r) => r.id));
  const roots = [canonical(parts.options.graphRoot), canonical(parts.options.runRoot)];
  const mountPointOwners = new Map<string, string>();
  for (const id of [...rowIds, ...parts.driver.listLayerIds()]) mountPointOwners.set(canonical(parts.driver.mountPoint(id)), id);
  return parts.mounter.whileLocked((rows) => {
    const findings: Finding[] = [];
    const kernel = kernelMounts();
    const kernelPoints = new Set(kernel.map((m) => m.path));
    const recorded = new Set<string>();
    for (const row of rows) {
      const dropRow = async () => void parts.mounter.unmount(row.layer, true);
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
        repair: async () => unmountUnknown(parts, mount.path),
      });
    }
    return findings;
  });
}

/** Unmounts a mount no row knows, re-checked under the run root's lock. */
function unmountUnknown(parts: StoreParts, path: string): void {
  parts.mounter.whileLocked((rows) => {
    if (rows.some((r) => r.kernel && canonical(r.path) === path)) return;
    if (kernelMounts().some((m) => m.path === path)) unmountPath(path);
  });
}
