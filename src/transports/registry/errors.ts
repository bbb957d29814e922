/**
 * How a registry's refusals and network failures become one-line errors: the registry and
 * repository, what was being done, and the cause — never a credential, token or header.
 */
import { IoError, NotFoundError } from "../../errors.ts";

/** The registry could not be reached or answered with an error (network, TLS, 5xx). */
export class RegistryError extends IoError {
  override name = "RegistryError";
  /** Set when trying again may help: a dropped or refused connection, a 5xx, a 429. */
  transient = false;
  /** The HTTP status the registry answered with, if it answered. */
  status: number | undefined;
}

/** Whether a failed request may succeed when tried again (network failure, 5xx, 429; not TLS, not a refusal). */
export function isTransient(error: unknown): boolean {
  return error instanceof RegistryError && error.transient;
}

/** The registry refused access (401, 403): missing or wrong credentials, or no permission. */
export class RegistryAccessError extends IoError {
  override name = "RegistryAccessError";
  constructor(message: string) {
    super(message, "EACCES");
  }
}

/** The registry has no such repository, manifest or blob (404). */
export class RegistryNotFoundError extends NotFoundError {
  override name = "RegistryNotFoundError";
}

/** The first error code and message of a Distribution API error body, if it has one. */
async function errorBody(response: Response): Promise<string | undefined> {
  try {
    const text = await response.text();
    const json = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = json.errors?.[0];
    if (!first) return undefined;
    return [first.message, first.code ? `(${first.code})` : undefined].filter(Boolean).join(" ");
  } catch {
    return undefined;
  }
}

/**
 * The error for an unexpected response. `what` says what was asked ("reading manifest 12"),
 * `where` names the repository ("127.0.0.1:5000/debian").
 */
export async function responseError(response: Response, what: string, where: string): Promise<Error> {
  const detail = await errorBody(response);
  const status = `${response.status}${response.statusText ? ` ${response.statusText.toLowerCase()}` : ""}`;
  const cause = detail ? `${detail}, HTTP ${status}` : `HTTP ${status}`;
  if (response.status === 401) return new RegistryAccessError(`${where}: ${what}: authentication required or credentials rejected (${cause})`);
  if (response.status === 403) return new RegistryAccessError(`${where}: ${what}: access denied (${cause})`);
  if (response.status === 404) return new RegistryNotFoundError(`${where}: ${what}: not found (${cause})`);
  const error = new RegistryError(`${where}: ${what}: ${cause}`);
  error.status = response.status;
  error.transient = response.status >= 500 || response.status === 429;
  return error;
}

/** TLS failure codes (Bun and Node name them alike). */
const TLS_CODES = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|EPROTO|TLS|SSL/i;

/** Whether a fetch failure was a certificate or handshake problem. */
export function isTlsFailure(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && TLS_CODES.test(code);
}

/** Whether a fetch failure was a TLS handshake that failed without saying why (Bun's EPROTO). */
export function isTlsHandshakeFailure(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "EPROTO";
}

/** What tls-probe.ts found out about a failed handshake. */
export type HandshakeRefusal = "plain-http" | "client-certificate" | "unknown";

/**
 * A fetch failure (no response at all) as one line naming the host. For a failed handshake,
 * `refusal` says why (tls-probe.ts) and `clientCertFile` names the client certificate sent.
 */
export function networkError(error: unknown, host: string, what: string, refusal?: HandshakeRefusal, clientCertFile?: string): RegistryError {
  const code = (error as { code?: unknown })?.code;
  const codeText = typeof code === "string" ? code : "";
  const certsD = `/etc/containers/certs.d/${host}/`;
  if (isTlsFailure(error) && !isTlsHandshakeFailure(error)) {
    return new RegistryError(`${host}: ${what}: TLS certificate not trusted (${codeText}); put its CA in ${certsD}ca.crt or a --cert-dir, or use --tls-verify=false`);
  }
  if (isTlsHandshakeFailure(error)) {
    if (refusal === "plain-http") return new RegistryError(`${host}: ${what}: the registry speaks plain http, not https (use --tls-verify=false to allow plain http)`);
    if (refusal === "client-certificate" && clientCertFile) return new RegistryError(`${host}: ${what}: TLS handshake refused: the registry did not accept the client certificate ${clientCertFile}`);
    if (refusal === "client-certificate") return new RegistryError(`${host}: ${what}: TLS handshake refused: the registry requires a client certificate (NAME.cert and NAME.key in ${certsD} or a --cert-dir)`);
    return new RegistryError(`${host}: ${what}: TLS handshake failed`);
  }
  const reasons: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset by peer",
    ENOTFOUND: "no such host",
    ETIMEDOUT: "connection timed out",
    EHOSTUNREACH: "no route to host",
  };
  const reason = reasons[codeText] ?? ((error as Error)?.message?.split("\n")[0] || String(error));
  const failure = new RegistryError(`${host}: ${what}: ${reason}`);
  failure.transient = codeText !== "ENOTFOUND";
  return failure;
}
