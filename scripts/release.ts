/**
 * `npm run release`: compiles the release binaries into dist/release/ (or --out DIR) with a
 * SHA256SUMS file that `sha256sum -c SHA256SUMS` checks. Bun fetches the runtime of each target
 * other than this machine's from the npm registry; without it the build stops with one line on
 * stderr and leaves the output directory as it was.
 */
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CompileError, ROOT, buildInfo, compileBinary } from "./compile.ts";

/** The release targets: the file name suffix (also what `version` prints as Target) and Bun's target. */
export const RELEASE_TARGETS: ReadonlyArray<{ name: string; bunTarget: string }> = [
  { name: "linux-x64", bunTarget: "bun-linux-x64" },
  { name: "linux-x64-baseline", bunTarget: "bun-linux-x64-baseline" },
  { name: "linux-arm64", bunTarget: "bun-linux-arm64" },
];

/** The file name of a target's binary. */
export function releaseFileName(target: string): string {
  return `oci-storage-${target}`;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest("hex");
}

async function main(): Promise<number> {
  let outDir: string;
  try {
    const { values } = parseArgs({ options: { out: { type: "string" } }, strict: true });
    outDir = resolve(values.out ?? join(ROOT, "dist", "release"));
  } catch (e) {
    console.error(`release: ${(e as Error).message} (usage: bun scripts/release.ts [--out DIR])`);
    return 2;
  }
  const progress = (line: string) => {
    if (process.stderr.isTTY) process.stderr.write(`${line}\n`);
  };
  const info = await buildInfo();
  // Built beside the output directory and moved in at the end, so a failed build leaves no half release behind.
  mkdirSync(join(outDir, ".."), { recursive: true });
  const staging = mkdtempSync(`${outDir}.partial-`);
  try {
    const sums: string[] = [];
    for (const target of RELEASE_TARGETS) {
      progress(`building ${releaseFileName(target.name)}…`);
      const file = join(staging, releaseFileName(target.name));
      await compileBinary({ outfile: file, bunTarget: target.bunTarget, targetName: target.name, info });
      sums.push(`${await sha256(file)}  ${releaseFileName(target.name)}\n`);
    }
    await Bun.write(join(staging, "SHA256SUMS"), sums.join(""));
    rmSync(outDir, { recursive: true, force: true });
    renameSync(staging, outDir);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    if (!(e instanceof CompileError)) throw e;
    console.error(`release: ${e.message}`);
    return 1;
  }
  for (const target of RELEASE_TARGETS) {
    const file = join(outDir, releaseFileName(target.name));
    console.log(`${file}  ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB`);
  }
  console.log(`${join(outDir, "SHA256SUMS")}  (version ${info.version}, commit ${info.commit})`);
  return 0;
}

if (import.meta.main) process.exit(await main());
