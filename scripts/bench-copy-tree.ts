/**
 * Measures ways to copy a tree for the vfs driver (docs/decisions/0003-vfs-copy.md).
 * Usage: bun scripts/bench-copy-tree.ts SOURCE_DIR WORK_DIR [ROUNDS] [VARIANT...]
 * Each round copies SOURCE_DIR to WORK_DIR/copy with every variant in turn, timing the copy
 * alone and then the following sync; the copy is removed and flushed before the next one.
 */
import * as fs from "node:fs";
import { copyTreeWith, type DataCopyMode, type TreePath } from "../src/drivers/copy-tree.ts";

const [source, work, roundsText = "1", ...wanted] = process.argv.slice(2);
if (!source || !work) {
  console.error("usage: bun scripts/bench-copy-tree.ts SOURCE_DIR WORK_DIR [ROUNDS] [VARIANT...]");
  process.exit(2);
}

async function bunWriteKeepingMode(src: TreePath, dst: TreePath): Promise<void> {
  await Bun.write(String(dst), Bun.file(String(src)));
  fs.chmodSync(dst, fs.statSync(src).mode & 0o7777);
}

function ours(mode: DataCopyMode): (dst: string) => Promise<void> {
  return (dst) => copyTreeWith(source!, dst, {}, mode);
}

const variants: Record<string, (dst: string) => Promise<void>> = {
  "copyFileSync": ours({ kind: "sync" }),
  "Bun.write": ours({ kind: "pool", inFlight: 1, copy: bunWriteKeepingMode }),
  "pool-2": ours({ kind: "pool", inFlight: 2 }),
  "pool-4": ours({ kind: "pool", inFlight: 4 }),
  "pool-8": ours({ kind: "pool", inFlight: 8 }),
  "pool-16": ours({ kind: "pool", inFlight: 16 }),
  "cp -a": async (dst) => {
    const result = Bun.spawnSync(["cp", "-a", "--reflink=auto", `${source}/.`, dst]);
    if (result.exitCode !== 0) throw new Error(result.stderr.toString());
  },
};

function flush(): void {
  Bun.spawnSync(["sync"]);
}

const names = wanted.length > 0 ? wanted : Object.keys(variants);
const results = new Map<string, Array<{ copy: number; sync: number }>>();
for (let round = 0; round < Number(roundsText); round++) {
  for (const name of names) {
    const dst = `${work}/copy`;
    fs.rmSync(dst, { recursive: true, force: true });
    fs.mkdirSync(dst);
    flush();
    const started = performance.now();
    await variants[name]!(dst);
    const copied = performance.now();
    flush();
    const synced = performance.now();
    const entry = { copy: (copied - started) / 1000, sync: (synced - copied) / 1000 };
    results.set(name, [...(results.get(name) ?? []), entry]);
    console.log(`round ${round + 1} ${name.padEnd(14)} copy ${entry.copy.toFixed(2)} s  sync ${entry.sync.toFixed(2)} s`);
  }
}
fs.rmSync(`${work}/copy`, { recursive: true, force: true });
console.log("\nvariant         best copy  median copy  median copy+sync");
for (const [name, runs] of results) {
  const copies = runs.map((r) => r.copy).sort((a, b) => a - b);
  const totals = runs.map((r) => r.copy + r.sync).sort((a, b) => a - b);
  const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
  console.log(`${name.padEnd(14)}  ${copies[0]!.toFixed(2).padStart(8)}  ${median(copies).toFixed(2).padStart(11)}  ${median(totals).toFixed(2).padStart(16)}`);
}
