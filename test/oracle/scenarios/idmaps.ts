/**
 * Issue 9, item 3: ID maps that shift, on both drivers (docs/cli-contract.md §5). 1.43 on this
 * kernel runs overlay with idmapped mounts and records no maps, so its vfs result is the
 * reference on overlay too (overlayPeer; our overlay shifts by copying, as vfs does). Trees are
 * compared below the top directory (everything of the fixtures lives under data/): the top
 * directory's owner differs on purpose (ours belongs to container root, 1.43's vfs keeps the
 * parent's), shown once. Shifting a layer holding an owner its maps cannot map fails in ours
 * always and in 1.43 only now and then (its parallel chown loses the error), so that is
 * checked in test/e2e/idmaps.test.ts.
 */
import { layerTar } from "../../drivers/store-helpers.ts";
import type { Scenario, Step } from "../harness.ts";

/** Owners inside and outside one 65536-ID range, setuid bits, a symlink, a hard link, all under data/. */
const base = layerTar([
  { name: "data/", type: "dir", mode: 0o755 },
  { name: "data/etc/", type: "dir", mode: 0o755 },
  { name: "data/etc/passwd", data: "root:x:0:0\n" },
  { name: "data/home/user/", type: "dir", mode: 0o750, uid: 1000, gid: 1000 },
  { name: "data/home/user/file", data: "mine\n", mode: 0o640, uid: 1000, gid: 1000 },
  { name: "data/srv/", type: "dir", mode: 0o755, uid: 1, gid: 2 },
  { name: "data/srv/suid", data: "x", mode: 0o6755, uid: 3, gid: 4 },
  { name: "data/srv/hard", type: "hardlink", link: "data/srv/suid", uid: 3, gid: 4 },
  { name: "data/srv/link", type: "symlink", link: "../etc/passwd", uid: 5, gid: 6 },
]);

/** A layer tar with an owner no 65536-ID range starting at 0 maps. */
const bigId = layerTar([
  { name: "data/", type: "dir", mode: 0o755 },
  { name: "data/big", data: "big", uid: 70000, gid: 70001 },
]);

/** A small second layer. */
const upper = layerTar([
  { name: "data/", type: "dir", mode: 0o755 },
  { name: "data/etc/", type: "dir", mode: 0o755 },
  { name: "data/etc/hostname", data: "box\n", mode: 0o600, uid: 7, gid: 8 },
]);

const M1 = ["--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536"];
const M2 = ["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"];

/** The tree of a layer or container below its top directory (the top directory's owner is a deliberate difference, checked once below). */
function tree(ref: string): Step[] {
  // The mount path is the driver's (overlay's merged/ beside 1.43's vfs dir): not compared.
  return [{ args: ["mount", ref], save: "mnt", stdout: "ignore" }, { sh: "echo {{mnt}}/data", stdout: "tree" }, { args: ["unmount", ref] }];
}

/** Parent owners of a mounted layer or container, text and JSON. */
function parentOwners(kind: "layer" | "container", ref: string): Step[] {
  return [
    { args: ["mount", ref], stdout: "ignore" },
    { args: [`${kind}-parent-owners`, ref] },
    { args: [`${kind}-parent-owners`, "-j", ref], stdout: "json" },
    { args: ["unmount", ref] },
  ];
}

