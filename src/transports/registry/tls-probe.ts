/**
 * Why a TLS handshake with a registry failed. Bun's fetch reports every failed handshake alike
 * (EPROTO), whether the port speaks plain http or the registry refused the client certificate
 * (or wanted one); a handshake of node:tls, with the same client certificate and no
 * certificate check, tells them apart by the TLS alert it gets. Only run after a failure.
 */
import { connect } from "node:tls";
import type { HandshakeRefusal } from "./errors.ts";

const PROBE_TIMEOUT_MS = 5000;

/** Probes host[:port] (default 443) with the client certificate (if any) the failed request used. */
export function probeHandshake(hostPort: string, clientCert?: { cert: string; key: string }): Promise<HandshakeRefusal> {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort);
  const host = match?.[1]?.replace(/^\[|\]$/g, "") ?? hostPort;
  const port = match?.[2] ? Number(match[2]) : 443;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (refusal: HandshakeRefusal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(refusal);
    };
    const socket = connect({ host, port, servername: /^[\d.]+$|:/.test(host) ? undefined : host, rejectUnauthorized: false, ...clientCert }, () => {
      // TLS 1.3 servers refuse a client certificate after the client's side of the handshake is done: ask for something to hear it.
      socket.write(`GET /v2/ HTTP/1.1\r\nHost: ${hostPort}\r\nConnection: close\r\n\r\n`);
    });
    const timer = setTimeout(() => finish("unknown"), PROBE_TIMEOUT_MS);
    socket.on("data", () => finish("unknown"));
    socket.on("error", (error: { code?: string; message?: string }) => {
      const code = `${error.code ?? ""} ${error.message ?? ""}`;
      if (/WRONG_VERSION_NUMBER|HTTP_REQUEST/i.test(code)) finish("plain-http");
      else if (/BAD_CERTIFICATE|CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED/i.test(code)) finish("client-certificate");
      else finish("unknown");
    });
    socket.on("close", () => finish("unknown"));
  });
}
