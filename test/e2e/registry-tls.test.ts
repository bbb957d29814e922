/**
 * TLS with client certificates against a real registry that requires them (distribution's
 * `http.tls.clientcas`), and the certs.d directories podman and skopeo read: the user's
 * `~/.config/containers/certs.d/HOST:PORT`, then `/etc/containers/certs.d/HOST:PORT`, then
 * `/etc/docker/certs.d/HOST:PORT`, the first that exists taken whole. The system directories
 * are tested for real without touching the host's /etc: each run happens in a private mount
 * namespace (`unshare -m`) with tmpfs mounts over /etc/containers and /etc/docker.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore } from "../helpers/cli.ts";
import { makeUmociImage } from "../helpers/images.ts";
import { type TestCa, type TestClientCert, type TestRegistry, makeClientCert, makeTestCa, registrySkipReason, runAsync, shAsync, startRegistry } from "../helpers/registry.ts";

const skip = registrySkipReason();
if (skip) console.log(`skipping registry TLS tests: ${skip}`);
const namespaceSkip =
  process.getuid?.() !== 0 ? "private mount namespaces need root" : !existsSync("/usr/bin/unshare") ? "unshare is not installed (util-linux)" : !existsSync("/etc/containers") || !existsSync("/etc/docker") ? "/etc/containers or /etc/docker is missing (skopeo and docker-registry make them)" : undefined;
if (!skip && namespaceSkip) console.log(`skipping the certs.d lookup tests: ${namespaceSkip}`);

let work: string;
let ca: TestCa;
let client: TestClientCert;
let stranger: TestClientCert;
let registry: TestRegistry;

/** A directory holding the given files under the given names. */
function certDir(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const [target, source] of Object.entries(files)) copyFileSync(source, join(dir, target));
  return dir;
}

const full = () => ({ "ca.crt": ca.caCert, "client.cert": client.cert, "client.key": client.key });

