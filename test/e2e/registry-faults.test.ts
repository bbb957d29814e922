/**
 * Registry faults, through a proxy that misbehaves on purpose in front of a real registry: a
 * blob cut halfway is resumed with a Range request, a 503 is retried, a corrupted blob is
 * refused by its digest with nothing stored, and a pull killed with SIGKILL mid-download
 * leaves no image, no incomplete layer and no temporary file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore } from "../helpers/cli.ts";
import { type Fault, type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.ts";
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

function proxy(faults: Record<string, Fault>): FaultProxy {
  const started = startFaultProxy(registry.host, faults);
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
  test("a blob cut halfway is resumed with a Range request; a 503 is retried; the image is the same", async () => {
    const expected = await cleanPull();
    const faulty = proxy({ [layers[0]!]: "cut", [layers[1]!]: "503" });
    const store = new TestStore("vfs");
    try {
      const r = await runAsync([...store.globals, "pull", "-q", "--tls-verify=false", reference(faulty.host)]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(expected.id);
      expect(withoutTimes(store.json(["layers", "--json"]))).toEqual(expected.layers);
      const base = faulty.requests.filter((q) => q.path.endsWith(layers[0]!) && q.method === "GET");
      expect(base.length).toBe(2);
      expect(base[1]!.range).toMatch(/^bytes=[1-9][0-9]*-$/);
      expect(base[1]!.status).toBe(206);
      const upper = faulty.requests.filter((q) => q.path.endsWith(layers[1]!) && q.method === "GET");
      expect(upper.map((q) => q.status)).toEqual([503, 200]);
    } finally {
      store.destroy();
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
});
