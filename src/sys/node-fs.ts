/**
 * node:fs, loaded on first use instead of at start: evaluating it costs a command ~2.6M
 * instructions (docs/benchmarks.md), so the paths that most commands never take (kernel mounts,
 * layer content, other stores, a full disk) load it when they need it.
 */

/** The node:fs module, loaded by the first call. */
export function nodeFs(): typeof import("node:fs") {
  return import.meta.require("node:fs");
}
