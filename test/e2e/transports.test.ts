/**
 * push judged by the real tools (skopeo inspect and copy, umoci unpack), round trips, a second
 * pull, names, and pull --all; on vfs and overlay. The store a pull makes is compared with
 * containers-storage's in pull-side-by-side.test.ts; refusals are in pull-refusals.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore, availableDrivers } from "../helpers/cli.ts";
import { sh, straceAvailable } from "../helpers/fixtures.ts";
import { addMultiPlatformIndex, makeUmociImage, treeListing } from "../helpers/images.ts";
import { imageRecord, peer, withoutTimes } from "../helpers/peer.ts";

let work: string;
const LAYOUT = () => join(work, "layout");
let platforms: Record<"amd64" | "arm64", string>;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oci-transports-"));
  makeUmociImage(work, LAYOUT(), "app:v1");
  platforms = addMultiPlatformIndex(LAYOUT(), "app:v1", "multi");
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The listing of a layer's mounted tree. */
function mountedTree(store: TestStore, layer: string): string {
  const tree = treeListing(store.ok(["mount", layer]).trim());
  store.ok(["unmount", layer]);
  return tree;
}

/** Pulls the test image: its ID, its layer IDs and the listing of its mounted tree. */
function pullTestImage(store: TestStore): { id: string; layers: string[]; mounted: string } {
  const id = store.ok(["pull", "-q", `oci:${LAYOUT()}:app:v1`]).trim();
  const layers = store.json(["layers", "--json"]).map((l: any) => l.id);
  return { id, layers, mounted: mountedTree(store, imageRecord(store, id).layer) };
}

/** Runs body on a new store of the driver holding the pulled test image; the store is destroyed after. */
async function withTestImage(driver: string, body: (store: TestStore, image: ReturnType<typeof pullTestImage>) => void | Promise<void>): Promise<void> {
  const store = new TestStore(driver);
  try {
    await body(store, pullTestImage(store));
  } finally {
    store.destroy();
  }
}

/** Pulls source into a new store of the driver: the same image ID and layer IDs as expected (diffIDs kept). */
function expectPullsBackTo(driver: string, source: string, id: string, layers: string[]): void {
  const again = new TestStore(driver);
  try {
    expect(again.ok(["pull", "-q", source]).trim()).toBe(id);
    expect(again.json(["layers", "--json"]).map((l: any) => l.id)).toEqual(layers);
  } finally {
    again.destroy();
  }
}

/** Checks that a dir: image holds its manifest, its version file and its blobs, nothing else; returns the manifest. */
function expectOnlyImageFiles(dir: string): any {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  expect(readdirSync(dir).sort()).toEqual(["manifest.json", "version", ...[manifest.config, ...manifest.layers].map((b: any) => b.digest.slice(7))].sort());
  return manifest;
}

/** umoci's unpacked root filesystem of a layout's image, as a listing. */
function umociRootfs(layout: string, ref: string): string {
  const bundle = `${layout}-bundle-${ref}`;
  sh(["umoci", "unpack", "--image", `${layout}:${ref}`, bundle]);
  return treeListing(join(bundle, "rootfs"));
}

