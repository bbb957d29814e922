/**
 * Registry authentication and TLS against real registries: htpasswd Basic auth over TLS with a
 * CA made by openssl, and token auth with a token server run here (the Bearer flow); the
 * credential sources podman and skopeo use (--creds, --authfile, $REGISTRY_AUTH_FILE, the
 * primary auth.json, ~/.docker/config.json); login and logout; and no credential in any output.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore } from "../helpers/cli.ts";
import { makeUmociImage } from "../helpers/images.ts";
import { startFaultProxy } from "../helpers/fault-proxy.ts";
import { type TestCa, type TestRegistry, type TokenServer, makeTestCa, registrySkipReason, runAsync, shAsync, startRegistry, startTokenServer } from "../helpers/registry.ts";

const skip = registrySkipReason();
if (skip) console.log(`skipping registry auth tests: ${skip}`);

const USER = "tester";
const PASSWORD = "s3cr3t-Pa55word";
const SECRETS = [PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString("base64")];

let work: string;
let ca: TestCa;
let certDir: string;
let basic: TestRegistry;
let tokens: TokenServer;
let tokenRegistry: TestRegistry;

beforeAll(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "oci-registry-auth-"));
  makeUmociImage(work, join(work, "layout"), "app:v1");
  ca = makeTestCa(join(work, "ca"));
  certDir = join(work, "certs");
  mkdirSync(certDir);
  copyFileSync(ca.caCert, join(certDir, "ca.crt"));
  basic = await startRegistry(join(work, "basic"), { tls: ca, users: { [USER]: PASSWORD } });
  tokens = startTokenServer(join(work, "tokens"), { [USER]: PASSWORD });
  tokenRegistry = await startRegistry(join(work, "token"), { token: tokens });
  const layout = `oci:${join(work, "layout")}:app:v1`;
  await shAsync(["skopeo", "copy", "-q", "--dest-cert-dir", certDir, "--dest-creds", `${USER}:${PASSWORD}`, layout, `docker://${basic.host}/app:v1`]);
  await shAsync(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-creds", `${USER}:${PASSWORD}`, layout, `docker://${tokenRegistry.host}/app:v1`]);
});
afterAll(async () => {
  await basic?.stop();
  await tokenRegistry?.stop();
  tokens?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A store and an environment with no auth file of the user's in reach. */
function isolated(): { store: TestStore; env: Record<string, string | undefined> } {
  const store = new TestStore("vfs");
  const home = join(store.dir, "home");
  mkdirSync(home);
  return { store, env: { HOME: home, XDG_RUNTIME_DIR: join(store.dir, "xdg-run"), XDG_CONFIG_HOME: join(home, ".config"), REGISTRY_AUTH_FILE: undefined, DOCKER_CONFIG: undefined } };
}

function expectNoSecrets(...texts: string[]): void {
  for (const text of texts) for (const secret of SECRETS) expect(text).not.toContain(secret);
}

