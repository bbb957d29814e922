/** Runs the compiled binary against throw-away stores, for end-to-end tests. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BINARY = join(import.meta.dir, "..", "..", "dist", "oci-storage");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
}

export interface RunOptions {
  stdin?: Uint8Array | string | Blob;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** containers-storage 1.43, the peer whose behaviour oci-storage follows. */
export const PEER_BINARY = "/usr/bin/containers-storage";

/** Why side-by-side checks against containers-storage cannot run here, or undefined when they can. */
export function peerSkipReason(): string | undefined {
  return existsSync(PEER_BINARY) ? undefined : `${PEER_BINARY} is not installed (apt-get install containers-storage)`;
}

/** Runs oci-storage (or another binary, such as PEER_BINARY) with exactly these arguments. */
export function runBinary(args: string[], options: RunOptions = {}, binary = BINARY): RunResult {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  const stdin = options.stdin === undefined ? "ignore" : typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin;
  const proc = Bun.spawnSync([binary, ...args], { stdin: stdin as any, env, cwd: options.cwd, stdout: "pipe", stderr: "pipe" });
  return { code: proc.exitCode ?? -1, stdout: proc.stdout.toString(), stderr: proc.stderr.toString(), stdoutBytes: new Uint8Array(proc.stdout) };
}

/** A store in a temp dir, used through the binary with fixed --graph/--run/-s options. */
export class TestStore {
  readonly dir = mkdtempSync(join(tmpdir(), "oci-storage-test-"));
  readonly graph: string;
  readonly run: string;

  constructor(
    readonly driver: string,
    /** The binary run: oci-storage, or PEER_BINARY for a side-by-side check. */
    readonly binary = BINARY,
    /** The graph root, when it must live elsewhere (on a small file system, say); removed by destroy() too. */
    graph?: string,
    /** The run root, when it must live elsewhere (on a small file system, say); not removed by destroy(). */
    run?: string,
  ) {
    this.graph = graph ?? join(this.dir, "root");
    this.run = run ?? join(this.dir, "run");
  }

  /** The global options that select this store. */
  get globals(): string[] {
    return ["--graph", this.graph, "--run", this.run, "--storage-driver", this.driver];
  }

  /** Runs a command on this store. */
  cli(args: string[], options: RunOptions = {}): RunResult {
    return runBinary([...this.globals, ...args], options, this.binary);
  }

  /** Runs a command that must succeed and returns its stdout. */
  ok(args: string[], options: RunOptions = {}): string {
    const r = this.cli(args, options);
    if (r.code !== 0) throw new Error(`oci-storage ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Runs a command that must succeed with JSON output and returns it parsed. */
  json(args: string[], options: RunOptions = {}): any {
    return JSON.parse(this.ok(args, options));
  }

  /** Unmounts everything (oci-storage only) and removes the temp dir. */
  destroy(): void {
    // containers-storage 1.43's shutdown -f loops forever while a layer is mounted: a peer store is unmounted by its test.
    if (this.binary === BINARY) this.cli(["shutdown", "-f"]);
    rmSync(this.graph, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Drivers to test on this machine, and why any is skipped. */
export function availableDrivers(): string[] {
  const drivers = ["vfs"];
  if (overlaySkipReason() === undefined) drivers.push("overlay");
  return drivers;
}

let overlayReason: string | undefined | null = null;

/** Why overlay tests cannot run here (not root, no overlayfs), or undefined when they can. */
export function overlaySkipReason(): string | undefined {
  if (overlayReason !== null) return overlayReason;
  if (process.getuid?.() !== 0) overlayReason = "overlay tests need root";
  else if (!readFileSync("/proc/filesystems", "utf8").includes("overlay")) overlayReason = "the kernel has no overlayfs";
  else overlayReason = undefined;
  if (overlayReason) console.log(`skipping overlay driver tests: ${overlayReason}`);
  return overlayReason;
}
