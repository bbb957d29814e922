/**
 * pull docker:// and push docker:// against a real registry (Debian's docker-registry, plain
 * http on 127.0.0.1), with skopeo as the reference client: skopeo pushes the image we pull and
 * pulls what we push, and the store a pull makes equals the one skopeo makes in
 * containers-storage 1.43.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";
import { addMultiPlatformIndex, makeUmociImage, treeListing } from "../helpers/images.ts";
import { imageRecord, peer, withoutTimes } from "../helpers/peer.ts";
import { type TestRegistry, registrySkipReason, startRegistry } from "../helpers/registry.ts";

const skip = registrySkipReason();
if (skip) console.log(`skipping registry tests: ${skip}`);

let work: string;
let registry: TestRegistry;
const INSECURE = "--tls-verify=false";

beforeAll(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "oci-registry-"));
  makeUmociImage(work, join(work, "layout"), "app:v1");
  registry = await startRegistry(join(work, "registry"));
  sh(["skopeo", "copy", "-q", "--dest-tls-verify=false", `oci:${join(work, "layout")}:app:v1`, `docker://${registry.host}/app:v1`]);
});
afterAll(async () => {
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** skopeo inspect's digest of a registry image. */
function skopeoDigest(reference: string): string {
  return JSON.parse(sh(["skopeo", "inspect", "--tls-verify=false", reference])).Digest;
}

