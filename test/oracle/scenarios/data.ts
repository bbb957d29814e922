/** Named data items of layers, images and containers (docs/cli-contract.md §2.9). */
import type { Scenario } from "../harness.ts";

const MANIFEST = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}';

export default [
  {
    // Store-level: records and names only, the driver plays no part.
    drivers: ["vfs"],
    name: "data items: set, list, get, sizes and digests, the manifest digest, missing items",
    steps: [
      { args: ["create-layer", "-i", "L"] },
      { args: ["set-layer-data", "L", "note"], stdin: "layer note" },
      { args: ["list-layer-data", "L"] },
      { args: ["get-layer-data", "L", "note"] },
      { args: ["get-layer-data", "L", "missing"], stderr: true },
      { args: ["layer", "-j", "L"], stdout: "json" },
      { args: ["create-image", "-i", "I", "L"] },
      { args: ["set-image-data", "I", "manifest"], stdin: MANIFEST },
      { sh: "printf 'bin\\000ary\\n' > {{tmp}}/item" },
      { args: ["set-image-data", "-f", "{{tmp}}/item", "I", "config"] },
      { args: ["set-image-data", "I", "empty"], stdin: "" },
      { args: ["set-image-data", "I", ""], stdin: "x", stderr: true },
      { args: ["list-image-data", "-j", "I"], stdout: "json" },
      { args: ["get-image-data", "I", "config"] },
      { args: ["get-image-data", "-f", "{{tmp}}/out", "I", "config"] },
      { sh: "od -c {{tmp}}/out" },
      { args: ["get-image-data-size", "I", "config"] },
      { args: ["get-image-data-digest", "I", "manifest"] },
      { args: ["get-image-data", "I", "missing"], stderr: true },
      { args: ["get-image-data-size", "I", "missing"], stderr: true },
      { args: ["get-image-data-digest", "I", "missing"], stderr: true },
      { args: ["image", "I"] },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["images-by-digest", "sha256:c9c0a6a43ad0a9ed14af17a27ae40c0b63f1b1c5d8dc62e2c2fa7a4a9e226da6"] },
      { args: ["set-image-data", "I", "manifest-sha256:other"], stdin: "{}" },
      { args: ["image", "-j", "I"], stdout: "json" },
      { args: ["set-image-data", "I", "config"], stdin: "replaced" },
      { args: ["get-image-data-size", "I", "config"] },
      { args: ["create-container", "-i", "C", "I"] },
      { args: ["set-container-data", "C", "state"], stdin: "running" },
      { args: ["list-container-data", "-j", "C"], stdout: "json" },
      { args: ["get-container-data", "C", "state"] },
      { args: ["get-container-data-size", "C", "state"] },
      { args: ["get-container-data-digest", "C", "state"] },
      { args: ["get-container-data", "C", "missing"], stderr: true, known: "get-container-data-missing-item" },
      { args: ["containers"] },
      { args: ["container", "C"] },
      { args: ["set-image-data", "nosuch", "x"], stdin: "x", stderr: true },
      { args: ["set-container-data", "nosuch", "x"], stdin: "x", stderr: true },
      { args: ["set-layer-data", "nosuch", "x"], stdin: "x", stderr: true },
    ],
  },
] satisfies Scenario[];