for (const driver of availableDrivers()) {
  describe(`push on ${driver}`, () => {
    test("oci: (gzip, zstd, none) is accepted by skopeo inspect and copy and by umoci; the rootfs equals the mounted image; it pulls back to the same IDs", () =>
      withTestImage(driver, (ours, { id, layers, mounted }) => {
        const refused = ours.cli(["push", "--format", "v2s2", id, `oci:${join(work, "refused")}:tag`]);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain("cannot hold Docker schema 2 manifests (--format v2s2)");
        for (const compression of ["gzip", "zstd", "none"] as const) {
          const out = join(work, `out-${driver}-${compression}`);
          ours.ok(["push", "-q", "--compression-format", compression, id, `oci:${out}:tag`]);
          const inspected = JSON.parse(sh(["skopeo", "inspect", `oci:${out}:tag`]));
          expect(inspected.Layers.length).toBe(2);
          const raw = JSON.parse(sh(["skopeo", "inspect", "--raw", `oci:${out}:tag`]));
          expect(raw.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
          const suffix = { gzip: "+gzip", zstd: "+zstd", none: "" }[compression];
          expect(raw.layers.map((l: any) => l.mediaType)).toEqual(raw.layers.map(() => `application/vnd.oci.image.layer.v1.tar${suffix}`));
          sh(["skopeo", "copy", "-q", `oci:${out}:tag`, `dir:${out}-dir`]);
          // umoci 0.4.7 cannot read zstd layers; skopeo's copy above checked their digests.
          if (compression !== "zstd") expect(umociRootfs(out, "tag")).toBe(mounted);
          expectPullsBackTo(driver, `oci:${out}:tag`, id, layers);
        }
      }));

    test("oci-archive: and docker-archive: are read by skopeo and umoci, the rootfs equals the mounted image, and they pull back to the same IDs", () =>
      withTestImage(driver, (ours, { id, layers, mounted }) => {
        const ociArchive = join(work, `pushed-${driver}.oci.tar`);
        const dockerArchive = join(work, `pushed-${driver}.docker.tar`);
        ours.ok(["push", "-q", id, `oci-archive:${ociArchive}:tag`]);
        ours.ok(["push", "-q", id, `docker-archive:${dockerArchive}:me/app:v2`]);

        expect(JSON.parse(sh(["skopeo", "inspect", `oci-archive:${ociArchive}:tag`])).Layers.length).toBe(2);
        sh(["skopeo", "copy", "-q", `oci-archive:${ociArchive}:tag`, `dir:${join(work, `from-oci-archive-${driver}`)}`]);
        const unpacked = join(work, `oci-archive-layout-${driver}`);
        mkdirSync(unpacked);
        sh(["tar", "-xf", ociArchive, "-C", unpacked]);
        expect(umociRootfs(unpacked, "tag")).toBe(mounted);

        const inspected = JSON.parse(sh(["skopeo", "inspect", `docker-archive:${dockerArchive}`]));
        expect(inspected.Layers.length).toBe(2);
        expect(JSON.parse(sh(["tar", "-xOf", dockerArchive, "manifest.json"]))[0].RepoTags).toEqual(["docker.io/me/app:v2"]);
        sh(["skopeo", "copy", "-q", `docker-archive:${dockerArchive}`, `dir:${join(work, `from-docker-archive-${driver}`)}`]);
        const converted = join(work, `docker-archive-layout-${driver}`);
        sh(["skopeo", "copy", "-q", `docker-archive:${dockerArchive}`, `oci:${converted}:t`]);
        expect(umociRootfs(converted, "t")).toBe(mounted);

        const refused = ours.cli(["push", "--compression-format", "gzip", id, `docker-archive:${join(work, "never.tar")}:a:b`]);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain("layers are stored uncompressed");
        // Each archive takes one manifest type, as in containers/image: --format asks for it or is refused.
        const never = join(work, "never.tar");
        expect(ours.cli(["push", "--format", "oci", id, `docker-archive:${never}:a:b`]).stderr).toBe(`docker-archive:${never}:docker.io/library/a:b: cannot hold OCI manifests (--format oci); it takes application/vnd.docker.distribution.manifest.v2+json\n`);
        expect(ours.cli(["push", id, `docker-archive:${never}:@0`]).stderr).toBe(`docker-archive:${never}:@0: @INDEX cannot name an image to write\n`);
        expect(ours.cli(["push", "--format", "v2s2", id, `oci-archive:${never}:t`]).stderr).toBe(`oci-archive:${never}:t: cannot hold Docker schema 2 manifests (--format v2s2); it takes application/vnd.oci.image.manifest.v1+json\n`);
        const explicit = join(work, `pushed-${driver}-v2s2.docker.tar`);
        ours.ok(["push", "-q", "--format", "v2s2", "--compression-format", "none", id, `docker-archive:${explicit}:me/app:v2`]);
        expect(readFileSync(explicit).equals(readFileSync(dockerArchive))).toBe(true);
        // zstd layers in an OCI archive: skopeo checks their digests as it copies them out.
        const zstdArchive = join(work, `pushed-${driver}-zstd.oci.tar`);
        ours.ok(["push", "-q", "--compression-format", "zstd", id, `oci-archive:${zstdArchive}:tag`]);
        expect(JSON.parse(sh(["skopeo", "inspect", "--raw", `oci-archive:${zstdArchive}:tag`])).layers.map((l: any) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar+zstd"]);
        sh(["skopeo", "copy", "-q", `oci-archive:${zstdArchive}:tag`, `dir:${join(work, `from-zstd-archive-${driver}`)}`]);
        expect(existsSync(never)).toBe(false);
        for (const source of [`oci-archive:${ociArchive}:tag`, `docker-archive:${dockerArchive}`, `oci-archive:${zstdArchive}:tag`]) expectPullsBackTo(driver, source, id, layers);
      }));

    test("dir: (OCI and Docker schema 2) is read by skopeo and umoci, the rootfs equals the mounted image, and it pulls back to the same IDs", () =>
      withTestImage(driver, (ours, { id, layers, mounted }) => {
        for (const format of ["oci", "v2s2"]) {
          const dir = join(work, `pushed-${driver}-${format}.dir`);
          ours.ok(["push", "-q", "--format", format, id, `dir:${dir}`]);
          expect(readFileSync(join(dir, "version"), "utf8")).toBe("Directory Transport Version: 1.1\n");
          expect(JSON.parse(sh(["skopeo", "inspect", "--raw", `dir:${dir}`])).mediaType).toBe(format === "oci" ? "application/vnd.oci.image.manifest.v1+json" : "application/vnd.docker.distribution.manifest.v2+json");
          expectOnlyImageFiles(dir);
          const converted = join(work, `dir-layout-${driver}-${format}`);
          sh(["skopeo", "copy", "-q", `dir:${dir}`, `oci:${converted}:t`]);
          expect(umociRootfs(converted, "t")).toBe(mounted);
          expectPullsBackTo(driver, `dir:${dir}`, id, layers);
        }
      }));
  });
}

describe("a push that fails", () => {
  test("leaves no oci: or dir: directory it made, and an existing layout as it was", () =>
    withTestImage("vfs", (ours, { id }) => {
      // A file of the top layer removed behind the store's back: exporting that layer fails.
      const top = imageRecord(ours, id).layer;
      sh(["rm", "-f", join(ours.graph, "vfs", "dir", top, "opt", "app", "run.sh")]);
      const existing = join(work, "failing-existing");
      sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `oci:${existing}:keep`]);
      const before = sh(["find", existing, "-printf", "%P %s\n"]);
      for (const destination of [`oci:${join(work, "failing-new")}:t`, `dir:${join(work, "failing-new-dir")}`, `oci:${existing}:other`]) {
        const r = ours.cli(["push", "-q", "--compression-format", "none", id, destination]);
        expect({ destination, code: r.code, lines: r.stderr.trimEnd().split("\n").length }).toEqual({ destination, code: 1, lines: 1 });
      }
      expect(existsSync(join(work, "failing-new"))).toBe(false);
      expect(existsSync(join(work, "failing-new-dir"))).toBe(false);
      expect(sh(["find", existing, "-printf", "%P %s\n"])).toBe(before);
    }));
});

describe("push into an existing dir:", () => {
  test("a dir: image is replaced, leaving none of its files; a directory that holds something else is refused and left as it was", () =>
    withTestImage("vfs", (ours, { id }) => {
      const dir = join(work, "replaced.dir");
      sh(["skopeo", "copy", "-q", "--format", "v2s2", `oci:${LAYOUT()}:app:v1`, `dir:${dir}`]);
      ours.ok(["push", "-q", "--compression-format", "zstd", id, `dir:${dir}`]);
      const manifest = expectOnlyImageFiles(dir);
      expect(manifest.layers.map((l: any) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar+zstd"]);

      const other = join(work, "not-an-image");
      mkdirSync(other);
      writeFileSync(join(other, "notes.txt"), "mine\n");
      const refused = ours.cli(["push", "-q", id, `dir:${other}`]);
      expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 1, stderr: `dir:${other}: ${other} is not empty and holds no dir: image; not overwriting it\n` });
      expect(readdirSync(other)).toEqual(["notes.txt"]);
      // skopeo refuses it too.
      expect(Bun.spawnSync(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `dir:${other}`]).exitCode).not.toBe(0);
    }));
});

