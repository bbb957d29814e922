/**
 * Issue 9, item 2, and read-only image stores in general (docs/cli-contract.md §2.8): a store
 * built first, then seen through --storage-opt <driver>.imagestore=; the harness checks that
 * its files do not change.
 */
import { makeTar } from "../../helpers/fixtures.ts";
import type { Scenario, Step } from "../harness.ts";

const tar = makeTar({ "etc/": "", "etc/os-release": "ID=read-only\n", "bin/tool": "#!/bin/sh\n" });

/** The read-only store: a layer, a child of it, an image with a digest, metadata and a data item. */
const readOnlyStore: Step[] = [
  { args: ["import-layer", "-i", "ROL", "-n", "rolayer", "-f", tar] },
  { args: ["create-layer", "-i", "ROTOP", "ROL"] },
  { args: ["create-image", "-i", "ROI", "-n", "roimage", "-m", "ro meta", "-d", `sha256:${"a".repeat(64)}`, "ROTOP"] },
  { args: ["set-image-data", "ROI", "manifest"], stdin: "{}" },
  { args: ["create-image", "-i", "ROI2", "-n", "second", "-n", "third", "ROL"] },
];

export default [
  {
    name: "add-names on an image of a read-only store, then use and delete what it made",
    readOnlyStore,
    steps: [
      { args: ["images", "-j"], stdout: "json" },
      { args: ["layers", "-j"], stdout: "json" },
      { args: ["image", "roimage"] },
      { args: ["add-names", "-n", "NEW", "roimage"] },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["image", "NEW"] },
      { args: ["image", "ROI"] },
      { args: ["image", "roimage"] },
      { args: ["get-names", "roimage"] },
      { args: ["list-image-data", "NEW"] },
      { args: ["get-image-data", "NEW", "manifest"] },
      { args: ["get-image-data-size", "NEW", "manifest"] },
      { args: ["get-image-data-digest", "NEW", "manifest"] },
      { args: ["metadata", "NEW"] },
      { args: ["add-names", "-j", "-n", "NEW2", "roimage"] },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["create-container", "-n", "ctr", "NEW"] },
      { args: ["container", "ctr"] },
      { args: ["mount", "ctr"], stdout: "tree", save: "mnt" },
      { sh: "echo written > {{mnt}}/new-file" },
      { args: ["unmount", "ctr"] },
      { args: ["mount", "ctr"], stdout: "tree" },
      { args: ["unmount", "ctr"] },
      { args: ["delete-image", "NEW"], stderr: true },
      { args: ["delete-container", "ctr"], stderr: true },
      { args: ["delete-image", "NEW"], stderr: true, known: "delete-image-of-read-only-record" },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["get-names", "roimage"] },
      { args: ["layers"] },
    ],
  },
  {
    name: "set-names on images of a read-only store, and what may not be done to a read-only store",
    readOnlyStore,
    steps: [
      { args: ["set-names", "-n", "A", "-n", "B", "roimage"] },
      { args: ["add-names", "-n", "C", "second"] },
      { args: ["set-names", "ROI2"] },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["images"] },
      { args: ["create-image", "-n", "taken", ""] },
      { args: ["set-names", "-n", "taken", "ROI"], stderr: true },
      { args: ["add-names", "-n", "x", "rolayer"], stderr: true },
      { args: ["delete-layer", "ROL"], stderr: true },
      { args: ["delete-image", "roimage"], stderr: true },
      { args: ["delete-container", "roimage"], stderr: true },
      { args: ["set-metadata", "-m", "x", "ROL"], stderr: true },
      { args: ["set-image-data", "ROI", "x"], stdin: "x", stderr: true },
      { args: ["mount", "ROL"], stderr: true },
      { args: ["applydiff", "-f", tar, "ROL"], stderr: true },
      { args: ["create-layer", "-i", "CHILD", "rolayer"] },
      { args: ["mount", "CHILD"], stdout: "tree" },
      { args: ["unmount", "CHILD"] },
      { args: ["create-image", "-i", "OWN", "CHILD"] },
      { args: ["layers", "-t"] },
      { args: ["diff", "-u", "ROL"], stdout: "tar" },
      { args: ["changes", "ROTOP"], stdout: "lines" },
      { args: ["diffsize", "ROL"] },
    ],
  },
] satisfies Scenario[];
