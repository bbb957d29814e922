/**
 * A small HTTP proxy in front of a test registry that misbehaves on purpose, once per blob:
 * it cuts a blob's body halfway (the response ends short of its Content-Length), answers 503,
 * changes a byte that decompression does not check (the gzip header's MTIME, so only the
 * digest can catch it), or sends a blob slowly. It records every request (method, path, Range) so tests can see
 * what the client did about it. Runs in the test process and stops with `stop()` (or with it).
 */

export type Fault = "cut" | "503" | "corrupt" | "slow";

export interface ProxiedRequest {
  method: string;
  path: string;
  range: string | null;
  status: number;
}

export interface FaultProxy {
  host: string;
  requests: ProxiedRequest[];
  /** Bytes of blob bodies sent so far. */
  blobBytesSent(): number;
  stop(): void;
}

/** Proxies to http://upstream; `faults` maps a blob digest to what happens to its first GET. */
export function startFaultProxy(upstream: string, faults: Record<string, Fault>): FaultProxy {
  const requests: ProxiedRequest[] = [];
  const done = new Set<string>();
  let sent = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(request) {
      const url = new URL(request.url);
      const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
      const fault = request.method === "GET" && digest && !done.has(digest) ? faults[digest] : undefined;
      if (fault && digest) done.add(digest);
      const record: ProxiedRequest = { method: request.method, path: url.pathname, range: request.headers.get("range"), status: 0 };
      requests.push(record);
      if (fault === "503") {
        record.status = 503;
        return new Response("busy", { status: 503, headers: { "retry-after": "0" } });
      }
      const headers = new Headers(request.headers);
      headers.delete("host");
      const answer = await fetch(`http://${upstream}${url.pathname}${url.search}`, { method: request.method, headers, body: request.body, redirect: "manual" });
      record.status = answer.status;
      const outHeaders = new Headers(answer.headers);
      outHeaders.delete("content-encoding");
      if (!digest || request.method !== "GET" || !answer.ok) {
        return new Response(request.method === "HEAD" ? null : answer.body, { status: answer.status, headers: outHeaders });
      }
      const bytes = new Uint8Array(await answer.arrayBuffer());
      if (fault === "corrupt") bytes[4]! ^= 0xff;
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          const half = bytes.length >> 1;
          const step = fault === "slow" ? 16 << 10 : bytes.length;
          for (let offset = 0; offset < bytes.length; offset += step) {
            const end = fault === "cut" ? Math.min(offset + step, half) : Math.min(offset + step, bytes.length);
            controller.enqueue(bytes.subarray(offset, end));
            sent += end - offset;
            if (fault === "cut" && end >= half) {
              await Bun.sleep(20);
              controller.close();
              return;
            }
            if (fault === "slow") await Bun.sleep(20);
          }
          controller.close();
        },
      });
      return new Response(stream, { status: answer.status, headers: outHeaders });
    },
  });
  return { host: `127.0.0.1:${server.port}`, requests, blobBytesSent: () => sent, stop: () => server.stop(true) };
}
