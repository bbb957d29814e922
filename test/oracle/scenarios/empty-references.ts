/** Issue 9, item 1: an empty reference means "none" (docs/cli-contract.md §2.4). */
import type { Scenario, Step } from "../harness.ts";

/** parent=""; parent=$(create-layer "$parent"), n times, saving l1…ln. */
function chain(n: number): Step[] {
  return Array.from({ length: n }, (_, i) => ({ args: ["create-layer", i === 0 ? "" : `{{l${i}}}`], save: `l${i + 1}` }));
}

/** Mount, write, unmount, mount again, look, unmount: what 1.43 allows a container on no image. */
function useContainer(name: string): Step[] {
  return [
    { args: ["mount", name], stdout: "tree", save: "mnt" },
    { sh: "echo hi > {{mnt}}/f && mkdir {{mnt}}/d" },
    { args: ["unmount", name] },
    { args: ["mount", name], stdout: "tree" },
    { args: ["unmount", name] },
    { args: ["container", name] },
    { args: ["container", "-j", name], stdout: "json" },
  ];
}

export default [
  {
    name: 'a chain built with parent=$(create-layer "$parent") and an image on its top',
    steps: [
      ...chain(12),
      { args: ["layers", "-j"], stdout: "json" },
      { args: ["layer", "{{l12}}"] },
      { args: ["create-image", "-n", "top", "{{l12}}"] },
      { args: ["create-container", "-n", "c", "top"] },
      { args: ["mount", "c"], stdout: "tree" },
      { args: ["unmount", "c"] },
      { args: ["layers", "-t"] },
    ],
  },
  {
    name: 'import-layer "", create-image "", create-container "" and --volatile ""',
    steps: [
      { args: ["import-layer", "-j", ""], stdin: "", stdout: "json" },
      { args: ["create-image", "-j", ""], stdout: "json", save: (out) => ({ img: JSON.parse(out).id }) },
      { args: ["image", "{{img}}"] },
      { args: ["images", "-j"], stdout: "json" },
      { args: ["create-container", "-n", "plain", ""] },
      ...useContainer("plain"),
      { args: ["create-container", "--volatile", "-n", "volatile", ""] },
      ...useContainer("volatile"),
      { args: ["create-container", "-n", "onempty", "{{img}}"] },
      { args: ["containers", "-j"], stdout: "json" },
      { args: ["layers"] },
      { args: ["delete-container", "plain"] },
      { args: ["delete-image", "{{img}}"], stderr: true },
      { args: ["delete-container", "onempty"] },
      { args: ["delete-image", "{{img}}"], stderr: true },
    ],
  },
] satisfies Scenario[];
