/**
 * AUFS metadata in layer tars, as 1.43's vfs applies it (its archive.UnpackLayer): a hard link
 * into the top-level .wh..wh.plnk/ store becomes a copy of the stored file with the stored
 * file's header, other top-level .wh..wh.* entries are skipped, and the missing parents of every
 * entry (whiteouts and skipped entries too) are made 0755 first. 1.43's overlay extracts AUFS
 * metadata as ordinary paths instead, so on overlay ours is compared with 1.43's vfs
 * (known difference overlay-aufs-metadata-as-vfs).
 */
import { layerTar } from "../../drivers/store-helpers.ts";
import type { Scenario, Step } from "../harness.ts";

/** What an AUFS-era `docker save` holds: the hard-link store, links into it, AUFS markers. */
const aufs = layerTar([
  { name: ".wh..wh.plnk", type: "dir", mode: 0o700 },
  { name: ".wh..wh.plnk/1234.5678", data: "shared content", mode: 0o4751, uid: 9, gid: 7 },
  { name: "bin", type: "dir" },
  { name: "bin/one", type: "hardlink", link: ".wh..wh.plnk/1234.5678", mode: 0o600, uid: 1, gid: 1 },
  { name: "bin/two", type: "hardlink", link: "./.wh..wh.plnk/1234.5678" },
  { name: "bin/three", type: "hardlink", link: "bin/one", mode: 0o640, uid: 3, gid: 3 },
  { name: ".wh..wh.aufs", data: "marker" },
  { name: ".wh..wh.orph", type: "dir", mode: 0o700 },
  { name: ".wh..wh.orph/gone", data: "orphan" },
  { name: "deep/er/file", data: "in directories the tar does not list" },
]);

/** A link to a stored file that is not there, and a link naming the store with a leading "/" (an ordinary path to 1.43). */
const missingStored = layerTar([{ name: "one", type: "hardlink", link: ".wh..wh.plnk/999" }]);
const absoluteStored = layerTar([
  { name: ".wh..wh.plnk/1", data: "stored" },
  { name: "one", type: "hardlink", link: "/.wh..wh.plnk/1" },
]);

/** Whiteouts and opaque markers in directories nothing made, an AUFS marker below the top. */
const whiteoutParents = layerTar([
  { name: "a/b/.wh.c", data: "" },
  { name: "p/q/.wh..wh..opq", data: "" },
  { name: "m/.wh..wh.foo", data: "" },
  { name: "z/f", data: "f" },
]);

function mounted(ref: string): Step[] {
  return [{ args: ["mount", ref], stdout: "tree" }, { args: ["unmount", ref] }];
}

export default [
  {
    name: "AUFS hard-link store and metadata entries through import-layer and applydiff",
    overlayPeer: "vfs",
    known: "overlay-aufs-metadata-as-vfs",
    steps: [
      { args: ["import-layer", "-i", "imported", "-f", aufs] },
      ...mounted("imported"),
      { args: ["layer", "-j", "imported"], stdout: "json" },
      { args: ["create-layer", "-i", "applied"] },
      { args: ["applydiff", "-f", aufs, "applied"] },
      ...mounted("applied"),
      // The stored file is not in the layer, so neither tool can give the applied tar back.
      { args: ["diff", "-u", "imported"], stdout: "ignore" },
      { args: ["import-layer", "-f", missingStored], stdout: "ignore" },
      { args: ["import-layer", "-f", absoluteStored], stdout: "ignore" },
      { args: ["layers"] },
    ],
  },
  {
    // On overlay whiteouts are character devices, which a mounted tree hides: the directories made for them are
    // compared on vfs (test/archive/apply.test.ts checks both styles).
    drivers: ["vfs"],
    name: "whiteouts in directories the tar does not list: their parents are made",
    steps: [{ args: ["import-layer", "-i", "w", "-f", whiteoutParents] }, ...mounted("w")],
  },
] satisfies Scenario[];
