/**
 * An HTTP client for one repository of a registry (Distribution API v2): finds the endpoint
 * (https; plain http only with --tls-verify=false, as containers/image allows it), answers
 * authentication challenges (auth.ts), retries idempotent requests on dropped connections,
 * 5xx and 429 with exponential backoff (honouring Retry-After), follows redirects itself so
 * that credentials never travel to another host, and turns refusals into one-line errors
 * (errors.ts). With --debug it logs each request's method, URL and status — never a header.
 */
import { type Challenge, TokenCache, basicAuthorization, parseChallenges } from "./auth.ts";
import { type CredentialOptions, type Credentials, findCredentials } from "./credentials.ts";
import { type HandshakeRefusal, RegistryError, isTlsHandshakeFailure, networkError, responseError } from "./errors.ts";
import { probeHandshake } from "./tls-probe.ts";
import { type HostTls, type TlsOptions, tlsFor } from "./tls-config.ts";

/** What the command line says about reaching a registry. */
export interface RegistryOptions extends TlsOptions, CredentialOptions {
  /** Receives one line per request (--debug). */
  debug?: (line: string) => void;
}

/** One request; `what` names it in errors ("reading manifest 12"). */
export interface RequestOptions {
  what: string;
  /** Bearer scopes the request needs (e.g. "repository:library/debian:pull"). */
  scopes: string[];
  headers?: Record<string, string>;
  body?: RequestInit["body"] | AsyncIterable<Uint8Array>;
  /** Statuses handed back to the caller as answers; default: any 2xx. */
  accept?: number[];
  /** Retry on network failures, 5xx and 429 (default: unless the body is a stream). */
  retry?: boolean;
}

/** Attempts per idempotent request (the first one included). */
export const MAX_ATTEMPTS = 5;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 8000;
const MAX_REDIRECTS = 10;

/** The host serving the API for a registry name: Docker Hub's is registry-1.docker.io. */
export function apiHostOf(domain: string): string {
  return domain === "docker.io" ? "registry-1.docker.io" : domain;
}