describe("push into an existing OCI layout", () => {
  test("the layout's other images stay and the REF moves to the new manifest; without REF a pull of a layout of several images is refused", () =>
    withTestImage("vfs", (ours, { id, layers }) => {
      const refsOf = (layout: string) => JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests.map((m: any) => [m.annotations?.["org.opencontainers.image.ref.name"], m.digest]);
      const [mine, skopeos] = [join(work, "existing-ours"), join(work, "existing-skopeo")];
      for (const layout of [mine, skopeos]) for (const ref of ["keep", "tag"]) sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `oci:${layout}:${ref}`]);
      const [keep, old] = refsOf(mine);
      const digest = ours.ok(["push", "--compression-format", "zstd", id, `oci:${mine}:tag`]).trim();
      sh(["skopeo", "copy", "-q", "--dest-compress-format", "zstd", `oci:${LAYOUT()}:app:v1`, `oci:${skopeos}:tag`]);
      // The REF moved to the new manifest; the entry that had it stays without a name, as containers/image leaves it.
      expect(refsOf(mine)).toEqual([keep, [undefined, old[1]], ["tag", digest]]);
      expect(digest).not.toBe(old[1]);
      expect(refsOf(skopeos).map(([ref]: string[]) => ref)).toEqual(["keep", "tag"]);
      for (const ref of ["keep", "tag"]) sh(["skopeo", "copy", "-q", `oci:${mine}:${ref}`, `dir:${join(work, `existing-${ref}`)}`]);
      expectPullsBackTo("vfs", `oci:${mine}:tag`, id, layers);

      const refused = ours.cli(["pull", "-q", `oci:${mine}`]);
      expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 1, stderr: `oci:${mine}: the layout holds 3 images; name one as oci:PATH:REF\n` });
      expect(Bun.spawnSync(["skopeo", "inspect", `oci:${mine}`]).exitCode).not.toBe(0);
    }));
});

