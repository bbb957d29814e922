/**
 * Measures ways to copy a tree for the vfs driver (docs/decisions/0003-vfs-copy.md).
 * Usage: bun scripts/bench-copy-tree.ts SOURCE_DIR WORK_DIR [ROUNDS] [VARIANT...]
 * Each round copies SOURCE_DIR to WORK_DIR/copy with every variant in turn, timing the copy
 * alone (wall clock and CPU seconds, user+system, of the copying process) and then the following
 * sync; the copy is removed and flushed before the next one.
 * With BENCH_EXT4_IMAGE=/path/img (root only), WORK_DIR is instead a fresh ext4 filesystem made in
 * that image and loop-mounted before every run, so that no run pays for the deletions of the last.
 */
import * as fs from "node:fs";
import * as os from "node:os";
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

/** Each variant returns the CPU seconds it used, or undefined to take this process's. */
const variants: Record<string, (dst: string) => Promise<number | void>> = {
  "copyFileSync": ours({ kind: "sync" }),
  "Bun.write": ours({ kind: "pool", inFlight: 1, copy: bunWriteKeepingMode }),
  "pool-2": ours({ kind: "pool", inFlight: 2 }),
  "pool-4": ours({ kind: "pool", inFlight: 4 }),
  "pool-8": ours({ kind: "pool", inFlight: 8 }),
  "cp -a": async (dst) => {
    const result = Bun.spawnSync(["cp", "-a", "--reflink=auto", `${source}/.`, dst]);
    if (result.exitCode !== 0) throw new Error(result.stderr.toString());
    return Number(result.resourceUsage.cpuTime.total) / 1e6;
  },
};

function flush(): void {
  Bun.spawnSync(["sync"]);
}

function run(argv: string[]): void {
  const result = Bun.spawnSync(argv, { stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`);
}

const ext4Image = process.env.BENCH_EXT4_IMAGE;
function freshWorkDir(): void {
  if (ext4Image) {
    Bun.spawnSync(["umount", work!]);
    run(["mkfs.ext4", "-F", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", ext4Image]);
    fs.mkdirSync(work!, { recursive: true });
    run(["mount", "-o", "loop", ext4Image, work!]);
  }
  fs.rmSync(`${work}/copy`, { recursive: true, force: true });
  fs.mkdirSync(`${work}/copy`);
}

const names = wanted.length > 0 ? wanted : Object.keys(variants);
const results = new Map<string, Array<{ copy: number; cpu: number; sync: number }>>();
for (let round = 0; round < Number(roundsText); round++) {
  console.log(`round ${round + 1}: load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  for (const name of names) {
    const dst = `${work}/copy`;
    freshWorkDir();
    flush();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const childCpu = await variants[name]!(dst);
    const copied = performance.now();
    const cpuUsed = process.cpuUsage(cpuBefore);
    flush();
    const synced = performance.now();
    const cpu = typeof childCpu === "number" ? childCpu : (cpuUsed.user + cpuUsed.system) / 1e6;
    const entry = { copy: (copied - started) / 1000, cpu, sync: (synced - copied) / 1000 };
    results.set(name, [...(results.get(name) ?? []), entry]);
    console.log(`round ${round + 1} ${name.padEnd(14)} copy ${entry.copy.toFixed(2)} s  cpu ${cpu.toFixed(2)} s  sync ${entry.sync.toFixed(2)} s`);
  }
}
fs.rmSync(`${work}/copy`, { recursive: true, force: true });
if (ext4Image) Bun.spawnSync(["umount", work]);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const best = (xs: number[]) => Math.min(...xs);
console.log("\nvariant         best copy  median copy  best cpu  median copy+sync");
for (const [name, runs] of results) {
  const cells = [best(runs.map((r) => r.copy)), median(runs.map((r) => r.copy)), best(runs.map((r) => r.cpu)), median(runs.map((r) => r.copy + r.sync))];
  console.log(`${name.padEnd(14)}  ${cells.map((c, i) => c.toFixed(2).padStart([9, 11, 8, 16][i]!)).join("  ")}`);
}