describe.skipIf(skip !== undefined)("Basic auth over TLS", () => {
  test("certificates: an unknown CA is one line naming the host; --cert-dir trusts it; --tls-verify=false skips the check", async () => {
    const { store, env } = isolated();
    try {
      const ref = `docker://${basic.host}/app:v1`;
      const untrusted = await runAsync([...store.globals, "pull", "--creds", `${USER}:${PASSWORD}`, ref], { env });
      expect(untrusted.code).toBe(1);
      expect(untrusted.stderr.trim().split("\n")).toHaveLength(1);
      expect(untrusted.stderr).toContain(basic.host);
      expect(untrusted.stderr).toContain("certificate");
      const trusted = await runAsync([...store.globals, "pull", "-q", "--cert-dir", certDir, "--creds", `${USER}:${PASSWORD}`, ref], { env });
      expect(trusted.code).toBe(0);
      const unchecked = await runAsync([...store.globals, "pull", "-q", "--tls-verify=false", "--creds", `${USER}:${PASSWORD}`, ref], { env });
      expect(unchecked.code).toBe(0);
      expect(unchecked.stdout).toBe(trusted.stdout);
    } finally {
      store.destroy();
    }
  });

  test("no or wrong credentials: one line naming the repository; never the password, also with --debug", async () => {
    const { store, env } = isolated();
    try {
      const ref = `docker://${basic.host}/app:v1`;
      const anonymous = await runAsync([...store.globals, "pull", "--cert-dir", certDir, ref], { env });
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr.trim()).toMatch(new RegExp(`^${basic.host.replace(/\./g, "\\.")}/app: .*authentication required`));
      const wrong = await runAsync([...store.globals, "--debug", "pull", "--cert-dir", certDir, "--creds", `${USER}:not-${PASSWORD}`, ref], { env });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).not.toContain(`not-${PASSWORD}`);
      const right = await runAsync([...store.globals, "--debug", "pull", "--cert-dir", certDir, "--creds", `${USER}:${PASSWORD}`, ref], { env });
      expect(right.code).toBe(0);
      expect(right.stderr).toContain("GET https://");
      const pushed = await runAsync([...store.globals, "--debug", "push", "--cert-dir", certDir, "--creds", `${USER}:${PASSWORD}`, right.stdout.trim(), `docker://${basic.host}/copy:v1`], { env });
      expect(pushed.code).toBe(0);
      expectNoSecrets(anonymous.stdout, anonymous.stderr, wrong.stdout, wrong.stderr, right.stdout, right.stderr, pushed.stdout, pushed.stderr);
    } finally {
      store.destroy();
    }
  });

  test("login checks the credentials and writes auth.json (0600) that pull, skopeo and logout use", async () => {
    const { store, env } = isolated();
    try {
      const authFile = join(store.dir, "auth.json");
      const refused = await runAsync(["login", "--authfile", authFile, "--cert-dir", certDir, "-u", USER, "--password-stdin", basic.host], { env, stdin: "wrong\n" });
      expect(refused.code).toBe(1);
      expect(existsSync(authFile)).toBe(false);
      const login = await runAsync(["--debug", "login", "--authfile", authFile, "--cert-dir", certDir, "-u", USER, "--password-stdin", basic.host], { env, stdin: `${PASSWORD}\n` });
      expect(login.code).toBe(0);
      expect(login.stdout).toBe("Login Succeeded!\n");
      expectNoSecrets(login.stdout, login.stderr, refused.stdout, refused.stderr);
      expect(statSync(authFile).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(authFile, "utf8")).auths[basic.host].auth).toBe(SECRETS[1]);
      const ref = `docker://${basic.host}/app:v1`;
      expect((await runAsync([...store.globals, "pull", "-q", "--cert-dir", certDir, "--authfile", authFile, ref], { env })).code).toBe(0);
      expect((await runAsync([...store.globals, "pull", "-q", "--cert-dir", certDir, ref], { env: { ...env, REGISTRY_AUTH_FILE: authFile } })).code).toBe(0);
      await shAsync(["skopeo", "inspect", "--cert-dir", certDir, "--authfile", authFile, ref]);
      const logout = await runAsync(["logout", "--authfile", authFile, basic.host], { env });
      expect(logout.code).toBe(0);
      expect(JSON.parse(readFileSync(authFile, "utf8")).auths).toEqual({});
      const again = await runAsync(["logout", "--authfile", authFile, basic.host], { env });
      expect(again.code).toBe(1);
      expect(again.stderr.trim()).toBe(`not logged into ${basic.host}`);
    } finally {
      store.destroy();
    }
  });

  test("credentials are found in the primary auth.json and in ~/.docker/config.json; logout --all empties the primary file", async () => {
    const { store, env } = isolated();
    try {
      const ref = `docker://${basic.host}/app:v1`;
      const login = await runAsync(["login", "--cert-dir", certDir, "-u", USER, "-p", PASSWORD, basic.host], { env });
      expect(login.code).toBe(0);
      const primary = join(env.XDG_RUNTIME_DIR!, "containers", "auth.json");
      expect(statSync(primary).mode & 0o777).toBe(0o600);
      expect((await runAsync([...store.globals, "pull", "-q", "--cert-dir", certDir, ref], { env })).code).toBe(0);
      expect((await runAsync(["logout", "--all"], { env })).code).toBe(0);
      expect(JSON.parse(readFileSync(primary, "utf8")).auths).toEqual({});
      expect((await runAsync([...store.globals, "pull", "-q", "--cert-dir", certDir, ref], { env })).code).toBe(1);
      mkdirSync(join(env.HOME!, ".docker"));
      writeFileSync(join(env.HOME!, ".docker", "config.json"), JSON.stringify({ auths: { [`https://${basic.host}/v1/`]: { auth: SECRETS[1] } } }));
      expect((await runAsync([...store.globals, "pull", "-q", "--cert-dir", certDir, ref], { env })).code).toBe(0);
    } finally {
      store.destroy();
    }
  });
});

