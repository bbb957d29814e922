/**
 * The one confined path resolver (DESIGN.md invariant 4): every answer names a place inside the
 * root with no symlink on the way, whatever the path and the symlinks already in the tree; one
 * symlink limit (40, Linux's MAXSYMLINKS); and the policies apply, copy and layout choose.
 * The second half runs the hostile-input corpus through extraction and then asks the resolver
 * where each of its names lands.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type DirectoryCache, MAX_SYMLINKS, isConfinedFailure, resolveConfined } from "../../src/archive/confined-path.ts";
import { cleanComponents } from "../../src/archive/paths.ts";
import { readTar } from "../../src/archive/tar-reader.ts";
import { buildCorpus } from "../robustness/hostile-corpus.ts";
import { applyFile, makeTempDir, removeDir, sentinelState } from "./apply-helpers.ts";

const scratch = makeTempDir("oci-confined");
afterAll(() => removeDir(scratch));
let counter = 0;

/** A fresh root four levels below scratch/N (so the corpus's OUTSIDE climb lands on scratch/N/outside), with a sentinel beside it. */
function freshRoot(): { root: string; outside: string } {
  const base = join(scratch, String(counter++));
  const root = join(base, "a", "b", "c", "root");
  const outside = join(base, "outside");
  mkdirSync(root, { recursive: true });
  mkdirSync(join(outside, "dir"), { recursive: true });
  writeFileSync(join(outside, "secret"), "secret\n");
  return { root, outside };
}

const resolve = (root: string, path: string, options = {}) => resolveConfined(root, cleanComponents(path), options);

/** The deepest existing ancestor of root/rel, with symlinks resolved by the kernel, is root or below it. */
function expectInside(root: string, rel: string): void {
  let probe = rel === "" ? root : `${root}/${rel}`;
  while (!existsSync(probe)) probe = dirname(probe);
  const real = realpathSync(probe);
  const realRoot = realpathSync(root);
  expect(real === realRoot || real.startsWith(`${realRoot}/`), `${rel} -> ${real}`).toBe(true);
}

