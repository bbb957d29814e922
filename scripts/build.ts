/** Compiles src/main.ts into the single self-contained binary dist/oci-storage. */
import { $ } from "bun";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const out = join(root, "dist", "oci-storage");
mkdirSync(join(root, "dist"), { recursive: true });

const pkg = await Bun.file(join(root, "package.json")).json();
const commit = (await $`git -C ${root} rev-parse --short HEAD`.nothrow().quiet()).stdout.toString().trim();

// Worker modules are extra entry points: `new Worker(new URL("./x.ts", import.meta.url))` finds them inside the binary.
const workers = ["src/archive/gzip-worker.ts", "src/archive/decompress-worker.ts"].map((path) => join(root, path));

await $`${process.execPath} build ${join(root, "src/main.ts")} ${workers} --compile --minify --sourcemap=inline \
  --bytecode --format=esm \
  --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
  --define ${`BUILD_VERSION=${JSON.stringify(pkg.version)}`} \
  --define ${`BUILD_COMMIT=${JSON.stringify(commit || "unknown")}`} \
  --outfile ${out}`.quiet();
// The binary embeds its source maps (stack traces name src/ lines); the .map files bun writes beside it are not needed.
for (const name of readdirSync(join(root, "dist"))) if (name.endsWith(".map")) rmSync(join(root, "dist", name));
console.error(`built ${out}`);
