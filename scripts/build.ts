/** Compiles src/main.ts into the single self-contained binary dist/oci-storage, for this machine. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { CompileError, ROOT, buildInfo, compileBinary } from "./compile.ts";

const out = join(ROOT, "dist", "oci-storage");
mkdirSync(join(ROOT, "dist"), { recursive: true });
try {
  // Built by the Bun that runs this script, so it suits this machine's CPU (see `npm run release` for the others).
  await compileBinary({ outfile: out, targetName: `linux-${process.arch} (local build)`, info: await buildInfo() });
} catch (e) {
  if (!(e instanceof CompileError)) throw e;
  console.error(`build: ${e.message}`);
  process.exit(1);
}
console.error(`built ${out}`);