/** The wait before attempt `attempt` (from 1): Retry-After when given (capped), else exponential. */
export function backoffMs(attempt: number, retryAfter?: string | null): number {
  const seconds = retryAfter ? Number(retryAfter) : NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_BACKOFF_MS);
  return Math.min(FIRST_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connection that was open and then closed or reset by the other side: worth another try. */
function isDroppedConnection(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT";
}

type AuthMode = { kind: "none" } | { kind: "basic" } | { kind: "bearer"; tokens: TokenCache };

/** A client for one repository of one registry. */
export class RegistryClient {
  /** "host[:port]/repository", for messages. */
  readonly where: string;
  private readonly apiHost: string;
  private readonly tls: HostTls;
  private readonly credentials: Credentials | undefined;
  private base: Promise<URL> | undefined;
  private auth: AuthMode = { kind: "none" };

  constructor(
    /** The registry as named in the reference (docker.io, 127.0.0.1:5000). */
    readonly registry: string,
    readonly repository: string,
    private readonly options: RegistryOptions,
  ) {
    this.where = repository ? `${registry}/${repository}` : registry;
    this.apiHost = apiHostOf(registry);
    this.tls = tlsFor(this.apiHost, options);
    this.credentials = findCredentials(registry, repository, options);
  }

  /** Writes a line to the --debug log (never a credential). */
  debug(line: string): void {
    this.options.debug?.(line);
  }

  /** Whether credentials were found for this repository (for messages). */
  get hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  /** The API base URL (https://host/ or, when allowed and https fails, http://host/), found once. */
  endpoint(): Promise<URL> {
    this.base ??= this.ping();
    return this.base;
  }

  private async ping(): Promise<URL> {
    let failure: unknown;
    try {
      return await this.pingWith("https");
    } catch (error) {
      if (error instanceof RegistryError) throw error;
      failure = error;
    }
    // Plain http only when asked for, and only from a registry (a TLS port answers http with a 400).
    if (this.options.verify === false) {
      let plainFailure: unknown;
      const answer = await this.pingWith("http").catch((error) => void (plainFailure = error));
      if (answer) return answer;
      // No TLS there and no answer over http either: what http met is the news.
      if (isTlsHandshakeFailure(failure) && !(plainFailure instanceof RegistryError)) throw networkError(plainFailure, this.registry, "pinging the registry");
    }
    let refusal: HandshakeRefusal | undefined;
    if (isTlsHandshakeFailure(failure)) {
      const { cert, key } = this.tls.fetch;
      refusal = await probeHandshake(this.apiHost, cert !== undefined && key !== undefined ? { cert, key } : undefined);
    }
    throw networkError(failure, this.registry, "pinging the registry", refusal, this.tls.clientCertFile);
  }

  /**
   * GET /v2/ over one scheme: the base URL when a registry answers (200, or 401 with its
   * challenge). A dropped connection is tried again, as every idempotent request is; a refused
   * connection or a failed TLS handshake is an answer and ends it at once.
   */
  private async pingWith(scheme: "https" | "http"): Promise<URL> {
    const url = new URL(`${scheme}://${this.apiHost}/v2/`);
    let response: Response;
    for (let attempt = 1; ; attempt++) {
      try {
        response = await this.send(url, { method: "GET" });
        break;
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || !isDroppedConnection(error)) throw error;
        await this.beforeRetry("GET", url, (error as { code?: string }).code!, attempt);
      }
    }
    await response.body?.cancel();
    if (response.status === 401) this.adoptChallenge(parseChallenges(response.headers.get("www-authenticate")));
    else if (!response.ok) throw new RegistryError(`${this.registry}: not a registry (GET /v2/ over ${scheme} answered HTTP ${response.status})`);
    return new URL(`${scheme}://${this.apiHost}/`);
  }

  /** Switches to the scheme a 401 asked for (Bearer preferred). Returns whether anything changed. */
  private adoptChallenge(challenges: Challenge[]): boolean {
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) {
      if (this.auth.kind === "bearer") return false;
      this.auth = { kind: "bearer", tokens: new TokenCache(bearer, { fetch: (url, init) => this.fetchFollowing(url, init), host: this.where, credentials: this.credentials }) };
      return true;
    }
    if (challenges.some((c) => c.scheme === "basic") && this.auth.kind === "none") {
      this.auth = { kind: "basic" };
      return true;
    }
    return false;
  }

  /** Checks the credentials (login): a token without scope, or GET /v2/ with Basic auth. */
  async checkCredentials(): Promise<void> {
    await this.request("GET", "/v2/", { what: "logging in", scopes: [] });
  }

  private async authorization(scopes: string[]): Promise<string | undefined> {
    if (this.auth.kind === "basic") return this.credentials ? basicAuthorization(this.credentials) : undefined;
    if (this.auth.kind === "bearer") return `Bearer ${await this.auth.tokens.token(scopes)}`;
    return undefined;
  }

  /**
   * Sends a request to a path under the endpoint (or an absolute URL the registry gave, such
   * as an upload location) and returns the response when its status is accepted; otherwise
   * throws a one-line error naming the repository.
   */
  async request(method: string, pathOrUrl: string, options: RequestOptions): Promise<Response> {
    const base = await this.endpoint();
    const url = new URL(pathOrUrl, base);
    const streaming = options.body !== undefined && typeof options.body === "object" && Symbol.asyncIterator in (options.body as object);
    const retry = options.retry ?? !streaming;
    let scopes = options.scopes;
    let reauthorized = false;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { ...options.headers };
      const authorization = await this.authorization(scopes);
      if (authorization) headers.authorization = authorization;
      let response: Response;
      try {
        response = await this.fetchFollowing(url, { method, headers, body: options.body as RequestInit["body"] });
      } catch (error) {
        if (retry && attempt < MAX_ATTEMPTS) {
          await this.beforeRetry(method, url, (error as { code?: string }).code ?? "failed", attempt);
          continue;
        }
        throw networkError(error, this.where, options.what);
      }
      if (response.status === 401 && !reauthorized && !streaming) {
        const challenges = parseChallenges(response.headers.get("www-authenticate"));
        const asked = challenges.find((c) => c.scheme === "bearer")?.params.scope;
        const changed = this.adoptChallenge(challenges);
        const widened = asked !== undefined && !scopes.includes(asked);
        if (changed || widened) {
          await response.body?.cancel();
          if (widened) scopes = [...scopes, asked];
          reauthorized = true;
          attempt--;
          continue;
        }
      }
      if ((options.accept ?? []).includes(response.status) || (options.accept === undefined && response.ok)) return response;
      if (retry && attempt < MAX_ATTEMPTS && (response.status >= 500 || response.status === 429)) {
        await response.body?.cancel();
        await this.beforeRetry(method, url, `HTTP ${response.status}`, attempt, response.headers.get("retry-after"));
        continue;
      }
      throw await responseError(response, options.what, this.where);
    }
  }

  /** Logs why a request is tried again (--debug) and waits the backoff before attempt + 1. */
  private async beforeRetry(method: string, url: URL, why: string, attempt: number, retryAfter?: string | null): Promise<void> {
    this.options.debug?.(`${method} ${url.href}: ${why}, retrying`);
    await sleep(backoffMs(attempt, retryAfter));
  }

  /** fetch with this host's TLS settings, following redirects; Authorization goes to the first host only. */
  private async fetchFollowing(url: URL, init: RequestInit): Promise<Response> {
    let current = url;
    let headers = { ...(init.headers as Record<string, string> | undefined) };
    for (let hop = 0; ; hop++) {
      const response = await this.send(current, { ...init, headers });
      if (response.status < 300 || response.status >= 400 || response.status === 304 || !response.headers.get("location")) return response;
      if (hop >= MAX_REDIRECTS) throw new RegistryError(`${this.where}: too many redirects from ${url.pathname}`);
      await response.body?.cancel();
      const next = new URL(response.headers.get("location")!, current);
      if (next.origin !== url.origin) {
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      current = next;
    }
  }

  private async send(url: URL, init: RequestInit): Promise<Response> {
    const sameHost = url.host === this.apiHost;
    const response = await fetch(url, { ...init, redirect: "manual", tls: sameHost ? this.tls.fetch : undefined, decompress: false } as RequestInit);
    this.options.debug?.(`${init.method ?? "GET"} ${url.origin}${url.pathname} -> ${response.status}`);
    return response;
  }
}
