/**
 * Finding a registry's endpoint (GET /v2/) when connections fail: a dropped connection is tried
 * again, a failed TLS handshake is not. A raw TCP server on 127.0.0.1 plays a plain-http
 * registry that resets the first plain connections it gets.
 */
import { afterEach, expect, test } from "bun:test";
import { RegistryClient } from "../../src/transports/registry/client.ts";

let server: { stop(closeActive: boolean): void } | undefined;
afterEach(() => server?.stop(true));

/** A plain-http "registry" that resets its first `drops` plain connections; counts TLS and plain connections. */
function flakyRegistry(drops: number) {
  const seen = { tls: 0, plain: 0 };
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, bytes) {
        if (bytes[0] === 0x16) {
          seen.tls++;
          socket.end("HTTP/1.0 400 Bad Request\r\n\r\n");
        } else if (++seen.plain <= drops) {
          socket.terminate();
        } else {
          socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
      },
    },
  });
  server = listener;
  return { host: `127.0.0.1:${listener.port}`, seen };
}

test("a dropped connection to GET /v2/ is tried again; the failed TLS handshake before it is not", async () => {
  const registry = flakyRegistry(2);
  const log: string[] = [];
  const client = new RegistryClient(registry.host, "app", { verify: false, debug: (line) => log.push(line) });
  expect((await client.endpoint()).href).toBe(`http://${registry.host}/`);
  expect(registry.seen).toEqual({ tls: 1, plain: 3 });
  expect(log.filter((line) => line.includes("retrying"))).toEqual([`GET http://${registry.host}/v2/: ECONNRESET, retrying`, `GET http://${registry.host}/v2/: ECONNRESET, retrying`]);
});

test("a registry that keeps dropping connections is one error naming it and what happened, after five tries", async () => {
  const registry = flakyRegistry(Infinity);
  const client = new RegistryClient(registry.host, "app", { verify: false });
  const error = await client.endpoint().catch((e: Error) => e);
  // What the plain connection met, not the handshake that --tls-verify=false let it skip.
  expect(String(error)).toBe(`RegistryError: ${registry.host}: pinging the registry: connection reset by peer`);
  expect(registry.seen.plain).toBe(5);
});