describe.skipIf(skip !== undefined)("token auth (Bearer)", () => {
  test("pull and push get tokens for the repository's scopes; skopeo agrees on the pushed digest", async () => {
    const { store, env } = isolated();
    try {
      const creds = ["--tls-verify=false", "--creds", `${USER}:${PASSWORD}`];
      const pulled = await runAsync([...store.globals, "--debug", "pull", ...creds, `docker://${tokenRegistry.host}/app:v1`], { env });
      expect(pulled.code).toBe(0);
      expect(tokens.scopesAsked).toContain("repository:app:pull");
      const id = pulled.stdout.trim();
      const pushed = await runAsync([...store.globals, "--debug", "push", ...creds, id, `docker://${tokenRegistry.host}/team/app:v2`], { env });
      expect(pushed.code).toBe(0);
      expect(tokens.scopesAsked).toContain("repository:team/app:pull,push");
      expect(tokens.scopesAsked).toContain("repository:app:pull");
      expect(pushed.stderr).toMatch(/POST \S+\/v2\/team\/app\/blobs\/uploads\/ -> 201/);
      const inspected = JSON.parse(await shAsync(["skopeo", "inspect", "--tls-verify=false", "--creds", `${USER}:${PASSWORD}`, `docker://${tokenRegistry.host}/team/app:v2`]));
      expect(inspected.Digest).toBe(pushed.stdout.trim());
      expectNoSecrets(pulled.stdout, pulled.stderr, pushed.stdout, pushed.stderr);
      const anonymous = await runAsync([...store.globals, "pull", "--tls-verify=false", `docker://${tokenRegistry.host}/app:v1`], { env });
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr.trim().split("\n")).toHaveLength(1);
      expect(anonymous.stderr).toContain(`${tokenRegistry.host}/app`);
    } finally {
      store.destroy();
    }
  });

  test("one token per set of scopes for the whole run; blobs redirected to another host get no Authorization header", async () => {
    const { store, env } = isolated();
    // Blob storage on another origin, as registries redirect blob GETs to: it serves the layout's blobs and notes what it was sent.
    const layout = join(work, "layout");
    const seen: Array<{ path: string; authorization: string | null }> = [];
    const storage = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request) {
        const url = new URL(request.url);
        seen.push({ path: url.pathname, authorization: request.headers.get("authorization") });
        const file = Bun.file(join(layout, "blobs", "sha256", url.pathname.split(":").pop()!));
        return new Response(file);
      },
    });
    const front = startFaultProxy(tokenRegistry.host, {}, {}, (digest) => `http://127.0.0.1:${storage.port}/blobs/${digest}`);
    try {
      const asked = tokens.scopesAsked.length;
      const r = await runAsync([...store.globals, "--debug", "pull", "--tls-verify=false", "--creds", `${USER}:${PASSWORD}`, `docker://${front.host}/app:v1`], { env });
      expect(r.code).toBe(0);
      // The manifest, the config and each layer need pull on app: one token, asked for once.
      expect(tokens.scopesAsked.slice(asked)).toEqual(["repository:app:pull"]);
      const blobGets = front.requests.filter((q) => q.method === "GET" && q.path.includes("/blobs/sha256:"));
      expect(blobGets.length).toBeGreaterThanOrEqual(3);
      expect(blobGets.every((q) => q.status === 307)).toBe(true);
      expect(seen.length).toBe(blobGets.length);
      expect(seen.every((request) => request.authorization === null)).toBe(true);
      expect(r.stderr).toContain(`GET http://127.0.0.1:${storage.port}/blobs/sha256:`);
      expectNoSecrets(r.stdout, r.stderr);
    } finally {
      front.stop();
      storage.stop(true);
      store.destroy();
    }
  });

  test("login verifies credentials through the token server", async () => {
    const { store, env } = isolated();
    try {
      const authFile = join(store.dir, "auth.json");
      const wrong = await runAsync(["login", "--tls-verify=false", "--authfile", authFile, "-u", USER, "-p", "nope", tokenRegistry.host], { env });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain("credentials rejected");
      expect(existsSync(authFile)).toBe(false);
      const right = await runAsync(["login", "--tls-verify=false", "--authfile", authFile, "-u", USER, "-p", PASSWORD, tokenRegistry.host], { env });
      expect(right.code).toBe(0);
      expect(existsSync(authFile)).toBe(true);
      expectNoSecrets(wrong.stderr, right.stdout, right.stderr);
    } finally {
      store.destroy();
    }
  });
});
