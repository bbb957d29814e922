/**
 * Layer content through import-layer, applydiff, mount, changes, diffsize and diff: real tars
 * from GNU tar and Python's tarfile, with whiteouts, an opaque directory, a directory replaced
 * by a file, links, a FIFO, owners and an xattr; then a container's changes made through its
 * mount, diffed and applied again.
 */
import { layerTar } from "../../drivers/store-helpers.ts";
import { makeTar } from "../../helpers/fixtures.ts";
import type { Scenario, Step } from "../harness.ts";

/** GNU tar: the base tree. */
const base = makeTar({
  "etc/": "",
  "etc/os-release": "ID=base\n",
  "etc/hosts": "127.0.0.1 localhost\n",
  "usr/lib/lib.so": "library",
  "usr/lib/link": "-> lib.so",
  "var/cache/a": "a",
  "var/cache/b": "b",
  "opt/dir/file": "in a directory",
  "home/": "",
});

/** Python tarfile (PAX): whiteouts, an opaque directory, replacements, links, a FIFO, owners, an xattr. */
const upper = layerTar([
  { name: "etc/.wh.hosts", data: "" },
  { name: "var/cache/", type: "dir" },
  { name: "var/cache/.wh..wh..opq", data: "" },
  { name: "var/cache/new", data: "after the opaque marker" },
  { name: "usr/lib/.wh.link", data: "" },
  { name: "opt/dir", data: "a file where a directory was" },
  { name: "home/user/", type: "dir", mode: 0o700, uid: 1000, gid: 1000 },
  { name: "home/user/secret", data: "mine", mode: 0o600, uid: 1000, gid: 1000 },
  { name: "home/user/alias", type: "hardlink", link: "home/user/secret", uid: 1000, gid: 1000 },
  { name: "home/pipe", type: "fifo", mode: 0o644 },
  { name: "home/tagged", data: "with an xattr", xattrs: { "user.origin": "tarfile" } },
  { name: "usr/lib/newlink", type: "symlink", link: "../../etc/os-release" },
]);

/** GNU tar of a tree that holds whiteout files itself. */
const gnuWhiteouts = makeTar({ "etc/.wh.os-release": "", "home/.wh.pipe": "", "srv/data": "served\n" });

/** Layers from the three tars and a container on them whose mount is changed by hand. */
const build: Step[] = [
  { args: ["import-layer", "-j", "-i", "base", "-f", base], stdout: "json" },
  { args: ["create-layer", "-i", "upper", "base"] },
  { args: ["applydiff", "-f", upper, "upper"] },
  { args: ["import-layer", "-i", "gnu", "-f", gnuWhiteouts, "upper"], stdout: "ignore" },
  { args: ["create-image", "-i", "img", "gnu"] },
  { args: ["create-container", "-i", "ctr", "img"] },
  { args: ["container", "-j", "ctr"], stdout: "json", save: (out) => ({ clayer: JSON.parse(out)[0].layer }) },
  { args: ["mount", "ctr"], save: "mnt", stdout: "ignore" },
  { sh: "cd {{mnt}} && rm opt/dir && rm -r var/cache && echo changed > srv/data && mkdir -p new/dir && echo x > new/dir/x && rm home/user/alias && chmod 0750 home" },
  { args: ["unmount", "ctr"] },
  // The container's diff, applied to a new layer on the image's top, gives the container's tree.
  { sh: "{{cli}} diff -u {{clayer}} > {{tmp}}/container.tar" },
  { args: ["create-layer", "-i", "replay", "gnu"] },
  { args: ["applydiff", "-f", "{{tmp}}/container.tar", "replay"] },
];

export default [
  {
    name: "whiteouts and opaque directories through import-layer, applydiff, mount and diff",
    steps: [
      ...build,
      { args: ["layer", "-j", "upper"], stdout: "json" },
      { args: ["mount", "upper"], stdout: "tree" },
      { args: ["unmount", "upper"] },
      { args: ["diffsize", "upper"] },
      { args: ["diff", "-u", "upper"], stdout: "tar" },
      { args: ["diff", "upper"], stdout: "tar" },
      { args: ["mount", "gnu"], stdout: "tree" },
      { args: ["unmount", "gnu"] },
      { args: ["diff", "-u", "gnu"], stdout: "tar" },
      { args: ["diffsize", "{{clayer}}"] },
      { args: ["diff", "-u", "{{clayer}}"], stdout: "tar" },
      { args: ["mount", "replay"], stdout: "tree" },
      { args: ["unmount", "replay"] },
      { args: ["mount", "ctr"], stdout: "tree" },
      { args: ["unmount", "ctr"] },
      { args: ["diffsize", "replay", "{{clayer}}"] },
    ],
  },
  {
    name: "changes of applied layers, of a container's layer, and between two layers",
    overlayPeer: "vfs",
    known: "overlay-changes-as-naive",
    steps: [
      ...build,
      { args: ["changes", "upper"], stdout: "lines" },
      { args: ["changes", "upper", "base"], stdout: "lines" },
      { args: ["changes", "gnu"], stdout: "lines" },
      { args: ["changes", "{{clayer}}"], stdout: "lines" },
      { args: ["changes", "replay", "{{clayer}}"], stdout: "lines" },
      { args: ["changes", "-j", "gnu", "base"], stdout: "json-unordered" },
    ],
  },
] satisfies Scenario[];
