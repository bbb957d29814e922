/** The registry client's pure parts: challenges, backoff, the API host, credential files and keys. */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseChallenges } from "../../src/transports/registry/auth.ts";
import { apiHostOf, backoffMs } from "../../src/transports/registry/client.ts";
import { authFilesSearched, findCredentials, loginKey, parseCreds, removeCredentials, storeCredentials } from "../../src/transports/registry/credentials.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "oci-creds-"));
  dirs.push(dir);
  return dir;
}
const b64 = (text: string) => Buffer.from(text).toString("base64");

describe("WWW-Authenticate", () => {
  test("Bearer and Basic challenges with quoted and bare parameters", () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/debian:pull" } },
    ]);
    expect(parseChallenges('Basic realm="test-realm"')).toEqual([{ scheme: "basic", params: { realm: "test-realm" } }]);
    expect(parseChallenges('Bearer realm="https://x/token",scope="repository:a:pull,push",error="insufficient_scope"')[0]!.params.scope).toBe("repository:a:pull,push");
    expect(parseChallenges(null)).toEqual([]);
  });
  test("backoff doubles from 250 ms, capped, and honours Retry-After", () => {
    expect([1, 2, 3, 10].map((n) => backoffMs(n))).toEqual([250, 500, 1000, 8000]);
    expect(backoffMs(1, "2")).toBe(2000);
    expect(backoffMs(1, "3600")).toBe(8000);
  });
  test("Docker Hub is served by registry-1.docker.io", () => {
    expect(apiHostOf("docker.io")).toBe("registry-1.docker.io");
    expect(apiHostOf("127.0.0.1:5000")).toBe("127.0.0.1:5000");
  });
});

describe("credentials", () => {
  test("--creds: user, and a password that may hold colons", () => {
    expect(parseCreds("me:a:b")).toEqual({ username: "me", password: "a:b" });
    expect(parseCreds("me")).toEqual({ username: "me", password: "" });
    expect(() => parseCreds(":x")).toThrow("user name is empty");
  });
  test("podman's search order, or the named file alone", () => {
    const saved = { ...process.env };
    try {
      process.env.XDG_RUNTIME_DIR = "/run/user/7";
      process.env.XDG_CONFIG_HOME = "/home/u/.config";
      process.env.DOCKER_CONFIG = "/home/u/.docker";
      delete process.env.REGISTRY_AUTH_FILE;
      expect(authFilesSearched({})).toEqual(["/run/user/7/containers/auth.json", "/home/u/.config/containers/auth.json", "/home/u/.docker/config.json"]);
      process.env.REGISTRY_AUTH_FILE = "/env/auth.json";
      expect(authFilesSearched({})).toEqual(["/env/auth.json"]);
      expect(authFilesSearched({ authFile: "/flag/auth.json" })).toEqual(["/flag/auth.json"]);
    } finally {
      for (const key of ["XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE"]) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });
  test("the most specific key wins; docker's URL keys and docker.io's other names count", () => {
    const file = join(tempDir(), "auth.json");
    writeFileSync(
      file,
      JSON.stringify({
        auths: {
          "quay.io": { auth: b64("host:h") },
          "quay.io/team": { auth: b64("team:t") },
          "https://index.docker.io/v1/": { auth: b64("hub:x") },
        },
      }),
    );
    expect(findCredentials("quay.io", "team/app", { authFile: file })).toEqual({ username: "team", password: "t" });
    expect(findCredentials("quay.io", "other/app", { authFile: file })).toEqual({ username: "host", password: "h" });
    expect(findCredentials("docker.io", "library/debian", { authFile: file })).toEqual({ username: "hub", password: "x" });
    expect(findCredentials("ghcr.io", "x", { authFile: file })).toBeUndefined();
    expect(findCredentials("quay.io", "team/app", { authFile: file, creds: "flag:f" })).toEqual({ username: "flag", password: "f" });
  });
  test("login writes auth.json with mode 0600 keeping other entries; logout removes one entry", () => {
    const file = join(tempDir(), "sub", "auth.json");
    storeCredentials(loginKey("https://registry.example:5000/"), { username: "a", password: "b" }, { authFile: file });
    storeCredentials(loginKey("quay.io/team"), { username: "c", password: "d" }, { authFile: file });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ auths: { "registry.example:5000": { auth: b64("a:b") }, "quay.io/team": { auth: b64("c:d") } } });
    removeCredentials("registry.example:5000", { authFile: file });
    expect(Object.keys(JSON.parse(readFileSync(file, "utf8")).auths)).toEqual(["quay.io/team"]);
    expect(() => removeCredentials("registry.example:5000", { authFile: file })).toThrow("not logged into registry.example:5000");
  });
  test("a malformed auth file is one line naming it, without its content", () => {
    const file = join(tempDir(), "auth.json");
    writeFileSync(file, JSON.stringify({ auths: { "x.io": { auth: b64("no-colon-secret") } } }));
    expect(() => findCredentials("x.io", "a", { authFile: file })).toThrow(`${file}: auths["x.io"]: the "auth" field is not base64 of USER:PASSWORD`);
    writeFileSync(file, "{not json");
    expect(() => findCredentials("x.io", "a", { authFile: file })).toThrow(`${file}: not a valid auth file`);
  });
});
