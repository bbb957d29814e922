/**
 * Real registries for tests: Debian's docker-registry (distribution 2.8) started on 127.0.0.1
 * with a configuration of the test's own — plain http, htpasswd Basic auth over TLS with a CA
 * made here by openssl, or token auth with a token server run by the test — and stopped at the
 * end. Each server is started under `setpriv --pdeathsig KILL`, so it dies with the test
 * process even when that is killed; `stop()` ends it at once otherwise.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPrivateKey, sign } from "node:crypto";
import { BINARY, type RunOptions, type RunResult } from "./cli.ts";
import { sh } from "./fixtures.ts";

export const REGISTRY_BINARY = "/usr/bin/docker-registry";

/** Why registry tests cannot run here, or undefined when they can. */
export function registrySkipReason(): string | undefined {
  for (const tool of [REGISTRY_BINARY, "/usr/bin/skopeo", "/usr/bin/htpasswd", "/usr/bin/openssl", "/usr/bin/setpriv"]) {
    if (!existsSync(tool)) return `${tool} is not installed (see .ci/run)`;
  }
  return undefined;
}

/** A port no one listens on now (the kernel's pick, released at once). */
export function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

/** A CA (dir/NAME-ca.crt, .key) and a certificate it signed (dir/NAME.crt or .cert, dir/NAME.key) with the given extension, made by openssl. */
function signedByNewCa(dir: string, name: string, subject: string, extension: string, certName: string): { caCert: string; cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const p = (file: string) => join(dir, file);
  sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p(`${name}-ca.key`), "-out", p(`${name}-ca.crt`), "-days", "2", "-subj", `/CN=oci-storage test ${name} CA`]);
  sh(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`), "-subj", subject]);
  writeFileSync(p(`${name}.ext`), `${extension}\n`);
  sh(["openssl", "x509", "-req", "-in", p(`${name}.csr`), "-CA", p(`${name}-ca.crt`), "-CAkey", p(`${name}-ca.key`), "-CAcreateserial", "-out", p(certName), "-days", "2", "-extfile", p(`${name}.ext`)]);
  return { caCert: p(`${name}-ca.crt`), cert: p(certName), key: p(`${name}.key`) };
}

/** A CA and a server certificate for 127.0.0.1 and localhost, made with openssl in `dir`. */
export interface TestCa {
  caCert: string;
  serverCert: string;
  serverKey: string;
}

export function makeTestCa(dir: string): TestCa {
  const made = signedByNewCa(dir, "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost", "server.crt");
  return { caCert: made.caCert, serverCert: made.cert, serverKey: made.key };
}

/** A client certificate and its key, signed by a CA of its own (the CA a registry is told to require). */
export interface TestClientCert {
  caCert: string;
  cert: string;
  key: string;
}

/** A client CA and a client certificate it signed, made with openssl in `dir`. */
export function makeClientCert(dir: string): TestClientCert {
  return signedByNewCa(dir, "client", "/CN=oci-storage test client", "extendedKeyUsage=clientAuth", "client.cert");
}

/** A running registry. */
export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export interface RegistryConfig {
  /** Serve https with this certificate. */
  tls?: TestCa;
  /** With tls: require a client certificate signed by one of these CAs (distribution's http.tls.clientcas). */
  clientCas?: string[];
  /** htpasswd Basic auth with these users (bcrypt, by htpasswd -B). */
  users?: Record<string, string>;
  /** Token auth: the token server's realm URL, service, issuer and the certificate that signs tokens. */
  token?: { realm: string; service: string; issuer: string; rootCert: string };
}

/** Starts docker-registry in `dir` with the asked configuration and waits until it answers. */
export async function startRegistry(dir: string, config: RegistryConfig = {}): Promise<TestRegistry> {
  mkdirSync(dir, { recursive: true });
  const port = freePort();
  const lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true", "storage:", "  filesystem:", `    rootdirectory: ${join(dir, "data")}`, "  delete:", "    enabled: true", "http:", `  addr: 127.0.0.1:${port}`];
  if (config.tls) lines.push("  tls:", `    certificate: ${config.tls.serverCert}`, `    key: ${config.tls.serverKey}`);
  if (config.tls && config.clientCas) lines.push("    clientcas:", ...config.clientCas.map((ca) => `      - ${ca}`));
  if (config.users) {
    const htpasswd = join(dir, "htpasswd");
    writeFileSync(htpasswd, "");
    for (const [user, password] of Object.entries(config.users)) sh(["htpasswd", "-B", "-b", htpasswd, user, password]);
    lines.push("auth:", "  htpasswd:", "    realm: test-realm", `    path: ${htpasswd}`);
  } else if (config.token) {
    const t = config.token;
    lines.push("auth:", "  token:", `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootCert}`);
  }
  const configFile = join(dir, "config.yml");
  writeFileSync(configFile, `${lines.join("\n")}\n`);
  const proc = Bun.spawn(["setpriv", "--pdeathsig", "KILL", REGISTRY_BINARY, "serve", configFile], { stdout: Bun.file(join(dir, "registry.log")), stderr: Bun.file(join(dir, "registry.err")) });
  let stopping = false;
  void proc.exited.then((code) => {
    if (!stopping) console.log(`docker-registry on port ${port} ended by itself (status ${code}, signal ${proc.signalCode}): ${readFileSync(join(dir, "registry.err"), "utf8").slice(-2000)}`);
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      // Listening is enough (a registry that requires client certificates would refuse an https probe).
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      socket.end();
      break;
    } catch {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`docker-registry did not start on port ${port} (see ${dir}/registry.err)`);
      }
      await Bun.sleep(50);
    }
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      stopping = true;
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString("base64url");
}

/** A token server for distribution's token auth: checks Basic credentials and signs JWTs (RS256, x5c). */
export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  rootCert: string;
  /** The scopes asked for, in order, e.g. "repository:app:pull". */
  scopesAsked: string[];
  stop(): void;
}

export function startTokenServer(dir: string, users: Record<string, string>): TokenServer {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, "token.key");
  const cert = join(dir, "token.crt");
  sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=oci-storage test token issuer"]);
  const der = sh(["sh", "-c", `openssl x509 -in "${cert}" -outform DER | base64 -w0`]).trim();
  const privateKey = createPrivateKey(readFileSync(key));
  const service = "oci-storage-test-registry";
  const issuer = "oci-storage-test-issuer";
  const scopesAsked: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      const url = new URL(request.url);
      const auth = request.headers.get("authorization") ?? "";
      const decoded = auth.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString() : "";
      const user = decoded.slice(0, decoded.indexOf(":"));
      if (!decoded || users[user] !== decoded.slice(decoded.indexOf(":") + 1)) return new Response("unauthorized", { status: 401 });
      const scopes = url.searchParams.getAll("scope");
      scopesAsked.push(...scopes);
      const access = scopes.map((scope) => {
        const [type, ...rest] = scope.split(":");
        const actions = rest.pop()!.split(",");
        return { type, name: rest.join(":"), actions };
      });
      const now = Math.floor(Date.now() / 1000);
      const header = base64url(JSON.stringify({ typ: "JWT", alg: "RS256", x5c: [der] }));
      const claims = base64url(JSON.stringify({ iss: issuer, sub: user, aud: url.searchParams.get("service"), exp: now + 600, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access }));
      const signature = sign("sha256", Buffer.from(`${header}.${claims}`), privateKey).toString("base64url");
      return Response.json({ token: `${header}.${claims}.${signature}`, expires_in: 600 });
    },
  });
  return { realm: `http://127.0.0.1:${server.port}/token`, service, issuer, rootCert: cert, scopesAsked, stop: () => server.stop(true) };
}

/** Runs oci-storage without blocking this process (servers in it keep answering). */
export async function runAsync(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  const stdin = options.stdin === undefined ? "ignore" : typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin;
  const proc = Bun.spawn([BINARY, ...args], { stdin: stdin as any, env, cwd: options.cwd, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout: new TextDecoder().decode(stdout), stderr, stdoutBytes: new Uint8Array(stdout) };
}

/** Runs a command without blocking; throws unless it succeeds. */
export async function shAsync(argv: string[]): Promise<string> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} failed: ${stderr}`);
  return stdout;
}
