/** Real multi-layer OCI images for transport tests, made with umoci, and tools to compare trees. */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sh } from "./fixtures.ts";

/**
 * Makes an OCI layout at `layout` holding `ref`: a base layer (files, directories, a symlink, a
 * hard link, a FIFO, a setuid file owned by 1000:1000, a path over 100 bytes, a file of
 * `bigBytes` bytes) and an upper layer that deletes a file and a directory (whiteouts),
 * replaces a directory's contents, changes modes and owners, and adds files. umoci unpacks
 * and repacks as root.
 */
export function makeUmociImage(work: string, layout: string, ref: string, bigBytes = 200_000): void {
  sh(["umoci", "init", "--layout", layout], work);
  sh(["umoci", "new", "--image", `${layout}:${ref}`], work);
  const base = join(work, `bundle-base-${ref.replace(/[^a-z0-9]/gi, "_")}`);
  sh(["umoci", "unpack", "--image", `${layout}:${ref}`, base], work);
  const root = join(base, "rootfs");
  mkdirSync(join(root, "etc/conf.d"), { recursive: true });
  mkdirSync(join(root, "usr/share/doomed"), { recursive: true });
  writeFileSync(join(root, "etc/hostname"), "base\n");
  writeFileSync(join(root, "etc/gone"), "deleted in the upper layer\n");
  writeFileSync(join(root, "etc/conf.d/a.conf"), "a=1\n");
  writeFileSync(join(root, "usr/share/doomed/x"), "x\n");
  writeFileSync(join(root, "big.bin"), crypto.getRandomValues(new Uint8Array(Math.min(bigBytes, 65536))).join(",").repeat(Math.ceil(bigBytes / 65536)));
  symlinkSync("hostname", join(root, "etc/hostname.link"));
  const long = join(root, "usr/lib", "a-directory-name-long-enough".repeat(3), "and-a-file-name-that-makes-the-path-longer-than-one-hundred.txt");
  mkdirSync(join(long, ".."), { recursive: true });
  writeFileSync(long, "long\n");
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  mkdirSync(join(root, "var/cache/app"), { recursive: true });
  for (const name of ["one", "two", "three"]) writeFileSync(join(root, "var/cache/app", name), `${name}\n`);
  writeFileSync(join(root, "usr/bin/tool"), "#!/bin/sh\necho tool\n");
  sh(["sh", "-c", "chown 1000:1000 usr/bin/tool && chmod 4755 usr/bin/tool && ln usr/bin/tool usr/bin/tool-alias && mkdir -p run && mkfifo run/ctl.fifo", "sh"], root);
  sh(["umoci", "repack", "--image", `${layout}:${ref}`, base], work);
  rmSync(base, { recursive: true, force: true });
  const upper = join(work, `bundle-upper-${ref.replace(/[^a-z0-9]/gi, "_")}`);
  sh(["umoci", "unpack", "--image", `${layout}:${ref}`, upper], work);
  const upperRoot = join(upper, "rootfs");
  unlinkSync(join(upperRoot, "etc/gone"));
  rmSync(join(upperRoot, "usr/share/doomed"), { recursive: true });
  writeFileSync(join(upperRoot, "etc/hostname"), "upper\n");
  mkdirSync(join(upperRoot, "opt/app"), { recursive: true });
  writeFileSync(join(upperRoot, "opt/app/run.sh"), "#!/bin/sh\necho hi\n");
  rmSync(join(upperRoot, "var/cache/app"), { recursive: true });
  mkdirSync(join(upperRoot, "var/cache/app"));
  writeFileSync(join(upperRoot, "var/cache/app/four"), "four\n");
  sh(["sh", "-c", "chmod 0700 etc/conf.d && chown 1000:1000 etc/conf.d/a.conf", "sh"], upperRoot);
  sh(["umoci", "repack", "--image", `${layout}:${ref}`, upper], work);
  rmSync(upper, { recursive: true, force: true });
}

/** A listing of a tree (type, mode, owner, size, link target, content digest), sorted, for comparing trees. */
export function treeListing(root: string): string {
  return sh(["sh", "-c", `cd "$1" && find . -mindepth 1 ! -name '.wh..wh.*' -printf '%p %y %m %U:%G %l\\n' | sort && find . -type f ! -name '.wh..wh.*' -exec sha256sum {} + | sort -k2`, "sh", root]);
}

const sha256Of = (bytes: string | Uint8Array) => `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;

/**
 * Adds to the layout an OCI index named `ref` with two images made from the umoci image
 * `from`: the same layers, with configs saying linux/amd64 and linux/arm64/v8 (the config JSON
 * umoci wrote, architecture changed). Returns the manifest digests by platform.
 */
export function addMultiPlatformIndex(layout: string, from: string, ref: string): Record<"amd64" | "arm64", string> {
  const blob = (digest: string) => join(layout, "blobs/sha256", digest.slice(7));
  const put = (text: string) => {
    writeFileSync(blob(sha256Of(text)), text);
    return { digest: sha256Of(text), size: Buffer.byteLength(text) };
  };
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
  const entry = index.manifests.find((m: any) => m.annotations?.["org.opencontainers.image.ref.name"] === from);
  const manifest = JSON.parse(readFileSync(blob(entry.digest), "utf8"));
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), "utf8"));
  const digests = {} as Record<"amd64" | "arm64", string>;
  const entries = (["amd64", "arm64"] as const).map((architecture) => {
    const variant = architecture === "arm64" ? { variant: "v8" } : {};
    const configBlob = put(JSON.stringify({ ...config, architecture, ...variant }));
    const image = put(JSON.stringify({ ...manifest, config: { ...manifest.config, ...configBlob } }));
    digests[architecture] = image.digest;
    return { mediaType: "application/vnd.oci.image.manifest.v1+json", ...image, platform: { architecture, os: "linux", ...variant } };
  });
  const list = put(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: entries }));
  index.manifests.push({ mediaType: "application/vnd.oci.image.index.v1+json", ...list, annotations: { "org.opencontainers.image.ref.name": ref } });
  writeFileSync(join(layout, "index.json"), JSON.stringify(index));
  return digests;
}

/**
 * An OCI layout holding, as `ref`, the image skopeo wrote to a `dir:` directory (its manifest
 * bytes and blobs as they are, e.g. a Docker schema 2 manifest with gzip layers, or a Docker
 * manifest list and the manifests it lists), which containers/image 5.23 cannot put in a
 * layout itself.
 */
export function layoutFromDir(dir: string, layout: string, ref: string): void {
  mkdirSync(join(layout, "blobs/sha256"), { recursive: true });
  for (const name of readdirSync(dir)) {
    if (/^[0-9a-f]{64}$/.test(name)) copyFileSync(join(dir, name), join(layout, "blobs/sha256", name));
    // A list's manifests: dir: names them by digest.
    if (/^[0-9a-f]{64}\.manifest\.json$/.test(name)) copyFileSync(join(dir, name), join(layout, "blobs/sha256", name.slice(0, 64)));
  }
  const manifest = readFileSync(join(dir, "manifest.json"));
  const digest = sha256Of(manifest);
  writeFileSync(join(layout, "blobs/sha256", digest.slice(7)), manifest);
  const mediaType = JSON.parse(manifest.toString()).mediaType ?? "application/vnd.oci.image.manifest.v1+json";
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType, digest, size: manifest.length, annotations: { "org.opencontainers.image.ref.name": ref } }] }));
}
