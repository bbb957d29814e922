/** Real multi-layer OCI images for transport tests, made with umoci, and tools to compare trees. */
import { mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sh } from "./fixtures.ts";

/**
 * Makes an OCI layout at `layout` holding `ref`: a base layer (files, a directory, a symlink,
 * a file to be deleted, a file of `bigBytes` random bytes) and an upper layer that deletes a
 * file and a directory (whiteouts) and adds files. umoci unpacks and repacks as root.
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
  sh(["umoci", "repack", "--image", `${layout}:${ref}`, upper], work);
  rmSync(upper, { recursive: true, force: true });
}

/** A listing of a tree (type, mode, owner, size, link target, content digest), sorted, for comparing trees. */
export function treeListing(root: string): string {
  return sh(["sh", "-c", `cd "$1" && find . -mindepth 1 ! -name '.wh..wh.*' -printf '%p %y %m %U:%G %l\\n' | sort && find . -type f ! -name '.wh..wh.*' -exec sha256sum {} + | sort -k2`, "sh", root]);
}