describe("REFs in a layout", () => {
  test("are kept as skopeo keeps them: one image under several REFs, a REF moved to another image leaves the old entry without a name", () =>
    withTestImage("vfs", (ours, { id: x }) => {
      const y = ours.ok(["pull", "-q", "--platform", "linux/arm64", `oci:${LAYOUT()}:multi`]).trim();
      const [mine, skopeos] = [join(work, "refs-ours"), join(work, "refs-skopeo")];
      const skopeoSource = { x: [`oci:${LAYOUT()}:app:v1`], y: ["--override-arch", "arm64", "--override-variant", "v8", `oci:${LAYOUT()}:multi`] };
      for (const [image, ref] of [["x", "a"], ["x", "b"], ["x", ""], ["y", "a"]] as const) {
        ours.ok(["push", "-q", image === "x" ? x : y, `oci:${mine}${ref ? `:${ref}` : ""}`]);
        const source = skopeoSource[image];
        sh(["skopeo", ...source.slice(0, -1), "copy", "-q", source.at(-1)!, `oci:${skopeos}${ref ? `:${ref}` : ""}`]);
      }
      /** Each entry as its REF (or "-") and which image it is: x is the one named b, y the one named a at the end. */
      const entries = (layout: string) => {
        const manifests = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests;
        const digestOf = (ref: string) => manifests.find((m: any) => m.annotations?.["org.opencontainers.image.ref.name"] === ref).digest;
        const images: Record<string, string> = { [digestOf("b")]: "x", [digestOf("a")]: "y" };
        return manifests.map((m: any) => `${m.annotations?.["org.opencontainers.image.ref.name"] ?? "-"} ${images[m.digest]}`);
      };
      expect(entries(skopeos)).toEqual(["- x", "b x", "- x", "a y"]);
      expect(entries(mine)).toEqual(entries(skopeos));
    }));

  test("pushes into one layout at the same time each keep their entry; into one dir:, the last leaves a whole image", () =>
    withTestImage("vfs", async (ours, { id, layers }) => {
      const layout = join(work, "parallel");
      const refs = ["p1", "p2", "p3", "p4", "p5", "p6"];
      const pushes = refs.map((ref) => Bun.spawn([BINARY, ...ours.globals, "push", "-q", id, `oci:${layout}:${ref}`], { stderr: "pipe" }));
      expect(await Promise.all(pushes.map((p) => p.exited))).toEqual(refs.map(() => 0));
      const named = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")).manifests.map((m: any) => m.annotations["org.opencontainers.image.ref.name"]);
      expect(named.sort()).toEqual(refs);
      for (const ref of refs) expect(JSON.parse(sh(["skopeo", "inspect", `oci:${layout}:${ref}`])).Layers.length).toBe(2);

      const dir = join(work, "parallel.dir");
      const compressions = ["gzip", "zstd", "none", "gzip", "zstd", "none"];
      const dirPushes = compressions.map((c) => Bun.spawn([BINARY, ...ours.globals, "push", "-q", "--compression-format", c, id, `dir:${dir}`], { stderr: "pipe" }));
      expect(await Promise.all(dirPushes.map((p) => p.exited))).toEqual(compressions.map(() => 0));
      expectOnlyImageFiles(dir);
      expectPullsBackTo("vfs", `dir:${dir}`, id, layers);
    }));
});