describe.skipIf(skip !== undefined)("docker:// against a plain registry", () => {
  for (const driver of availableDrivers()) {
    test(`pull makes the store skopeo copy makes in containers-storage 1.43 (${driver})`, () => {
      const ours = new TestStore(driver);
      const theirs = peer(mkdtempSync(join(tmpdir(), "oci-peer-")), driver);
      const reference = `docker://${registry.host}/app:v1`;
      try {
        sh(["skopeo", "copy", "-q", "--src-tls-verify=false", reference, `containers-storage:[${theirs.spec}]${registry.host}/app:v1`]);
        const id = ours.ok(["pull", INSECURE, reference]).trim();
        const theirImages = JSON.parse(theirs.run(["images", "--json"]));
        expect(id).toBe(theirImages[0].id);
        expect(withoutTimes(ours.json(["images", "--json"]))).toEqual(withoutTimes(theirImages));
        expect(withoutTimes(ours.json(["layers", "--json"]))).toEqual(withoutTimes(JSON.parse(theirs.run(["layers", "--json"]))));
        expect(ours.ok(["list-image-data", id])).toBe(theirs.run(["list-image-data", id]));
        for (const item of ["manifest", `sha256:${id}`]) expect(ours.ok(["get-image-data", id, item])).toBe(theirs.run(["get-image-data", id, item]));
        expect(imageRecord(ours, id).digest).toBe(skopeoDigest(reference));
        const top = theirImages[0].layer;
        const ourTree = treeListing(ours.ok(["mount", top]).trim());
        expect(ourTree).toContain("./opt/app/run.sh");
        expect(ourTree).not.toContain("./etc/gone");
        expect(ourTree).toBe(treeListing(theirs.run(["mount", top]).trim()));
        ours.ok(["unmount", top]);
        theirs.run(["unmount", top]);
      } finally {
        ours.destroy();
        theirs.destroy();
      }
    });
  }

  test("an index in the registry: pull picks this host's image, or --platform's, as skopeo does into containers-storage 1.43", () => {
    addMultiPlatformIndex(join(work, "layout"), "app:v1", "multi");
    const reference = `docker://${registry.host}/multi:1`;
    sh(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", `oci:${join(work, "layout")}:multi`, reference]);
    for (const [platform, skopeoArgs] of [
      [[], []],
      [["--platform", "linux/arm64"], ["--override-arch", "arm64", "--override-variant", "v8"]],
    ] as const) {
      const ours = new TestStore("vfs");
      const theirs = peer(mkdtempSync(join(tmpdir(), "oci-peer-")), "vfs");
      try {
        sh(["skopeo", ...skopeoArgs, "copy", "-q", "--src-tls-verify=false", reference, `containers-storage:[${theirs.spec}]${registry.host}/multi:1`]);
        const id = ours.ok(["pull", "-q", INSECURE, ...platform, reference]).trim();
        const theirImages = JSON.parse(theirs.run(["images", "--json"]));
        expect(id).toBe(theirImages[0].id);
        expect(withoutTimes(ours.json(["images", "--json"]))).toEqual(withoutTimes(theirImages));
        expect(ours.ok(["list-image-data", id])).toBe(theirs.run(["list-image-data", id]));
        expect(JSON.parse(ours.ok(["get-image-data", id, `sha256:${id}`])).architecture).toBe(platform.length ? "arm64" : "amd64");
      } finally {
        ours.destroy();
        theirs.destroy();
      }
    }
  });

  test("pull by digest, with one and with three downloads at once, gives the same image", () => {
    const digest = skopeoDigest(`docker://${registry.host}/app:v1`);
    const one = new TestStore("vfs");
    const three = new TestStore("vfs");
    try {
      const a = one.ok(["pull", INSECURE, "--max-parallel", "1", `docker://${registry.host}/app@${digest}`]).trim();
      const b = three.ok(["pull", INSECURE, "--max-parallel", "3", `docker://${registry.host}/app:v1`]).trim();
      expect(a).toBe(b);
      expect(withoutTimes(one.json(["layers", "--json"]))).toEqual(withoutTimes(three.json(["layers", "--json"])));
      expect(imageRecord(one, a).names).toEqual([`${registry.host}/app@${digest}`]);
      expect(one.cli(["pull", INSECURE, "--max-parallel", "0", `docker://${registry.host}/app:v1`]).stderr).toContain("--max-parallel");
    } finally {
      one.destroy();
      three.destroy();
    }
  });

  test("push writes what skopeo reads (digest, blobs), and pulling it back gives the same image", () => {
    const store = new TestStore("vfs");
    const out = mkdtempSync(join(tmpdir(), "oci-skopeo-out-"));
    try {
      const id = store.ok(["pull", "-q", INSECURE, `docker://${registry.host}/app:v1`]).trim();
      for (const format of ["oci", "v2s2"]) {
        const target = `docker://${registry.host}/pushed-${format}:v1`;
        const digest = store.ok(["push", INSECURE, "--format", format, id, target]).trim();
        expect(digest).toBe(skopeoDigest(target));
        sh(["skopeo", "copy", "-q", "--src-tls-verify=false", target, `oci:${join(out, format)}:x`]);
        const again = new TestStore("vfs");
        try {
          expect(again.ok(["pull", INSECURE, target]).trim()).toBe(id);
        } finally {
          again.destroy();
        }
      }
    } finally {
      store.destroy();
      rmSync(out, { recursive: true, force: true });
    }
  });

  for (const driver of availableDrivers()) {
    test(`push skips blobs the repository has and mounts blobs from the repository they were pulled from, remembered in the store's database; check stays clean (${driver})`, () => {
      const store = new TestStore(driver);
      const repo = `${driver}-${Date.now()}`;
      try {
        const id = store.ok(["pull", "-q", INSECURE, `docker://${registry.host}/app:v1`]).trim();
        const back = store.cli(["--debug", "push", INSECURE, id, `docker://${registry.host}/app:again`]);
        expect(back).toMatchObject({ code: 0 });
        expect(back.stderr).not.toContain("PATCH");
        expect(back.stderr).toMatch(/HEAD \S+\/v2\/app\/blobs\/sha256:\S+ -> 200/);
        const mounted = store.cli(["--debug", "push", INSECURE, id, `docker://${registry.host}/${repo}/app:v1`]);
        expect(mounted).toMatchObject({ code: 0 });
        expect(mounted.stderr).not.toContain("PATCH");
        expect(mounted.stderr).toMatch(new RegExp(`POST \\S+/v2/${repo}/app/blobs/uploads/ -> 201`));
        expect(mounted.stdout.trim()).toBe(skopeoDigest(`docker://${registry.host}/${repo}/app:v1`));
        // What the second push learnt (the blobs now also live in REPO/app) serves a third one.
        const third = store.cli(["--debug", "push", INSECURE, id, `docker://${registry.host}/${repo}/copy:v1`]);
        expect(third).toMatchObject({ code: 0 });
        expect(third.stderr).toMatch(new RegExp(`POST \\S+/v2/${repo}/copy/blobs/uploads/ -> 201`));
        sh(["skopeo", "copy", "-q", "--src-tls-verify=false", `docker://${registry.host}/${repo}/app:v1`, `oci:${join(store.dir, "check")}:x`]);
        // The hints are rows of the store's database: no side file in the graph root (beside the space reserve, docs/robustness.md).
        expect(readdirSync(store.graph).filter((name) => !name.startsWith("oci-storage.db") && name !== "oci-storage.reserve" && !name.startsWith(driver))).toEqual([]);
        const check = store.cli(["check"]);
        expect(check.stdout + check.stderr).toBe("");
        expect(check.code).toBe(0);
      } finally {
        store.destroy();
      }
    });
  }

  test("refusals: plain http without --tls-verify=false, a missing tag, a missing repository — one line each, nothing stored", () => {
    const store = new TestStore("vfs");
    try {
      const plain = store.cli(["pull", `docker://${registry.host}/app:v1`]);
      expect(plain.code).toBe(1);
      expect(plain.stderr.trim().split("\n")).toHaveLength(1);
      expect(plain.stderr).toContain(registry.host);
      expect(plain.stderr).toContain("--tls-verify=false");
      const tag = store.cli(["pull", INSECURE, `docker://${registry.host}/app:nosuch`]);
      expect(tag.code).toBe(1);
      expect(tag.stderr.trim()).toMatch(new RegExp(`^${registry.host.replace(/\./g, "\\.")}/app: reading manifest nosuch: not found`));
      const repo = store.cli(["pull", INSECURE, `docker://${registry.host}/nosuch/repo:v1`]);
      expect(repo.code).toBe(1);
      expect(repo.stderr.trim().split("\n")).toHaveLength(1);
      expect(repo.stderr).toContain(`${registry.host}/nosuch/repo`);
      expect(store.ok(["images"])).toBe("");
      expect(store.ok(["layers"])).toBe("");
      const refused = store.cli(["push", INSECURE, "nosuch", `docker://${registry.host}/x:y`]);
      expect(refused.code).toBe(1);
    } finally {
      store.destroy();
    }
  });

  test("a pull leaves no temporary file behind", () => {
    const store = new TestStore("vfs");
    const spool = mkdtempSync(join(tmpdir(), "oci-spool-"));
    try {
      store.ok(["pull", "-q", INSECURE, `docker://${registry.host}/app:v1`], { env: { TMPDIR: spool } });
      expect(readdirSync(spool)).toEqual([]);
    } finally {
      store.destroy();
      rmSync(spool, { recursive: true, force: true });
    }
  });
});
