/**
 * TLS settings for one registry host, read as containers/image reads them: the system's CAs,
 * plus a per-host certificate directory — `--cert-dir DIR` when given, else the first of
 * `~/.config/containers/certs.d/HOST[:PORT]`, `/etc/containers/certs.d/HOST[:PORT]` and
 * `/etc/docker/certs.d/HOST[:PORT]` that exists. In that directory `*.crt` files are extra CA
 * certificates and each `NAME.cert` with its `NAME.key` is a client certificate.
 * `--tls-verify=false` turns certificate checks off (and lets the client fall back to plain
 * http, see endpoint.ts).
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { InvalidArgumentError, ioError } from "../../errors.ts";

/** What the command line says about TLS. */
export interface TlsOptions {
  /** --tls-verify (default true). */
  verify?: boolean;
  /** --cert-dir DIR */
  certDir?: string;
}

/** The options handed to Bun's fetch as `tls`. */
export interface FetchTls {
  rejectUnauthorized: boolean;
  ca?: string[];
  cert?: string;
  key?: string;
}

/** The certificate directories searched for host[:port], in order. */
export function certDirsFor(hostPort: string, options: TlsOptions): string[] {
  if (options.certDir) return [options.certDir];
  return [join(homedir(), ".config", "containers", "certs.d", hostPort), join("/etc/containers/certs.d", hostPort), join("/etc/docker/certs.d", hostPort)];
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw ioError("open", path, error);
  }
}

/** The TLS settings for one host: what fetch is given, and where they came from (for messages). */
export interface HostTls {
  fetch: FetchTls;
  /** The client certificate file used, if any. */
  clientCertFile?: string;
}

/** The TLS settings for host[:port]. */
export function tlsFor(hostPort: string, options: TlsOptions): HostTls {
  const result: FetchTls = { rejectUnauthorized: options.verify !== false };
  const dir = certDirsFor(hostPort, options).find((candidate) => existsSync(candidate));
  if (dir === undefined) return { fetch: result };
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw ioError("open", dir, error);
  }
  const extraCas = names.filter((name) => name.endsWith(".crt")).map((name) => readText(join(dir, name)));
  if (extraCas.length > 0) result.ca = [...rootCertificates, ...extraCas];
  let clientCertFile: string | undefined;
  for (const name of names.filter((n) => n.endsWith(".cert"))) {
    const keyName = `${name.slice(0, -".cert".length)}.key`;
    if (!names.includes(keyName)) throw new InvalidArgumentError(`${join(dir, name)}: missing key ${keyName} for the client certificate`);
    if (clientCertFile !== undefined) continue;
    clientCertFile = join(dir, name);
    result.cert = readText(clientCertFile);
    result.key = readText(join(dir, keyName));
  }
  for (const name of names.filter((n) => n.endsWith(".key"))) {
    const certName = `${name.slice(0, -".key".length)}.cert`;
    if (!names.includes(certName)) throw new InvalidArgumentError(`${join(dir, name)}: missing client certificate ${certName} for the key`);
  }
  return { fetch: result, clientCertFile };
}