describe("push to an archive file that is not a new file", () => {
  test("an existing docker-archive is refused and left as it was, as skopeo refuses it; an empty file is written", () =>
    withTestImage("vfs", (ours, { id }) => {
      const archive = join(work, "existing.docker.tar");
      sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `docker-archive:${archive}:foo:bar`]);
      const before = readFileSync(archive);
      const refused = ours.cli(["push", "-q", id, `docker-archive:${archive}:me/app:v2`]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(`docker-archive:${archive}:docker.io/me/app:v2: ${archive} exists and is not empty: a docker-archive is not modified (remove it or write another file)\n`);
      expect(readFileSync(archive).equals(before)).toBe(true);
      // skopeo refuses it in the same way.
      expect(Bun.spawnSync(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `docker-archive:${archive}:me/app:v2`]).exitCode).not.toBe(0);
      const empty = join(work, "empty.docker.tar");
      writeFileSync(empty, "");
      ours.ok(["push", "-q", id, `docker-archive:${empty}:me/app:v2`]);
      expect(JSON.parse(sh(["tar", "-xOf", empty, "manifest.json"]))[0].RepoTags).toEqual(["docker.io/me/app:v2"]);
    }));

  test("a symlink to standard output (as /dev/stdout is) and a FIFO are written through, not replaced; nothing is staged beside them", () =>
    withTestImage("vfs", async (ours, { id, layers }) => {
      const dir = join(work, "streams");
      mkdirSync(dir);
      // What /dev/stdout is; a link of our own, so that a regression replaces nothing of the system's.
      const stdoutLink = join(dir, "stdout");
      symlinkSync("/proc/self/fd/1", stdoutLink);
      const captured = join(work, "captured.docker.tar");
      const toStdout = Bun.spawnSync([BINARY, ...ours.globals, "push", "-q", id, `docker-archive:${stdoutLink}:me/app:v2`], { stdout: Bun.file(captured), stderr: "pipe" });
      expect({ code: toStdout.exitCode, stderr: toStdout.stderr.toString() }).toEqual({ code: 0, stderr: "" });
      expect(lstatSync(stdoutLink).isSymbolicLink()).toBe(true);
      expect(JSON.parse(sh(["tar", "-xOf", captured, "manifest.json"]))[0].RepoTags).toEqual(["docker.io/me/app:v2"]);
      expectPullsBackTo("vfs", `docker-archive:${captured}`, id, layers);

      const fifo = join(dir, "fifo");
      sh(["mkfifo", fifo]);
      const fromFifo = join(work, "from-fifo.oci.tar");
      const reader = Bun.spawn(["sh", "-c", 'cat "$1" > "$2"', "sh", fifo, fromFifo]);
      const pushed = Bun.spawn([BINARY, ...ours.globals, "push", "-q", id, `oci-archive:${fifo}:tag`], { stderr: "pipe" });
      expect({ push: await pushed.exited, stderr: await new Response(pushed.stderr).text(), reader: await reader.exited }).toEqual({ push: 0, stderr: "", reader: 0 });
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      expect(JSON.parse(sh(["skopeo", "inspect", `oci-archive:${fromFifo}:tag`])).Layers.length).toBe(2);
      expect(readdirSync(dir).sort()).toEqual(["fifo", "stdout"]);
      expectPullsBackTo("vfs", `oci-archive:${fromFifo}:tag`, id, layers);
    }));
});

