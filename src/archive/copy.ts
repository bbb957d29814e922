/**
 * Copying paths between trees (the `copy` command) as a tar stream from one tree into
 * another: the writing side is the same confined extraction that applies layers, so a copy
 * into a layer can never write outside it, and owners move through both trees' ID maps.
 */
import { lstatSync, readdirSync, rmSync, type BigIntStats } from "node:fs";
import { PreconditionError, SystemError } from "../errors.ts";
import type { IdMaps } from "../idmap.ts";
import { syncFilesystem } from "../sys/libc.ts";
import { applyLayerTar } from "./apply.ts";
import { cleanComponents } from "./paths.ts";
import { isConfinedFailure, resolveConfined } from "./confined-path.ts";
import { TreeTarWriter } from "./export.ts";
import type { ByteSink, ByteSource } from "./types.ts";

/** One side of a copy: a tree root (a mounted layer, or "/" for the host), a path in it, and its ID maps. */
export interface CopyEndpoint {
  root: string;
  path: string;
  maps: IdMaps;
}

/** A one-slot in-memory pipe: writes wait until the reader has taken the previous chunk; abort fails both ends. */
function pipe(): { sink: ByteSink; source: ByteSource; abort(reason: unknown): void } {
  const chunks: Uint8Array[] = [];
  let closed = false;
  let aborted: { reason: unknown } | undefined;
  let wakeReader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  const sink: ByteSink = {
    async write(chunk) {
      if (aborted) throw aborted.reason;
      chunks.push(chunk.slice());
      wakeReader?.();
      if (chunks.length > 4) await new Promise<void>((resolve) => (wakeWriter = resolve));
    },
    async close() {
      closed = true;
      wakeReader?.();
    },
  };
  const source: ByteSource = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (aborted) throw aborted.reason;
        const chunk = chunks.shift();
        if (chunk) {
          wakeWriter?.();
          wakeWriter = undefined;
          yield chunk;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => (wakeReader = resolve));
        wakeReader = undefined;
      }
    },
  };
  const abort = (reason: unknown) => {
    aborted ??= { reason };
    wakeReader?.();
    wakeWriter?.();
  };
  return { sink, source, abort };
}

/** Resolves a path inside root as a chroot would: symlinks met on the way, the last one included, are resolved inside root. */
export function resolveInside(root: string, path: string): string {
  const result = resolveConfined(root, cleanComponents(path), { keepUnresolvedRest: true });
  if (isConfinedFailure(result)) throw new SystemError(`too many levels of symbolic links in ${path}`, "ELOOP");
  return result;
}

/** Writes the tree (or file) at from as tar entries named under `as`, optionally re-owned. */
async function writeTree(from: CopyEndpoint, fromRel: string, as: string, sink: ByteSink, chown?: { uid: number; gid: number }): Promise<void> {
  const writer = new TreeTarWriter(sink, from.root, from.maps);
  const emit = (rel: string, name: string, stats: BigIntStats) =>
    writer.addFile(rel, stats, (entry) => {
      entry.path = entry.type === "dir" ? `${name}/` : name;
      if (chown) {
        entry.uid = chown.uid;
        entry.gid = chown.gid;
      }
    });
  const walk = async (rel: string, name: string) => {
    for (const child of readdirSync(underRoot(from.root, rel)).sort()) {
      const childRel = rel ? `${rel}/${child}` : child;
      const childName = name ? `${name}/${child}` : child;
      const stats = lstatSync(underRoot(from.root, childRel), { bigint: true });
      await emit(childRel, childName, stats);
      if (stats.isDirectory()) await walk(childRel, childName);
    }
  };
  const stats = lstatSync(underRoot(from.root, fromRel), { bigint: true });
  if (stats.isDirectory()) {
    if (as !== "") await emit(fromRel, as, stats);
    await walk(fromRel, as);
  } else {
    await emit(fromRel, as, stats);
  }
  await writer.finish();
  await sink.close();
}

/** A path below a tree root as the host sees it ("/" and "etc" make "/etc", not "//etc": it is shown in messages). */
function underRoot(root: string, rel: string): string {
  return root.endsWith("/") ? `${root}${rel}` : `${root}/${rel}`;
}

/**
 * Copies `from` to `to` with the semantics of containers-storage's copy: a directory's contents go into the
 * destination directory (made if missing, merged otherwise); a file becomes the destination file.
 */
export async function copyPath(from: CopyEndpoint, to: CopyEndpoint, chown?: { uid: number; gid: number }): Promise<void> {
  const fromRel = resolveInside(from.root, from.path);
  const fromHost = underRoot(from.root, fromRel);
  let fromStats;
  try {
    fromStats = lstatSync(fromHost);
  } catch {
    throw new SystemError(`stat ${fromHost}: no such file or directory`, "ENOENT");
  }
  const parts = cleanComponents(to.path);
  const name = parts.pop() ?? "";
  const parent = resolveInside(to.root, parts.join("/"));
  const toRel = parent === "" ? name : name === "" ? parent : `${parent}/${name}`;
  const toHost = underRoot(to.root, toRel);
  let existing;
  try {
    existing = lstatSync(toHost);
  } catch {
    existing = undefined;
  }
  if (!fromStats.isDirectory() && existing?.isDirectory()) {
    throw new PreconditionError(`cannot overwrite directory "${toHost}" with non-directory "${fromHost}"`);
  }
  const created = pathsToCreate(fromHost, toHost);
  const { sink, source, abort } = pipe();
  // Either end failing stops the other, so that nothing writes any more when the copy is undone.
  const stopOnFailure = (work: Promise<unknown>) => work.catch((e) => (abort(e), Promise.reject(e)));
  const outcomes = await Promise.allSettled([
    stopOnFailure(writeTree(from, fromRel, toRel, sink, chown)),
    stopOnFailure(applyLayerTar(to.root, source, { whiteouts: "remove", idMaps: to.maps })),
  ]);
  const failed = outcomes.find((o) => o.status === "rejected");
  if (failed === undefined) return syncFilesystem(to.root);
  // What the copy made goes again (a full disk then has its space back); what it replaced cannot come back.
  for (const path of created) rmSync(path, { recursive: true, force: true });
  throw failed.reason;
}

/**
 * The destination paths a copy of fromHost to toHost will create: the top of each subtree that
 * does not exist yet. Only real directories are descended into, so every path found lies
 * inside the destination tree.
 */
function pathsToCreate(fromHost: string, toHost: string): string[] {
  const created: string[] = [];
  const visit = (from: string, to: string) => {
    let existing;
    try {
      existing = lstatSync(to);
    } catch {
      created.push(to);
      return;
    }
    if (!existing.isDirectory() || !lstatSync(from).isDirectory()) return;
    for (const child of readdirSync(from)) visit(`${from}/${child}`, `${to}/${child}`);
  };
  visit(fromHost, toHost);
  return created;
}