export default [
  {
    name: "create-layer and import-layer with ID maps on a parent with other maps",
    overlayPeer: "vfs",
    known: "idmaps-on-overlay",
    steps: [
      { args: ["import-layer", "-i", "base", "-f", base] },
      { args: ["create-layer", "-i", "m1", ...M1, "base"] },
      // Right after m1: 1.43's vfs has re-owned its vfs/dir to M1's root (see "vfs-dir-re-owned").
      ...parentOwners("layer", "m1"),
      { args: ["create-layer", "-i", "m2", ...M2, "m1"] },
      { args: ["create-layer", "-i", "m2child", "m2"] },
      { args: ["create-layer", "-i", "host", "--hostuidmap", "--hostgidmap", "m1"] },
      { args: ["create-layer", "-i", "uidonly", "--uidmap", "0:400000:65536", "m1"] },
      { args: ["import-layer", "-i", "imported", "--uidmap", "0:500000:65536", "--gidmap", "0:500000:65536", "-f", upper, "m1"] },
      ...["m1", "m2", "m2child", "host", "uidonly", "imported"].flatMap((id) => [{ args: ["layer", id] }, ...tree(id)]),
      { args: ["mount", "m1"], save: "mnt", stdout: "ignore" },
      { sh: "stat -c %u:%g {{mnt}}", known: "idmap-top-directory-owner" },
      { args: ["unmount", "m1"] },
      { args: ["layers", "-j"], stdout: "json" },
      { args: ["changes", "m1"], stdout: "lines" },
      { args: ["diffsize", "m1"] },
      { args: ["changes", "m2", "base"], stdout: "lines" },
      { args: ["import-layer", "-i", "bigid", "-f", bigId] },
      { args: ["create-layer", "-i", "bigm1", ...M1, "bigid"] },
      ...tree("bigm1"),
      { args: ["changes", "bigm1"], stdout: "lines" },
      { args: ["diff", "-u", "bigm1"], stderr: true, stdout: "tar", known: "diff-of-unmappable-owner" },
      { args: ["create-layer", "-i", "ro1", "-r", "--uidmap", "0:100:100000", "--gidmap", "0:100:100000", "base"] },
      { args: ["create-layer", "-i", "ro2", "-r", "--uidmap", "0:200000:100000", "--gidmap", "0:200000:100000", "ro1"] },
      ...tree("ro2"),
      ...["ro2", "ro1", "bigm1", "imported", "uidonly", "host", "m2child", "m2", "m1"].map((id) => ({ args: ["delete-layer", id], stderr: true })),
      { args: ["layers"] },
    ],
  },
  {
    name: "containers with ID maps on an image: one mapped top layer per distinct map, shared, deleted with the image",
    overlayPeer: "vfs",
    known: "idmaps-on-overlay",
    steps: [
      { args: ["import-layer", "-i", "base", "-f", base] },
      { args: ["create-layer", "-i", "top", "base"] },
      { args: ["create-image", "-i", "img", "-n", "image", "top"] },
      { args: ["create-container", "-i", "c1", ...M1, "image"] },
      { args: ["create-container", "-i", "c2", ...M1, "image"] },
      { args: ["create-container", "-i", "c3", ...M2, "image"] },
      // The last layer made has M2: 1.43's vfs has just re-owned its vfs/dir to M2's root, which M1 does not map.
      { args: ["mount", "c1"], stdout: "ignore" },
      { args: ["container-parent-owners", "c1"], known: "vfs-dir-re-owned" },
      { args: ["unmount", "c1"] },
      { args: ["create-container", "-i", "c4", "image"] },
      { args: ["image", "img"] },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["layers"] },
      { args: ["layers", "-j"], stdout: "json" },
      { args: ["containers", "-j"], stdout: "json" },
      { args: ["container", "c1"] },
      ...tree("c1"),
      ...tree("c3"),
      ...tree("c4"),
      { args: ["create-container", "-i", "c5", ...M1, "image"] },
      ...parentOwners("container", "c5"),
      ...parentOwners("container", "c4"),
      ...["c1", "c2", "c3", "c4", "c5"].map((id) => ({ args: ["delete-container", id] })),
      { args: ["delete-image", "img"] },
      { args: ["layers"] },
      { args: ["import-layer", "-i", "mappedbase", ...M2, "-f", upper] },
      { args: ["create-image", "-i", "mappedimg", "mappedbase"] },
      { args: ["create-container", "-i", "plain", "mappedimg"] },
      { args: ["image", "mappedimg"] },
      { args: ["layers", "-j"], stdout: "json" },
      ...tree("plain"),
      ...parentOwners("container", "plain"),
      ...parentOwners("layer", "mappedbase"),
    ],
  },
  {
    name: "containers with ID maps on an image of a read-only store: each re-owned on its own, the store never written",
    overlayPeer: "vfs",
    known: "idmaps-on-overlay",
    readOnlyStore: [
      { args: ["import-layer", "-i", "rolayer", "-f", base] },
      { args: ["create-image", "-i", "roimg", "-n", "roimage", "rolayer"] },
    ],
    steps: [
      { args: ["create-container", "-i", "r1", ...M1, "roimage"] },
      { args: ["create-container", "-i", "r2", ...M1, "roimage"] },
      { args: ["create-container", "-i", "r3", ...M2, "roimage"] },
      { args: ["create-container", "-i", "r4", "roimage"] },
      { args: ["image", "roimage"] },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["layers", "-j"], stdout: "json" },
      { args: ["containers", "-j"], stdout: "json" },
      ...tree("r1"),
      ...tree("r3"),
      ...tree("r4"),
      ...["r1", "r2", "r3", "r4"].map((id) => ({ args: ["delete-container", id] })),
      { args: ["layers"] },
    ],
  },
] satisfies Scenario[];