beforeAll(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "oci-registry-tls-"));
  makeUmociImage(work, join(work, "layout"), "app:v1");
  ca = makeTestCa(join(work, "ca"));
  client = makeClientCert(join(work, "client"));
  stranger = makeClientCert(join(work, "stranger"));
  registry = await startRegistry(join(work, "registry"), { tls: ca, clientCas: [client.caCert] });
  await shAsync(["skopeo", "copy", "-q", "--dest-cert-dir", certDir("skopeo-certs", full()), `oci:${join(work, "layout")}:app:v1`, `docker://${registry.host}/app:v1`]);
});
afterAll(async () => {
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The store, with HOME in the store's directory so that the user's certs.d is the test's. */
function isolated(): { store: TestStore; home: string; env: Record<string, string> } {
  const store = new TestStore("vfs");
  const home = join(store.dir, "home");
  mkdirSync(home);
  return { store, home, env: { HOME: home, XDG_CONFIG_HOME: join(home, ".config") } };
}

function expectOneLine(stderr: string): void {
  expect(stderr.trim().split("\n")).toHaveLength(1);
}

describe.skipIf(skip !== undefined)("a registry that requires client certificates", () => {
  test("the right client certificate (--cert-dir) pulls and pushes, and skopeo reads what was pushed; none, a stranger's, or a .cert without its .key: one line each", async () => {
    const { store, env } = isolated();
    try {
      const ref = `docker://${registry.host}/app:v1`;
      const none = await runAsync([...store.globals, "pull", "--cert-dir", certDir("ca-only", { "ca.crt": ca.caCert }), ref], { env });
      expect(none.code).toBe(1);
      expectOneLine(none.stderr);
      expect(none.stderr).toContain(registry.host);
      expect(none.stderr).toContain("requires a client certificate");
      const strangers = certDir("stranger-certs", { "ca.crt": ca.caCert, "me.cert": stranger.cert, "me.key": stranger.key });
      const refused = await runAsync([...store.globals, "pull", "--cert-dir", strangers, ref], { env });
      expect(refused.code).toBe(1);
      expectOneLine(refused.stderr);
      expect(refused.stderr).toContain(`did not accept the client certificate ${join(strangers, "me.cert")}`);
      const halves = certDir("no-key", { "ca.crt": ca.caCert, "client.cert": client.cert });
      const half = await runAsync([...store.globals, "pull", "--cert-dir", halves, ref], { env });
      expect(half.code).not.toBe(0);
      expectOneLine(half.stderr);
      expect(half.stderr).toContain(join(halves, "client.cert"));
      expect(store.ok(["images"])).toBe("");

      const certs = certDir("full-certs", full());
      const pulled = await runAsync([...store.globals, "pull", "-q", "--cert-dir", certs, ref], { env });
      expect(pulled.stderr).toBe("");
      expect(pulled.code).toBe(0);
      const pushed = await runAsync([...store.globals, "push", "--cert-dir", certs, pulled.stdout.trim(), `docker://${registry.host}/copy:v1`], { env });
      expect(pushed.stderr).toBe("");
      expect(pushed.code).toBe(0);
      const inspected = JSON.parse(await shAsync(["skopeo", "inspect", "--cert-dir", certs, `docker://${registry.host}/copy:v1`]));
      expect(inspected.Digest).toBe(pushed.stdout.trim());
    } finally {
      store.destroy();
    }
  });

  test("a CA the client does not trust: one line naming the host and where its CA would go", async () => {
    const { store, env } = isolated();
    try {
      const untrusted = await runAsync([...store.globals, "pull", `docker://${registry.host}/app:v1`], { env });
      expect(untrusted.code).toBe(1);
      expectOneLine(untrusted.stderr);
      expect(untrusted.stderr).toStartWith(`${registry.host}: `);
      expect(untrusted.stderr).toContain("certificate not trusted");
      expect(untrusted.stderr).toContain(`/etc/containers/certs.d/${registry.host}/ca.crt`);
    } finally {
      store.destroy();
    }
  });
});

/**
 * Runs oci-storage in a private mount namespace whose /etc/containers and /etc/docker are empty
 * tmpfs mounts, after copying `files` (absolute path there -> source) into them.
 */
async function withPrivateEtc(files: Record<string, string>, args: string[], env: Record<string, string>) {
  const copies = Object.entries(files).map(([target, source]) => `mkdir -p "$(dirname '${target}')" && cp '${source}' '${target}'`);
  const script = ["set -e", "mount -t tmpfs tmpfs /etc/containers", "mount -t tmpfs tmpfs /etc/docker", ...copies, 'exec "$@"'].join("\n");
  const proc = Bun.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", BINARY, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe.skipIf(skip !== undefined || namespaceSkip !== undefined)("certs.d lookup", () => {
  /** The files of a full certs.d entry for the registry under `root`, or only its CA. */
  const entry = (root: string, which: "full" | "ca-only") => {
    const dir = join(root, registry.host);
    const files: Record<string, string> = { [join(dir, "ca.crt")]: ca.caCert };
    if (which === "full") Object.assign(files, { [join(dir, "client.cert")]: client.cert, [join(dir, "client.key")]: client.key });
    return files;
  };

  test("/etc/containers/certs.d/HOST:PORT and /etc/docker/certs.d/HOST:PORT are read without --cert-dir; the containers one wins", async () => {
    const { store, env } = isolated();
    try {
      const ref = `docker://${registry.host}/app:v1`;
      const fromContainers = await withPrivateEtc(entry("/etc/containers/certs.d", "full"), [...store.globals, "pull", "-q", ref], env);
      expect(fromContainers.stderr).toBe("");
      expect(fromContainers.code).toBe(0);
      const fromDocker = await withPrivateEtc(entry("/etc/docker/certs.d", "full"), [...store.globals, "pull", "-q", ref], env);
      expect(fromDocker.stderr).toBe("");
      expect(fromDocker.stdout).toBe(fromContainers.stdout);
      // The first directory that exists is taken whole: a containers entry without the client certificate hides docker's full one.
      const hidden = await withPrivateEtc({ ...entry("/etc/docker/certs.d", "full"), ...entry("/etc/containers/certs.d", "ca-only") }, [...store.globals, "pull", "-q", ref], env);
      expect(hidden.code).toBe(1);
      expectOneLine(hidden.stderr);
      expect(hidden.stderr).toContain("requires a client certificate");
      // Nothing of this reached the host's /etc.
      expect(existsSync(join("/etc/containers/certs.d", registry.host))).toBe(false);
      expect(existsSync(join("/etc/docker/certs.d", registry.host))).toBe(false);
    } finally {
      store.destroy();
    }
  });

  test("the user's ~/.config/containers/certs.d/HOST:PORT comes before the system directories", async () => {
    const { store, home, env } = isolated();
    try {
      const ref = `docker://${registry.host}/app:v1`;
      const mine = join(home, ".config", "containers", "certs.d", registry.host);
      mkdirSync(mine, { recursive: true });
      copyFileSync(ca.caCert, join(mine, "ca.crt"));
      const hidden = await withPrivateEtc(entry("/etc/containers/certs.d", "full"), [...store.globals, "pull", "-q", ref], env);
      expect(hidden.code).toBe(1);
      expect(hidden.stderr).toContain("requires a client certificate");
      copyFileSync(client.cert, join(mine, "client.cert"));
      copyFileSync(client.key, join(mine, "client.key"));
      const used = await withPrivateEtc({}, [...store.globals, "pull", "-q", ref], env);
      expect(used.stderr).toBe("");
      expect(used.code).toBe(0);
    } finally {
      store.destroy();
    }
  });
});