describe("pull", () => {
  test("a second pull reuses the layers and the image and adds its names; a name another image holds moves, as with skopeo and containers-storage", () => {
    const ours = new TestStore("vfs");
    const theirs = peer(mkdtempSync(join(tmpdir(), "oci-peer-")), "vfs");
    try {
      const id = ours.ok(["pull", "-q", `oci:${LAYOUT()}:app:v1`]).trim();
      const layerCount = ours.json(["layers", "--json"]).length;
      expect(ours.ok(["pull", "-q", "-n", "localhost/other:1", `oci:${LAYOUT()}:app:v1`]).trim()).toBe(id);
      expect(ours.json(["layers", "--json"]).length).toBe(layerCount);
      expect(imageRecord(ours, id).names).toEqual(["localhost/app:v1", "localhost/other:1"]);
      // -j prints the image's record, as images --json lists it.
      expect(ours.json(["pull", "-q", "-j", `oci:${LAYOUT()}:app:v1`])).toEqual(imageRecord(ours, id));

      // The arm64 image of the index (another ID) takes the name localhost/app:v1.
      for (const [args, skopeoArgs] of [
        [["-n", "localhost/app:v1", `oci:${LAYOUT()}:app:v1`], [`oci:${LAYOUT()}:app:v1`, `containers-storage:[${theirs.spec}]localhost/app:v1`]],
        [["-n", "localhost/app:v1", "--platform", "linux/arm64", `oci:${LAYOUT()}:multi`], ["--override-arch", "arm64", "--override-variant", "v8", `oci:${LAYOUT()}:multi`, `containers-storage:[${theirs.spec}]localhost/app:v1`]],
      ]) {
        ours.ok(["pull", "-q", ...args!]);
        sh(["skopeo", ...skopeoArgs!.slice(0, -2), "copy", "-q", ...skopeoArgs!.slice(-2)]);
      }
      const namesById = (images: any[]) => Object.fromEntries(images.map((image) => [image.id, image.names ?? []]));
      const ourNames = namesById(ours.json(["images", "--json"]));
      const theirNames = namesById(JSON.parse(theirs.run(["images", "--json"])));
      const arm = Object.keys(theirNames).find((imageId) => imageId !== id)!;
      expect(theirNames).toEqual({ [id]: [], [arm]: ["localhost/app:v1"] });
      expect(ourNames).toEqual({ [id]: ["localhost/other:1"], [arm]: ["localhost/app:v1"] });
    } finally {
      ours.destroy();
      theirs.destroy();
    }
  });

  test("default names as podman gives them: oci: REF completed with localhost/, no REF no name; oci-archive: from the entry's annotations, containerd's image name first", () => {
    const layout = join(work, "names-layout");
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `oci:${layout}:app`]);
    const archive = join(work, "names.oci.tar");
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `oci-archive:${archive}:app:v1`]);
    // As docker and buildkit export: the full name in io.containerd.image.name, the tag in the ref name.
    const unpacked = join(work, "names-containerd");
    mkdirSync(unpacked);
    sh(["tar", "-xf", archive, "-C", unpacked]);
    const index = JSON.parse(readFileSync(join(unpacked, "index.json"), "utf8"));
    index.manifests[0].annotations = { "io.containerd.image.name": "docker.io/me/app:3", "org.opencontainers.image.ref.name": "3" };
    writeFileSync(join(unpacked, "index.json"), JSON.stringify(index));
    const containerd = join(work, "names-containerd.oci.tar");
    sh(["tar", "-cf", containerd, "-C", unpacked, "."]);
    const namesOf = (source: string[]) => {
      const store = new TestStore("vfs");
      try {
        return imageRecord(store, store.ok(["pull", "-q", ...source]).trim()).names ?? [];
      } finally {
        store.destroy();
      }
    };
    expect(namesOf([`oci:${layout}:app`])).toEqual(["localhost/app:latest"]);
    expect(namesOf([`oci:${layout}`])).toEqual([]);
    expect(namesOf([`oci-archive:${archive}`])).toEqual(["localhost/app:v1"]);
    expect(namesOf([`oci-archive:${containerd}:3`])).toEqual(["docker.io/me/app:3"]);
    expect(namesOf([`oci-archive:${containerd}`])).toEqual(["docker.io/me/app:3"]);
    // Names given with -n are stored as typed, as create-image stores them.
    expect(namesOf(["-n", "mine", "-n", "quay.io/x/y:1", `oci:${layout}:app`])).toEqual(["mine", "quay.io/x/y:1"]);
    // A ref that is not an image name cannot name the image: the error says how to name it.
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `oci:${layout}:App`]);
    const store = new TestStore("vfs");
    try {
      const refused = store.cli(["pull", "-q", `oci:${layout}:App`]);
      expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 1, stderr: `oci:${layout}:App: invalid image name "App": "App" is not a valid repository name component (lower case letters, digits and separators); give the image a name with --name\n` });
      expect(store.json(["layers", "--json"]) ?? []).toEqual([]);
    } finally {
      store.destroy();
    }
  });

  test("--all stores every image of an index, each as a --platform pull stores it; the names go to the image --platform picks", () => {
    const all = new TestStore("vfs");
    const one = new TestStore("vfs");
    try {
      const ids = all.ok(["pull", "--all", "-n", "localhost/multi:all", `oci:${LAYOUT()}:multi`]).trim().split("\n");
      expect(ids.length).toBe(2);
      const amd64 = one.ok(["pull", "-q", "--platform", "linux/amd64", "-n", "localhost/multi:all", `oci:${LAYOUT()}:multi`]).trim();
      const arm64 = one.ok(["pull", "-q", "--platform", "linux/arm64", `oci:${LAYOUT()}:multi`]).trim();
      expect(ids).toEqual([amd64, arm64]);
      expect(all.ok(["list-image-data", amd64])).toContain(`manifest-${platforms.amd64}`);
      expect(all.ok(["list-image-data", arm64])).toContain(`manifest-${platforms.arm64}`);
      // The same records as one pull per platform, names and times aside.
      const records = (store: TestStore) => withoutTimes(store.json(["images", "--json"])).map(({ names: _n, "names-history": _h, ...rest }: any) => rest);
      expect(records(all)).toEqual(records(one));
      expect(imageRecord(all, amd64).names).toEqual(["localhost/multi:all"]);
      expect(imageRecord(all, arm64).names ?? []).toEqual([]);
      // Layers the two images share are stored once.
      expect(all.json(["layers", "--json"]).length).toBe(one.json(["layers", "--json"]).length);
      // -j prints every record; on a source that is not an index, --all stores its one image.
      const printed = all.json(["pull", "-q", "--all", "-j", `oci:${LAYOUT()}:app:v1`]);
      expect(printed.map((image: any) => image.id)).toEqual([one.ok(["pull", "-q", `oci:${LAYOUT()}:app:v1`]).trim()]);
    } finally {
      all.destroy();
      one.destroy();
    }
  });

  test.skipIf(!straceAvailable("the test of files opened by pull"))("each layer blob is applied from where it is, opened once (twice for a vfs layer with a parent: read ahead for its whiteouts), and nothing is written outside the store (no temporary copy), from a layout and from archives", () => {
    const archives = { oci: join(work, "once.oci.tar"), docker: join(work, "once.docker.tar") };
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `oci-archive:${archives.oci}:app:v1`]);
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `docker-archive:${archives.docker}:foo:bar`]);
    const manifest = JSON.parse(sh(["skopeo", "inspect", "--raw", `oci:${LAYOUT()}:app:v1`]));
    for (const source of [`oci:${LAYOUT()}:app:v1`, `oci-archive:${archives.oci}:app:v1`, `docker-archive:${archives.docker}`]) {
      const store = new TestStore("vfs");
      try {
        const trace = join(work, "trace");
        sh(["strace", "-f", "-qq", "-e", "trace=openat,open,creat", "-o", trace, BINARY, ...store.globals, "pull", "-q", source]);
        const opens = readFileSync(trace, "utf8").split("\n").map((line) => /"([^"]*)", ([A-Z_|]+)/.exec(line)).filter((m) => m !== null);
        const created = opens.filter((m) => m![2]!.includes("O_CREAT") && !m![1]!.startsWith(store.dir)).map((m) => m![1]);
        expect({ source, created }).toEqual({ source, created: [] });
        if (source.startsWith("oci:")) {
          // vfs reads the upper layer ahead, to leave out of its copy of the base what the layer removes.
          const expected = manifest.layers.map((layer: { digest: string }, i: number) => ({ layer: layer.digest, opened: i === 0 ? 1 : 2 }));
          expect(manifest.layers.map((layer: { digest: string }) => ({ layer: layer.digest, opened: opens.filter((m) => m![1]!.endsWith(layer.digest.slice(7))).length }))).toEqual(expected);
        }
      } finally {
        store.destroy();
      }
    }
  });

  test("docker-archive: @INDEX and NAME:TAG pick the same image; an unknown tag is named; a pipe is refused", () => {
    const archive = join(work, "skopeo-made.tar");
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `docker-archive:${archive}:foo:bar`]);
    const ours = new TestStore("vfs");
    try {
      expect(ours.ok(["pull", "-q", `docker-archive:${archive}:@0`])).toBe(ours.ok(["pull", "-q", `docker-archive:${archive}:foo:bar`]));
      expect(imageRecord(ours, "docker.io/library/foo:bar").names).toEqual(["docker.io/library/foo:bar"]);
      const wrong = ours.cli(["pull", `docker-archive:${archive}:foo:nope`]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr.trim()).toEndWith("no image tagged docker.io/library/foo:nope in the archive");
      // An archive is read by seeking: from a pipe it is refused with the reason, from a redirected file it works.
      const piped = ours.cli(["pull", "-q", "docker-archive:/dev/stdin"], { stdin: Bun.file(archive) });
      expect(piped).toMatchObject({ code: 0, stdout: ours.ok(["pull", "-q", `docker-archive:${archive}`]) });
      const fromPipe = Bun.spawnSync(["sh", "-c", 'cat "$1" | "$2" --graph "$3" --run "$4" -s vfs pull -q docker-archive:/dev/stdin', "sh", archive, BINARY, ours.graph, ours.run], { stderr: "pipe" });
      expect(fromPipe.exitCode).toBe(1);
      expect(fromPipe.stderr.toString()).toBe("/dev/stdin: not a regular file: an archive is read by seeking to its members, so save it to a file first\n");
    } finally {
      ours.destroy();
    }
  });
});

