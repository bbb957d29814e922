/**
 * Registry faults, through a proxy that misbehaves on purpose in front of a real registry: a
 * blob cut halfway is resumed with a Range request, a 503 is retried, a corrupted blob is
 * refused by its digest with nothing stored, and a pull killed with SIGKILL mid-download
 * leaves no image, no incomplete layer and no temporary file. Pushes: a layer upload whose
 * connection drops mid-PATCH is started again, a 503 to the PATCH is resumed where the registry
 * says it stands, 503s to the closing PUT and the manifest PUT are retried, and a push killed
 * with SIGKILL leaves no manifest (skopeo cannot find the image) and can simply be run again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore } from "../helpers/cli.ts";
import { type Fault, type FaultProxy, type ProxiedRequest, type UploadFaults, startFaultProxy } from "../helpers/fault-proxy.ts";
import { makeUmociImage } from "../helpers/images.ts";
import { withoutTimes } from "../helpers/peer.ts";
import { type TestRegistry, registrySkipReason, runAsync, shAsync, startRegistry } from "../helpers/registry.ts";

const skip = registrySkipReason();
if (skip) console.log(`skipping registry fault tests: ${skip}`);

let work: string;
let registry: TestRegistry;
/** Layer blob digests of the test image, base first; the base holds a few MB. */
let layers: string[];
let reference: (host: string) => string;
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "oci-registry-faults-"));
  makeUmociImage(work, join(work, "layout"), "app:v1", 3_000_000);
  registry = await startRegistry(join(work, "registry"));
  reference = (host) => `docker://${host}/app:v1`;
  await shAsync(["skopeo", "copy", "-q", "--dest-tls-verify=false", `oci:${join(work, "layout")}:app:v1`, reference(registry.host)]);
  layers = JSON.parse(await shAsync(["skopeo", "inspect", "--tls-verify=false", reference(registry.host)])).Layers;
});
afterAll(async () => {
  for (const proxy of proxies) proxy.stop();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function proxy(faults: Record<string, Fault>, uploads?: UploadFaults): FaultProxy {
  const started = startFaultProxy(registry.host, faults, uploads);
  proxies.push(started);
  return started;
}

/** The store an undisturbed pull makes, to compare with. */
async function cleanPull(): Promise<any> {
  const store = new TestStore("vfs");
  try {
    const r = await runAsync([...store.globals, "pull", "-q", "--tls-verify=false", reference(registry.host)]);
    expect(r.code).toBe(0);
    return { id: r.stdout.trim(), layers: withoutTimes(store.json(["layers", "--json"])) };
  } finally {
    store.destroy();
  }
}

describe.skipIf(skip !== undefined)("registry faults", () => {
  /** Pulls through a proxy with these faults, checks that the image is the one an undisturbed pull makes; the GETs of each layer blob. */
  async function pullDespite(faults: Record<string, Fault>): Promise<ProxiedRequest[][]> {
    const expected = await cleanPull();
    const faulty = proxy(faults);
    const store = new TestStore("vfs");
    try {
      const r = await runAsync([...store.globals, "pull", "-q", "--tls-verify=false", reference(faulty.host)]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(expected.id);
      expect(withoutTimes(store.json(["layers", "--json"]))).toEqual(expected.layers);
      return layers.map((layer) => faulty.requests.filter((q) => q.path.endsWith(layer) && q.method === "GET"));
    } finally {
      store.destroy();
    }
  }

  test("a blob cut halfway is resumed with a Range request; a 503 is retried; the image is the same", async () => {
    const [base, upper] = await pullDespite({ [layers[0]!]: "cut", [layers[1]!]: "503" });
    expect(base!.length).toBe(2);
    expect(base![1]!.range).toMatch(/^bytes=[1-9][0-9]*-$/);
    expect(base![1]!.status).toBe(206);
    expect(upper!.map((q) => q.status)).toEqual([503, 200]);
  });

  test("a registry that answers a Range request with the whole blob: the bytes already there are written again, and the image is the same", async () => {
    for (const gets of await pullDespite({ [layers[0]!]: "cut-ignoring-range", [layers[1]!]: "cut-ignoring-range" })) {
      expect(gets.map((q) => q.status)).toEqual([200, 200]);
      expect(gets[1]!.range).toMatch(/^bytes=[1-9][0-9]*-$/);
    }
  });

  test("a corrupted blob is refused by its digest, in one line, and nothing of the pull stays", async () => {
    const faulty = proxy({ [layers[1]!]: "corrupt" });
    const store = new TestStore("vfs");
    try {
      const r = await runAsync([...store.globals, "pull", "--tls-verify=false", reference(faulty.host)]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(layers[1]!);
      expect(r.stderr).toContain("digest mismatch");
      expect(store.ok(["images"])).toBe("");
      expect(store.ok(["layers"])).toBe("");
    } finally {
      store.destroy();
    }
  });

  test("a pull killed with SIGKILL mid-download leaves no image, no incomplete layer and no temporary file; the next pull completes", async () => {
    const slow = proxy({ [layers[0]!]: "slow" });
    const store = new TestStore("vfs");
    const spool = mkdtempSync(join(tmpdir(), "oci-spool-"));
    try {
      const pull = Bun.spawn([BINARY, ...store.globals, "pull", "-q", "--tls-verify=false", reference(slow.host)], { env: { ...process.env, TMPDIR: spool }, stdout: "ignore", stderr: "ignore" });
      while (slow.blobBytesSent() < 256 << 10 && pull.exitCode === null) await Bun.sleep(10);
      pull.kill("SIGKILL");
      expect(await pull.exited).not.toBe(0);
      expect(readdirSync(spool)).toEqual([]);
      expect(store.ok(["images"])).toBe("");
      const after = store.json(["layers", "--json"]) ?? [];
      for (const layer of after) expect(layer["diff-digest"]).toBeDefined();
      const again = await runAsync([...store.globals, "pull", "-q", "--tls-verify=false", reference(registry.host)], { env: { TMPDIR: spool } });
      expect(again.code).toBe(0);
      expect(store.ok(["images"])).toContain(again.stdout.trim());
      expect(readdirSync(spool)).toEqual([]);
    } finally {
      store.destroy();
      rmSync(spool, { recursive: true, force: true });
    }
  });

  describe("push", () => {
    let pushed: TestStore;
    let imageId: string;
    let repository = 0;
    beforeAll(async () => {
      pushed = new TestStore("vfs");
      const r = await runAsync([...pushed.globals, "pull", "-q", "--tls-verify=false", reference(registry.host)]);
      expect(r.code).toBe(0);
      imageId = r.stdout.trim();
    });
    afterAll(() => pushed?.destroy());

    /** A repository no push has written to yet. */
    const freshRepository = () => `pushed-${Date.now()}-${repository++}`;

    /** The digest skopeo reads for a registry image, or its one-line failure. */
    async function skopeoInspect(target: string): Promise<{ digest?: string; failure?: string }> {
      const proc = Bun.spawn(["skopeo", "inspect", "--tls-verify=false", target], { stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return code === 0 ? { digest: JSON.parse(stdout).Digest } : { failure: stderr };
    }

    /** Pulls a pushed image into a fresh store and returns its ID. */
    async function pullBack(target: string): Promise<string> {
      const store = new TestStore("vfs");
      try {
        const r = await runAsync([...store.globals, "pull", "-q", "--tls-verify=false", target]);
        expect(r.stderr).toBe("");
        return r.stdout.trim();
      } finally {
        store.destroy();
      }
    }

    test("a layer upload whose connection drops mid-PATCH is started again; the image is whole", async () => {
      const faulty = proxy({}, { patch: "cut", cutAfter: 512 << 10 });
      const target = `docker://${faulty.host}/${freshRepository()}:v1`;
      const r = await runAsync([...pushed.globals, "push", "-q", "--tls-verify=false", imageId, target]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const steps = faulty.requests.filter((q) => q.path.includes("/blobs/uploads/")).map((q) => `${q.method} ${q.status}`);
      // The cut PATCH; distribution 2.8 no longer knows the session (its state says 0 bytes, its file more), so a new upload.
      expect(steps.slice(0, 3)).toEqual(["POST 202", "PATCH -1", "GET 404"]);
      expect(steps.filter((step) => step === "POST 202").length).toBeGreaterThanOrEqual(2);
      expect(steps).toContain("PATCH 202");
      expect(steps.filter((step) => step === "PATCH -1")).toHaveLength(1);
      expect(faulty.uploadBytesPassed()).toBeGreaterThanOrEqual(512 << 10);
      const direct = target.replace(faulty.host, registry.host);
      expect((await skopeoInspect(direct)).digest).toBeDefined();
      expect(await pullBack(direct)).toBe(imageId);
      expect(pushed.ok(["check"])).toBe("");
    });

    test("a 503 to the PATCH is resumed where the registry says the upload stands; 503s to the closing PUT and the manifest PUT are retried", async () => {
      const faulty = proxy({}, { patch: "503", finish: "503", manifest: "503" });
      const target = `docker://${faulty.host}/${freshRepository()}:v1`;
      const r = await runAsync([...pushed.globals, "push", "--tls-verify=false", imageId, target]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const uploads = faulty.requests.filter((q) => q.path.includes("/blobs/uploads/"));
      const steps = uploads.map((q) => `${q.method} ${q.status}`);
      expect(steps.slice(0, 4)).toEqual(["POST 202", "PATCH 503", "GET 204", "PATCH 202"]);
      // The resumed PATCH went to the session the registry named, not to a new one.
      expect(uploads[3]!.path).toBe(uploads[1]!.path);
      expect(steps).toContain("PUT 503");
      const manifests = faulty.requests.filter((q) => q.method === "PUT" && q.path.includes("/manifests/")).map((q) => q.status);
      expect(manifests).toEqual([503, 201]);
      const direct = target.replace(faulty.host, registry.host);
      expect((await skopeoInspect(direct)).digest).toBe(r.stdout.trim());
      expect(await pullBack(direct)).toBe(imageId);
    });

    test("a push killed with SIGKILL mid-upload leaves no manifest (skopeo finds no image); running it again completes it", async () => {
      const slow = proxy({}, { patch: "slow" });
      const repo = freshRepository();
      const target = `docker://${slow.host}/${repo}:v1`;
      const direct = `docker://${registry.host}/${repo}:v1`;
      const push = Bun.spawn([BINARY, ...pushed.globals, "push", "-q", "--tls-verify=false", imageId, target], { stdout: "ignore", stderr: "ignore" });
      while (slow.uploadBytesPassed() < 256 << 10 && push.exitCode === null) await Bun.sleep(10);
      push.kill("SIGKILL");
      expect(await push.exited).not.toBe(0);
      const inspected = await skopeoInspect(direct);
      expect(inspected.digest).toBeUndefined();
      expect(inspected.failure).toMatch(/manifest unknown|not found/i);
      expect(pushed.ok(["check"])).toBe("");
      const again = await runAsync([...pushed.globals, "push", "--tls-verify=false", imageId, direct]);
      expect(again.stderr).toBe("");
      expect(again.code).toBe(0);
      expect((await skopeoInspect(direct)).digest).toBe(again.stdout.trim());
      expect(await pullBack(direct)).toBe(imageId);
    });
  });
});
