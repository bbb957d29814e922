/**
 * Compiling src/main.ts into one self-contained binary, shared by scripts/build.ts (the binary for
 * this machine, dist/oci-storage) and scripts/release.ts (the release binaries for every target).
 */
import { $ } from "bun";
import { readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";

/** The repository's root directory. */
export const ROOT = join(import.meta.dir, "..");

/** Worker modules are extra entry points: `new Worker(new URL("./x.ts", import.meta.url))` finds them inside the binary. */
const WORKER_ENTRIES = ["src/archive/gzip-worker.ts", "src/archive/decompress-worker.ts"];

/** A compile that failed, with one line saying why. */
export class CompileError extends Error {
  override name = "CompileError";
}

/** What a binary reports about itself in `version`: the package version and the commit it was built from. */
export interface BuildInfo {
  version: string;
  /** The short commit hash, "-dirty" when tracked files differ from it; "unknown" outside a git checkout. */
  commit: string;
}

/** The version of package.json and the commit of the checkout. */
export async function buildInfo(): Promise<BuildInfo> {
  const pkg = await Bun.file(join(ROOT, "package.json")).json();
  const head = await $`git -C ${ROOT} rev-parse --short HEAD`.nothrow().quiet();
  if (head.exitCode !== 0) return { version: pkg.version, commit: "unknown" };
  const changes = await $`git -C ${ROOT} status --porcelain --untracked-files=no`.nothrow().quiet();
  const dirty = changes.exitCode === 0 && changes.stdout.toString().trim() !== "";
  return { version: pkg.version, commit: `${head.stdout.toString().trim()}${dirty ? "-dirty" : ""}` };
}

export interface CompileRequest {
  outfile: string;
  /** Bun's `--target` (e.g. "bun-linux-arm64"); absent: the Bun that runs this script, for this machine. */
  bunTarget?: string;
  /** What `version` prints as Target. */
  targetName: string;
  info: BuildInfo;
}

/**
 * Compiles the binary. A target other than this machine's needs Bun's runtime for it, which Bun
 * downloads from the npm registry into its cache (~/.bun/install/cache, or $BUN_INSTALL_CACHE_DIR)
 * the first time; when that fails, the CompileError says so in one line.
 */
/** How every program is compiled: the binary, and the floor program scripts/bench.ts measures it against. */
const COMPILE_FLAGS = [
  // Modules reached only through import() become chunks of their own inside the binary, loaded
  // (with the node: modules they import) only by the commands that need them (docs/benchmarks.md).
  "--splitting",
  "--minify",
  "--sourcemap=inline",
  "--bytecode",
  "--format=esm",
  // A compiled binary would otherwise read .env and bunfig.toml from whatever directory it is run in.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];

export async function compileBinary(request: CompileRequest): Promise<void> {
  const define = (name: string, value: string) => ["--define", `${name}=${JSON.stringify(value)}`];
  const command = [
    process.execPath,
    "build",
    ...[join(ROOT, "src/main.ts"), ...WORKER_ENTRIES.map((path) => join(ROOT, path))],
    "--compile",
    ...(request.bunTarget ? [`--target=${request.bunTarget}`] : []),
    ...COMPILE_FLAGS,
    ...define("BUILD_VERSION", request.info.version),
    ...define("BUILD_COMMIT", request.info.commit),
    ...define("BUILD_TARGET", request.targetName),
    "--outfile",
    request.outfile,
  ];
  const proc = Bun.spawnSync(command, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  removeSourceMaps(request.outfile);
  if (proc.exitCode !== 0) throw new CompileError(compileFailure(request, `${proc.stderr}\n${proc.stdout}`));
}

/** Compiles one more program for this machine with the binary's flags (scripts/bench-floor.ts for the benchmark). */
export async function compileProgram(entry: string, outfile: string): Promise<void> {
  const proc = Bun.spawnSync([process.execPath, "build", entry, "--compile", ...COMPILE_FLAGS, "--outfile", outfile], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  removeSourceMaps(outfile);
  if (proc.exitCode !== 0) throw new CompileError(`cannot build ${entry}: ${`${proc.stderr}`.trim().split("\n")[0]}`);
}

/** The .map files bun writes beside a binary, which embeds its source maps (stack traces name src/ lines). */
function removeSourceMaps(outfile: string): void {
  const dir = dirname(outfile);
  for (const name of readdirSync(dir)) if (name.endsWith(".map")) rmSync(join(dir, name));
}

/** One line for a failed `bun build`: a runtime that could not be downloaded, else bun's first error line. */
function compileFailure(request: CompileRequest, output: string): string {
  const download = /Failed to download '([^']+)': ?(.*)/.exec(output);
  if (download) {
    return (
      `cannot build ${request.targetName}: downloading Bun's runtime ${download[1]} from the npm registry failed (${download[2]!.trim() || "no reason given"}); ` +
      `building for another CPU needs access to registry.npmjs.org, or that runtime in Bun's cache (~/.bun/install/cache or $BUN_INSTALL_CACHE_DIR)`
    );
  }
  const lines = output.split("\n").map((line) => line.trim());
  const error = lines.find((line) => /^error\b/i.test(line)) ?? lines.find((line) => line !== "" && !/^\[[\d.]+m?s\]/.test(line));
  return `cannot build ${request.targetName}: bun build failed: ${error ?? "no output"}`;
}