describe("pull from a docker-archive holding several images", () => {
  test("@INDEX and NAME:TAG pick an image, which gets every RepoTags entry (as podman names it) or the tag asked for; without either it is refused", () => {
    // Two images (this host's and the arm64 one of the index), one archive as `docker save a b` writes it.
    const merged = join(work, "several-docker");
    mkdirSync(merged);
    const entries = [];
    for (const [args, tag] of [[[`oci:${LAYOUT()}:app:v1`], "foo:bar"], [["--override-arch", "arm64", "--override-variant", "v8", `oci:${LAYOUT()}:multi`], "foo:arm"]] as const) {
      const single = join(work, `several-${tag.replace(":", "-")}.tar`);
      sh(["skopeo", ...args.slice(0, -1), "copy", "-q", args.at(-1)!, `docker-archive:${single}:${tag}`]);
      sh(["tar", "-xf", single, "-C", merged]);
      entries.push(JSON.parse(readFileSync(join(merged, "manifest.json"), "utf8"))[0]);
    }
    entries[0].RepoTags = ["foo:bar", "me/foo:also"];
    writeFileSync(join(merged, "manifest.json"), JSON.stringify(entries));
    const archive = join(work, "several.docker.tar");
    sh(["tar", "-cf", archive, "-C", merged, "."]);

    const ours = new TestStore("vfs");
    try {
      const refused = ours.cli(["pull", "-q", `docker-archive:${archive}`]);
      expect({ code: refused.code, stderr: refused.stderr }).toEqual({ code: 1, stderr: `docker-archive:${archive}: the archive holds 2 images; name one as docker-archive:FILE:NAME:TAG or :@INDEX\n` });
      expect(ours.json(["layers", "--json"]) ?? []).toEqual([]);
      const beyond = ours.cli(["pull", "-q", `docker-archive:${archive}:@2`]);
      expect(beyond.stderr).toBe(`docker-archive:${archive}:@2: the archive holds 2 images, there is no @2\n`);

      const first = ours.ok(["pull", "-q", `docker-archive:${archive}:@0`]).trim();
      expect(imageRecord(ours, first).names).toEqual(["docker.io/library/foo:bar", "docker.io/me/foo:also"]);
      const second = ours.ok(["pull", "-q", `docker-archive:${archive}:@1`]).trim();
      expect(second).not.toBe(first);
      expect(imageRecord(ours, second).names).toEqual(["docker.io/library/foo:arm"]);
      expect(JSON.parse(ours.ok(["get-image-data", second, `sha256:${second}`])).architecture).toBe("arm64");

      const byTag = new TestStore("vfs");
      try {
        expect(byTag.ok(["pull", "-q", `docker-archive:${archive}:me/foo:also`]).trim()).toBe(first);
        expect(imageRecord(byTag, first).names).toEqual(["docker.io/me/foo:also"]);
        expect(byTag.ok(["pull", "-q", `docker-archive:${archive}:foo:arm`]).trim()).toBe(second);
      } finally {
        byTag.destroy();
      }
    } finally {
      ours.destroy();
    }
  });
});