describe("resolveConfined", () => {
  test("dot-dot and absolute paths stop at the root", () => {
    const { root } = freshRoot();
    mkdirSync(join(root, "a"));
    expect(resolve(root, "../../etc/passwd")).toEqual({ problem: "missing", at: "etc" });
    expect(resolve(root, "a/../../..", {})).toBe("");
    expect(resolveConfined(root, ["a", "..", "..", "a"])).toBe("a");
    expect(resolve(root, "/a")).toBe("a");
  });

  test("symlinks resolve with the root as /: absolute targets and climbing targets stay inside", () => {
    const { root } = freshRoot();
    mkdirSync(join(root, "etc"));
    symlinkSync("/etc", join(root, "abs"));
    symlinkSync("../../../../..", join(root, "up"));
    symlinkSync("/", join(root, "slash"));
    expect(resolve(root, "abs")).toBe("etc");
    expect(resolve(root, "up")).toBe("");
    expect(resolve(root, "up/etc")).toBe("etc");
    expect(resolve(root, "slash/abs")).toBe("etc");
    expect(resolve(root, "up/secret", { keepUnresolvedRest: true })).toBe("secret");
    for (const path of ["abs", "up", "up/etc", "slash/up/abs", "up/x/y"]) {
      const result = resolve(root, path, { keepUnresolvedRest: true });
      expect(typeof result).toBe("string");
      expectInside(root, result as string);
    }
  });

  test("a symlink loop fails as too many links", () => {
    const { root } = freshRoot();
    symlinkSync("l2", join(root, "l1"));
    symlinkSync("l1", join(root, "l2"));
    symlinkSync("self", join(root, "self"));
    expect(resolve(root, "l1/x")).toEqual({ problem: "too-many-links", at: "l1" });
    expect(isConfinedFailure(resolve(root, "self"))).toBe(true);
    // Even the policy that keeps unresolved rests gives up on a loop.
    expect(isConfinedFailure(resolve(root, "self", { keepUnresolvedRest: true }))).toBe(true);
  });

  test(`a chain of ${MAX_SYMLINKS} symlinks resolves, one more does not`, () => {
    expect(MAX_SYMLINKS).toBe(40);
    const { root } = freshRoot();
    mkdirSync(join(root, "end"));
    // s41 -> s40 -> ... -> s1 -> end: following s_n takes n links.
    symlinkSync("end", join(root, "s1"));
    for (let i = 2; i <= MAX_SYMLINKS + 1; i++) symlinkSync(`s${i - 1}`, join(root, `s${i}`));
    expect(resolve(root, `s${MAX_SYMLINKS}`)).toBe("end");
    expect(resolve(root, `s${MAX_SYMLINKS}/new`, { createMissing: true })).toBe("end/new");
    expect(resolve(root, `s${MAX_SYMLINKS + 1}`)).toEqual({ problem: "too-many-links", at: "s1" });
    // The limit counts per path, across components.
    expect(isConfinedFailure(resolveConfined(root, [`s${MAX_SYMLINKS}`, "..", "s1"]))).toBe(true);
  });

  test("createMissing makes the path's own directories but never a dangling symlink's target", () => {
    const { root, outside } = freshRoot();
    const before = sentinelState(outside, "");
    symlinkSync("nowhere/deeper", join(root, "dangling"));
    expect(resolve(root, "x/y/z", { createMissing: true })).toBe("x/y/z");
    expect(lstatSync(join(root, "x/y/z")).isDirectory()).toBe(true);
    expect(resolve(root, "dangling/f", { createMissing: true })).toEqual({ problem: "dangling", at: "nowhere" });
    expect(existsSync(join(root, "nowhere"))).toBe(false);
    expect(resolve(root, "dangling")).toEqual({ problem: "missing", at: "nowhere" });
    expect(sentinelState(outside, "")).toEqual(before);
  });

  test("a file in the middle of a path is not a directory", () => {
    const { root } = freshRoot();
    writeFileSync(join(root, "file"), "x");
    expect(resolve(root, "file/x", { createMissing: true })).toEqual({ problem: "not-directory", at: "file" });
    expect(resolve(root, "file/x", { keepUnresolvedRest: true })).toBe("file/x");
    expect(resolve(root, "file", { keepUnresolvedRest: true })).toBe("file");
  });

  test("followLast false leaves the last component as it is; the default follows it", () => {
    const { root } = freshRoot();
    mkdirSync(join(root, "d"));
    symlinkSync("/d", join(root, "link"));
    symlinkSync("../link", join(root, "d", "back"));
    expect(resolve(root, "link/back", { followLast: false })).toBe("d/back");
    expect(resolve(root, "link/back")).toBe("d");
    expect(resolve(root, "missing/name", { followLast: false })).toEqual({ problem: "missing", at: "missing" });
  });

  test("a cache remembers real directories with their set-group-ID bit and answers repeated lookups", () => {
    const { root } = freshRoot();
    mkdirSync(join(root, "g"));
    Bun.spawnSync(["chmod", "2755", join(root, "g")]);
    mkdirSync(join(root, "plain"));
    symlinkSync("g", join(root, "to-g"));
    const cache: DirectoryCache = new Map([["", false]]);
    expect(resolve(root, "to-g/new", { createMissing: true, cache })).toBe("g/new");
    expect(cache.get("g")).toBe(true);
    expect(cache.get("g/new")).toBe(true);
    expect(resolve(root, "plain", { cache })).toBe("plain");
    expect(cache.get("plain")).toBe(false);
    expect(cache.has("to-g")).toBe(false);
  });
});

describe("the hostile corpus through the resolver", () => {
  const corpusRoot = join(scratch, "corpus");
  const host = join(scratch, "host");
  mkdirSync(join(host, "victimdir"), { recursive: true });
  writeFileSync(join(host, "victim"), "victim\n");
  const corpus = buildCorpus(corpusRoot, host);

  for (const c of corpus) {
    test(`${c.name}: every name in it resolves inside the root after extraction`, async () => {
      const { root, outside } = freshRoot();
      const before = [sentinelState(outside, ""), sentinelState(host, "")];
      const refused = await applyFile(root, c.file).then(
        () => false,
        () => true,
      );
      if (c.expect !== "either") expect(refused ? "refused" : "accepted").toBe(c.expect);
      const names: string[] = [];
      try {
        for await (const { entry } of readTar(Bun.file(c.file).stream())) names.push(entry.path, ...(entry.linkTarget ? [entry.linkTarget] : []));
      } catch {
        // Corrupt cases stop early; the names read so far are still checked.
      }
      for (const name of names) {
        for (const options of [{ keepUnresolvedRest: true }, { followLast: false }, {}]) {
          let result;
          try {
            result = resolve(root, name, options);
          } catch (error) {
            // Names the kernel refuses outright (ENAMETOOLONG) fail the lookup, which extraction reports as a refusal.
            expect((error as NodeJS.ErrnoException).code).toBe("ENAMETOOLONG");
            continue;
          }
          if (isConfinedFailure(result)) continue;
          // With followLast false the last component is the caller's to handle (never followed): its directory must be inside.
          expectInside(root, "followLast" in options ? dirname(`/${result}`).slice(1) : result);
        }
      }
      expect([sentinelState(outside, ""), sentinelState(host, "")]).toEqual(before);
    });
  }
});
