/** How references resolve (docs/cli-contract.md §2.4): exact IDs, names, unique prefixes, a container's layer ID. */
import type { Scenario } from "../harness.ts";

export default [
  {
    name: "IDs, names and unique ID prefixes of layers, images and containers",
    steps: [
      { args: ["create-layer", "-i", "aaaa1111", "-n", "first"] },
      { args: ["create-layer", "-i", "aaaa2222", "aaaa1"] },
      { args: ["create-layer", "-i", "x2", "-n", "x1"] },
      { args: ["create-layer", "-i", "x1", "-n", "x2"] },
      // An exact ID comes before a name, a name before a prefix; an ambiguous prefix is unknown.
      { args: ["layer", "x2"] },
      { args: ["layer", "x1"] },
      { args: ["layer", "aaaa"], stderr: true },
      { args: ["layer", "aaaa2"] },
      { args: ["get-names", "aaaa1"] },
      { args: ["create-layer", "first"], save: "l" },
      { args: ["layer", "-j", "{{l:12}}"], stdout: "json" },
      { args: ["create-layer", "{{l:10}}"], save: "child" },
      { args: ["create-image", "-n", "img", "{{child:8}}"], save: "img" },
      { args: ["image", "{{img:12}}"] },
      { args: ["images-by-digest", "sha256:0000000000000000000000000000000000000000000000000000000000000000"] },
      { args: ["create-container", "-n", "ctr", "{{img:9}}"], save: "ctr" },
      { args: ["container", "-j", "{{ctr:11}}"], stdout: "json", save: (out) => ({ clayer: JSON.parse(out)[0].layer }) },
      // A container also resolves by its layer's ID.
      { args: ["container", "{{clayer}}"] },
      { args: ["mount", "{{ctr:12}}"], stdout: "tree" },
      { args: ["mounted", "{{clayer}}"] },
      { args: ["unmount", "{{clayer}}"] },
      { args: ["exists", "-l", "{{l:8}}"] },
      { args: ["exists", "-i", "{{img:8}}"] },
      { args: ["exists", "-c", "{{ctr:8}}"] },
      { args: ["exists", "-i", "{{l:8}}"] },
      { args: ["metadata", "{{ctr:8}}"] },
      { args: ["set-metadata", "-m", "by prefix", "{{img:7}}"] },
      { args: ["metadata", "-q", "img"] },
      { args: ["delete-container", "{{ctr:10}}"] },
      { args: ["delete-image", "{{img:10}}"], stderr: true },
      { args: ["delete-layer", "{{l:12}}"], stderr: true },
      { args: ["layers"] },
    ],
  },
] satisfies Scenario[];
