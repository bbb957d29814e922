/**
 * A small HTTP proxy in front of a test registry that misbehaves on purpose, once each. Blob
 * downloads (by digest): it cuts a blob's body halfway (the response ends short of its
 * Content-Length), the same and then ignores Range for that blob (as a registry that always
 * sends whole blobs does), answers 503, changes a byte that decompression does not check (the gzip
 * header's MTIME, so only the digest can catch it), or sends a blob slowly. Uploads: it drops
 * the connection in the middle of a blob's PATCH after passing its first bytes on to the
 * registry (which then holds a partial upload, as when a network fails), answers 503 to the
 * PATCH, to the PUT that closes an upload or to the manifest PUT, or passes a PATCH on slowly.
 * It records every request (method, path, Range, status) so tests can see what the client did
 * about it. Runs in the test process and stops with `stop()` (or with it).
 */

export type Fault = "cut" | "cut-ignoring-range" | "503" | "corrupt" | "slow";

/** What happens to the first request of each kind of upload step. */
export interface UploadFaults {
  /** The PATCH that carries a blob's bytes: dropped after `cutAfter` bytes, refused with 503, or passed on slowly. */
  patch?: "cut" | "503" | "slow";
  /** Bytes passed on before a PATCH is cut (default 1 MiB). */
  cutAfter?: number;
  /** The PUT that closes an upload. */
  finish?: "503";
  /** The PUT of a manifest. */
  manifest?: "503";
}

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
  /** Bytes of upload bodies passed on to the registry so far. */
  uploadBytesPassed(): number;
  stop(): void;
}

/** The upload step a request is, if it is one. */
function uploadStep(method: string, path: string, search: string): keyof Omit<UploadFaults, "cutAfter"> | undefined {
  if (method === "PATCH" && path.includes("/blobs/uploads/")) return "patch";
  if (method === "PUT" && path.includes("/blobs/uploads/") && search.includes("digest=")) return "finish";
  if (method === "PUT" && path.includes("/manifests/")) return "manifest";
  return undefined;
}

/**
 * Proxies to http://upstream; `faults` maps a blob digest to what happens to its first GET,
 * `uploads` says what happens to uploads, and `redirectBlobs`, when given, answers every blob
 * GET with a 307 to the URL it returns (as registries send blobs from their storage).
 */
export function startFaultProxy(upstream: string, faults: Record<string, Fault>, uploads: UploadFaults = {}, redirectBlobs?: (digest: string) => string): FaultProxy {
  const requests: ProxiedRequest[] = [];
  const done = new Set<string>();
  /** Blobs whose Range headers are no longer passed on. */
  const wholeOnly = new Set<string>();
  let sent = 0;
  let passed = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(request, self) {
      const url = new URL(request.url);
      const record: ProxiedRequest = { method: request.method, path: url.pathname, range: request.headers.get("range"), status: 0 };
      requests.push(record);
      const step = uploadStep(request.method, url.pathname, url.search);
      const uploadFault = step && !done.has(step) ? uploads[step] : undefined;
      if (uploadFault && step) done.add(step);
      const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
      const fault = request.method === "GET" && digest && !done.has(digest) ? faults[digest] : undefined;
      if (fault && digest) done.add(digest);
      if (redirectBlobs && digest && request.method === "GET") {
        record.status = 307;
        return new Response(null, { status: 307, headers: { location: redirectBlobs(digest) } });
      }
      if (fault === "503" || uploadFault === "503") {
        record.status = 503;
        return new Response("busy", { status: 503, headers: { "retry-after": "0" } });
      }
      const headers = new Headers(request.headers);
      headers.delete("host");
      if (digest && wholeOnly.has(digest)) headers.delete("range");
      if (fault === "cut-ignoring-range" && digest) wholeOnly.add(digest);
      let body: ReadableStream<Uint8Array> | null = request.body;
      let cut: Promise<void> | undefined;
      if (step === "patch" && request.body) {
        headers.delete("content-length");
        headers.delete("transfer-encoding");
        const limit = uploadFault === "cut" ? (uploads.cutAfter ?? 1 << 20) : Infinity;
        const slow = uploadFault === "slow";
        const reader = request.body.getReader();
        let forwarded = 0;
        let signalCut: () => void = () => {};
        cut = new Promise<void>((resolve) => (signalCut = resolve));
        body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const next = await reader.read();
            if (next.done) return controller.close();
            if (slow) await Bun.sleep(20);
            const chunk = next.value.subarray(0, Math.max(0, limit - forwarded));
            forwarded += chunk.byteLength;
            passed += chunk.byteLength;
            if (chunk.byteLength > 0) controller.enqueue(chunk);
            if (forwarded >= limit) {
              // Give the registry the bytes so far, then break its connection and the client's.
              await Bun.sleep(50);
              controller.error(new Error("cut by the fault proxy"));
              signalCut();
            }
          },
        });
      }
      const forwarding = fetch(`http://${upstream}${url.pathname}${url.search}`, { method: request.method, headers, body, redirect: "manual", duplex: "half" } as RequestInit);
      if (cut) {
        const outcome = await Promise.race([forwarding.then((answer) => ({ answer }), () => ({ answer: undefined })), cut.then(() => ({ answer: undefined }))]);
        if (!outcome.answer) {
          forwarding.catch(() => {});
          record.status = -1;
          // Stop answering: the connection is closed once it has been idle a moment.
          self.timeout(request, 1);
          return new Promise<Response>(() => {});
        }
        return relay(outcome.answer, request, record, upstream);
      }
      const answer = await forwarding;
      if (!digest || request.method !== "GET" || !answer.ok) return relay(answer, request, record, upstream);
      record.status = answer.status;
      const outHeaders = new Headers(answer.headers);
      outHeaders.delete("content-encoding");
      const bytes = new Uint8Array(await answer.arrayBuffer());
      if (fault === "corrupt") bytes[4]! ^= 0xff;
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          const half = bytes.length >> 1;
          const step = fault === "slow" ? 16 << 10 : bytes.length;
          for (let offset = 0; offset < bytes.length; offset += step) {
            const cutting = fault === "cut" || fault === "cut-ignoring-range";
            const end = cutting ? Math.min(offset + step, half) : Math.min(offset + step, bytes.length);
            controller.enqueue(bytes.subarray(offset, end));
            sent += end - offset;
            if (cutting && end >= half) {
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
  return { host: `127.0.0.1:${server.port}`, requests, blobBytesSent: () => sent, uploadBytesPassed: () => passed, stop: () => server.stop(true) };
}

/** The registry's answer as it is, less its content-encoding (which fetch already undid), with locations pointing at the proxy. */
function relay(answer: Response, request: Request, record: ProxiedRequest, upstream: string): Response {
  record.status = answer.status;
  const headers = new Headers(answer.headers);
  headers.delete("content-encoding");
  const location = headers.get("location");
  if (location?.startsWith(`http://${upstream}/`)) headers.set("location", `http://${new URL(request.url).host}/${location.slice(`http://${upstream}/`.length)}`);
  return new Response(request.method === "HEAD" ? null : answer.body, { status: answer.status, headers });
}