describe("README", () => {
  test("the two lines that take an image in and mount it work as written, on every driver", () => {
    const readme = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");
    const block = /Take an image in[^\n]*\n\n```sh\n([^`]*)```/.exec(readme)![1]!;
    const lines = block.trim().split("\n").map((line) => line.replace(/\s+#.*$/, ""));
    expect(lines.length).toBe(2);
    const dir = join(work, "readme");
    mkdirSync(dir);
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `oci:${join(dir, "layout")}:myapp:1.0`]);
    for (const driver of availableDrivers()) {
      const store = new TestStore(driver);
      try {
        // The lines as a shell runs them, `oci-storage` on PATH being the binary on this test's store.
        const bin = join(store.dir, "bin");
        mkdirSync(bin);
        writeFileSync(join(bin, "oci-storage"), `#!/bin/sh\nexec "${BINARY}" --graph "${store.graph}" --run "${store.run}" -s ${driver} "$@"\n`, { mode: 0o755 });
        const run = Bun.spawnSync(["sh", "-ec", lines.join("\n")], { cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, stderr: "pipe" });
        expect({ driver, code: run.exitCode, stderr: run.stderr.toString() }).toEqual({ driver, code: 0, stderr: "" });
        // What the user sees: the image ID, then the path of the container's tree.
        const [id, mounted, ...more] = run.stdout.toString().split("\n");
        expect({ id, more }).toEqual({ id: imageRecord(store, "localhost/myapp:1.0").id, more: [""] });
        const top = imageRecord(store, "localhost/myapp:1.0").layer;
        expect(treeListing(mounted!)).toBe(mountedTree(store, top));
        store.ok(["unmount", "web"]);
      } finally {
        store.destroy();
      }
    }
  });
});
