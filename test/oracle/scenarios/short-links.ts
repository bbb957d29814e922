/** Issue 9, item 4: overlay's l/ short links, removed behind the store's back, are made again by mount (docs/robustness.md). */
import { makeTar } from "../../helpers/fixtures.ts";
import type { Scenario } from "../harness.ts";

const tar = makeTar({ "etc/": "", "etc/hosts": "127.0.0.1 localhost\n" });

export default [
  {
    name: "mount after the l/ short links of the overlay home are gone",
    drivers: ["overlay"],
    steps: [
      { args: ["import-layer", "-i", "base", "-f", tar] },
      { args: ["create-layer", "-i", "mid", "base"] },
      { args: ["create-image", "-i", "img", "mid"] },
      { args: ["create-container", "-i", "ctr", "img"] },
      { sh: "rm {{graph}}/overlay/l/$(cat {{graph}}/overlay/base/link)" },
      { args: ["mount", "ctr"], stdout: "tree" },
      { args: ["unmount", "ctr"] },
      { sh: "rm -r {{graph}}/overlay/l" },
      { args: ["mount", "mid"], stdout: "tree" },
      { args: ["unmount", "mid"] },
      { sh: "rm -r {{graph}}/overlay/l/*" },
      { args: ["mount", "ctr"], stdout: "tree", save: "mnt" },
      { sh: "echo written > {{mnt}}/new" },
      { args: ["unmount", "ctr"] },
      { sh: "test -L {{graph}}/overlay/l/$(cat {{graph}}/overlay/base/link) && test -L {{graph}}/overlay/l/$(cat {{graph}}/overlay/mid/link)" },
      { args: ["diff", "-u", "mid"], stdout: "tar" },
    ],
  },
] satisfies Scenario[];
