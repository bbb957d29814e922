/**
 * Compiling src/main.ts into one self-contained binary, shared by scripts/build.ts (the binary for
 * this machine, dist/oci-storage) and scripts/release.ts (the release binaries for every target).
 */
import { $ } from "bun";
import { readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { startChunks, startGraphInOneChunk } from "./start-chunk.ts";

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

/** How every program is compiled: the binary, and the floor program scripts/bench.ts measures it against. */
const COMPILE_OPTIONS = {
  target: "bun",
  format: "esm",
  // Modules reached only through import() become chunks of their own inside the binary, loaded
  // (with the node: modules they import) only by the commands that need them (docs/benchmarks.md).
  splitting: true,
  minify: true,
  sourcemap: "inline",
  bytecode: true,
  metafile: true,
  throw: false,
} as const satisfies Omit<Bun.BuildConfig, "entrypoints">;

/** What a compile needs besides the entry points: where to write and for which machine. */
interface CompileOutput {
  outfile: string;
  bunTarget?: string;
}

/** Runs Bun's bundler in compile mode; a failure is thrown as the bundler's messages in one string. */
async function compile(entrypoints: string[], output: CompileOutput, extra: Partial<Bun.BuildConfig> = {}): Promise<Bun.BuildOutput> {
  const result = await Bun.build({
    ...COMPILE_OPTIONS,
    ...extra,
    entrypoints,
    compile: {
      outfile: output.outfile,
      ...(output.bunTarget ? { target: output.bunTarget as Bun.Build.CompileTarget } : {}),
      // A compiled binary would otherwise read .env and bunfig.toml from whatever directory it is run in.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
  });
  removeSourceMaps(output.outfile);
  if (!result.success) throw new BuildFailure(result.logs.map((log) => `${log.level}: ${log.message}`).join("\n"));
  return result;
}

/** The bundler's messages of a failed compile. */
class BuildFailure extends Error {}

/**
 * Compiles the binary. A target other than this machine's needs Bun's runtime for it, which Bun
 * downloads from the npm registry into its cache (~/.bun/install/cache, or $BUN_INSTALL_CACHE_DIR)
 * the first time; when that fails, the CompileError says so in one line.
 */
export async function compileBinary(request: CompileRequest): Promise<void> {
  const main = join(ROOT, "src/main.ts");
  const workers = WORKER_ENTRIES.map((path) => join(ROOT, path));
  let result: Bun.BuildOutput;
  try {
    result = await compile([main, ...workers], request, {
      plugins: [startGraphInOneChunk(main, workers)],
      define: {
        BUILD_VERSION: JSON.stringify(request.info.version),
        BUILD_COMMIT: JSON.stringify(request.info.commit),
        BUILD_TARGET: JSON.stringify(request.targetName),
      },
    });
  } catch (e) {
    if (e instanceof BuildFailure) throw new CompileError(compileFailure(request, e.message));
    throw e;
  }
  const chunks = startChunks(result.metafile!, main);
  if (chunks.length > 2) {
    rmSync(request.outfile, { force: true });
    throw new CompileError(
      `cannot build ${request.targetName}: the modules every command loads came out as ${chunks.length - 1} chunks instead of one ` +
        `(is a module main.ts imports also loaded by import()? see scripts/start-chunk.ts)`,
    );
  }
}

/** Compiles one more program for this machine with the binary's flags (scripts/bench-floor.ts for the benchmark). */
export async function compileProgram(entry: string, outfile: string): Promise<void> {
  try {
    await compile([entry], { outfile });
  } catch (e) {
    if (e instanceof BuildFailure) throw new CompileError(`cannot build ${entry}: ${e.message.split("\n")[0]}`);
    throw e;
  }
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
