/**
 * Registry authentication as the Distribution spec and docker's token flow describe it: the
 * `WWW-Authenticate` challenge of a 401 says Basic or Bearer; Basic sends the credentials
 * with each request; Bearer asks the challenge's realm for a token for
 * `service` and the scopes a request needs (`repository:NAME:pull,push`), with the
 * credentials as Basic auth or anonymously, and the token is kept for the rest of the run.
 */
import type { Credentials } from "./credentials.ts";
import { RegistryAccessError, RegistryError } from "./errors.ts";

/** One challenge of a WWW-Authenticate header. */
export interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header value into its challenges (Basic and Bearer; others dropped). */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return [];
  const challenges: Challenge[] = [];
  const pattern = /([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)((?:[A-Za-z0-9_-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)/g;
  for (const match of header.matchAll(pattern)) {
    const scheme = match[1]!.toLowerCase();
    if (scheme !== "basic" && scheme !== "bearer") continue;
    const params: Record<string, string> = {};
    for (const param of match[2]!.matchAll(/([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
      params[param[1]!.toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, "$1") : param[3]!;
    }
    challenges.push({ scheme, params });
  }
  return challenges;
}

/** The value of an Authorization header for Basic credentials. */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
}

/** Fetches a token for a scope set; what it needs from the client. */
export interface TokenFetch {
  fetch(url: URL, init: RequestInit): Promise<Response>;
  /** For messages: "127.0.0.1:5000/repository". */
  host: string;
  credentials: Credentials | undefined;
}

/** Bearer tokens, one per scope set, kept for the run. */
export class TokenCache {
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(
    private readonly challenge: Challenge,
    private readonly client: TokenFetch,
  ) {}

  /** A token for the scopes (sorted, so that the same set shares one token). */
  token(scopes: string[]): Promise<string> {
    const key = [...new Set(scopes)].sort().join(" ");
    let token = this.tokens.get(key);
    if (!token) {
      token = this.fetchToken(key === "" ? [] : key.split(" "));
      this.tokens.set(key, token);
      token.catch(() => this.tokens.delete(key));
    }
    return token;
  }

  private async fetchToken(scopes: string[]): Promise<string> {
    const realm = this.challenge.params.realm;
    if (!realm) throw new RegistryError(`${this.client.host}: the registry's Bearer challenge has no realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(`${this.client.host}: the registry's Bearer realm "${realm}" is not a URL`);
    }
    if (this.challenge.params.service) url.searchParams.set("service", this.challenge.params.service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = {};
    if (this.client.credentials) headers.authorization = basicAuthorization(this.client.credentials);
    const response = await this.client.fetch(url, { headers });
    const what = `getting a token from ${url.host}${scopes.length ? ` for ${scopes.join(" ")}` : ""}`;
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new RegistryAccessError(`${this.client.host}: ${what}: ${this.client.credentials ? "credentials rejected" : "authentication required"} (HTTP ${response.status})`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new RegistryError(`${this.client.host}: ${what}: HTTP ${response.status}`);
    }
    let json: { token?: unknown; access_token?: unknown };
    try {
      json = (await response.json()) as typeof json;
    } catch {
      throw new RegistryError(`${this.client.host}: ${what}: the answer is not JSON`);
    }
    const token = typeof json.token === "string" && json.token !== "" ? json.token : json.access_token;
    if (typeof token !== "string" || token === "") throw new RegistryError(`${this.client.host}: ${what}: the answer has no token`);
    return token;
  }
}
