/**
 * Registry credentials as podman and skopeo find and keep them (containers-auth.json(5)):
 * `--creds USER[:PASS]` first; else the auth file given by `--authfile` or
 * `$REGISTRY_AUTH_FILE` (then that file alone); else, in order, the primary file
 * (`$XDG_RUNTIME_DIR/containers/auth.json`, or `/run/containers/UID/auth.json` without
 * XDG_RUNTIME_DIR), `$XDG_CONFIG_HOME/containers/auth.json`, and docker's
 * `$DOCKER_CONFIG/config.json` (`~/.docker/config.json`). Keys are a host or a host with a
 * repository path (most specific wins), or docker's legacy URL keys
 * ("https://index.docker.io/v1/"); docker.io's other names count as docker.io.
 * `login` and `logout` write the primary file (or the one named) with mode 0600.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { InvalidArgumentError, NotFoundError, ioError } from "../../errors.ts";

/** A user name and password (or identity token). Never printed. */
export interface Credentials {
  username: string;
  password: string;
}

/** Where credentials come from, as the command line gave it. */
export interface CredentialOptions {
  /** --creds USER[:PASS] */
  creds?: string;
  /** --authfile PATH (else $REGISTRY_AUTH_FILE) */
  authFile?: string;
}

/** A malformed auth file or credential option; the message never holds a secret. */
export class CredentialsError extends InvalidArgumentError {
  override name = "CredentialsError";
}

/** Parses --creds USER[:PASS]; PASS may contain colons. */
export function parseCreds(text: string): Credentials {
  const colon = text.indexOf(":");
  const username = colon < 0 ? text : text.slice(0, colon);
  if (username === "") throw new CredentialsError("invalid --creds: the user name is empty (expected USER[:PASSWORD])");
  return { username, password: colon < 0 ? "" : text.slice(colon + 1) };
}

/** The auth file named by --authfile or $REGISTRY_AUTH_FILE, if any. */
function explicitAuthFile(options: CredentialOptions): string | undefined {
  return options.authFile || process.env.REGISTRY_AUTH_FILE || undefined;
}

/** The file login writes and logout edits: the one named, else the primary file. */
export function writableAuthFile(options: CredentialOptions): string {
  const named = explicitAuthFile(options);
  if (named) return named;
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, "containers", "auth.json") : join("/run/containers", String(process.getuid?.() ?? 0), "auth.json");
}

/** The files searched for credentials, in order. */
export function authFilesSearched(options: CredentialOptions): string[] {
  const named = explicitAuthFile(options);
  if (named) return [named];
  const configHome = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  const dockerDir = process.env.DOCKER_CONFIG || join(homedir(), ".docker");
  return [writableAuthFile(options), join(configHome, "containers", "auth.json"), join(dockerDir, "config.json")];
}

interface AuthFile {
  auths: Record<string, { auth?: string; identitytoken?: string; [key: string]: unknown }>;
  [key: string]: unknown;
}

/** Reads an auth file; a missing file is an empty one. */
function readAuthFile(path: string): AuthFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { auths: {} };
    throw ioError("open", path, error);
  }
  let json: unknown;
  try {
    json = text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    throw new CredentialsError(`${path}: not a valid auth file (it does not parse as JSON)`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new CredentialsError(`${path}: not a valid auth file (not a JSON object)`);
  const file = json as AuthFile;
  if (file.auths === undefined) file.auths = {};
  if (typeof file.auths !== "object" || file.auths === null) throw new CredentialsError(`${path}: "auths" is not an object`);
  return file;
}

/** docker.io's other names as one. */
export function normalizeRegistryHost(host: string): string {
  return host === "index.docker.io" || host === "registry-1.docker.io" ? "docker.io" : host;
}

/** An auth file key as a comparable "host[/path]": scheme and a legacy "/v1/" path dropped. */
function normalizeKey(key: string): string {
  if (key.startsWith("http://") || key.startsWith("https://")) {
    const host = key.slice(key.indexOf("//") + 2).split("/")[0]!;
    return normalizeRegistryHost(host);
  }
  const slash = key.indexOf("/");
  return slash < 0 ? normalizeRegistryHost(key) : `${normalizeRegistryHost(key.slice(0, slash))}${key.slice(slash)}`;
}

/** Decodes an "auth" field (base64 of USER:PASS); where names the file and key for errors. Identity tokens and credential helpers are not read. */
function decodeAuth(entry: { auth?: string }, where: string): Credentials | undefined {
  if (typeof entry.auth !== "string" || entry.auth === "") return undefined;
  const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw new CredentialsError(`${where}: the "auth" field is not base64 of USER:PASSWORD`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The keys to try for a repository, most specific first: host/a/b, host/a, host. */
function lookupKeys(host: string, repository: string): string[] {
  const normalized = normalizeRegistryHost(host);
  const keys: string[] = [];
  const parts = repository.split("/");
  for (let n = parts.length; n > 0; n--) keys.push(`${normalized}/${parts.slice(0, n).join("/")}`);
  keys.push(normalized);
  return keys;
}

/** Credentials for a repository at a registry host, or undefined for anonymous access. */
export function findCredentials(host: string, repository: string, options: CredentialOptions): Credentials | undefined {
  if (options.creds !== undefined) return parseCreds(options.creds);
  const wanted = lookupKeys(host, repository);
  for (const path of authFilesSearched(options)) {
    const file = readAuthFile(path);
    const byKey = new Map<string, [string, { auth?: string; identitytoken?: string }]>();
    for (const [key, entry] of Object.entries(file.auths)) {
      if (entry && typeof entry === "object") byKey.set(normalizeKey(key), [key, entry]);
    }
    for (const key of wanted) {
      const found = byKey.get(key);
      if (!found) continue;
      const credentials = decodeAuth(found[1], `${path}: auths["${found[0]}"]`);
      if (credentials) return credentials;
    }
  }
  return undefined;
}

/** Writes an auth file atomically with mode 0600 (its directory 0700 when made). */
function writeAuthFile(path: string, file: AuthFile): void {
  try {
    if (!existsSync(dirname(path))) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const temporary = `${path}.tmp-${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify(file, null, "\t")}\n`, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, path);
  } catch (error) {
    throw ioError("write", path, error);
  }
}

/** The auth file key for a login: a host (docker.io for Docker Hub) or host/repository. */
export function loginKey(target: string): string {
  return normalizeKey(target.replace(/^(https?:\/\/)/, "").replace(/\/+$/, ""));
}

/** Stores credentials for a key (login). Returns the file written. */
export function storeCredentials(key: string, credentials: Credentials, options: CredentialOptions): string {
  const path = writableAuthFile(options);
  const file = readAuthFile(path);
  file.auths[key] = { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64") };
  writeAuthFile(path, file);
  return path;
}

/** Removes the credentials of a key (logout); NotFoundError when there were none. */
export function removeCredentials(key: string, options: CredentialOptions): string {
  const path = writableAuthFile(options);
  const file = readAuthFile(path);
  const matching = Object.keys(file.auths).filter((existing) => normalizeKey(existing) === key);
  if (matching.length === 0) throw new NotFoundError(`not logged into ${key}`);
  for (const existing of matching) delete file.auths[existing];
  writeAuthFile(path, file);
  return path;
}

/** Removes every credential from the writable auth file (logout --all). */
export function removeAllCredentials(options: CredentialOptions): string {
  const path = writableAuthFile(options);
  if (!existsSync(path)) return path;
  const file = readAuthFile(path);
  file.auths = {};
  writeAuthFile(path, file);
  return path;
}
