/** Where a worker module of src/archive/ is, from source and inside the compiled binary. */

/**
 * The URL to pass to `new Worker` for a module next to this one. In the compiled binary every
 * module's import.meta.url is the binary itself, at the bundle's root (src/), where
 * scripts/build.ts puts the worker entry points.
 */
export function workerModuleUrl(fileName: string): string {
  const compiled = import.meta.url.startsWith("file:///$bunfs/");
  return new URL(compiled ? `./archive/${fileName}` : `./${fileName}`, import.meta.url).href;
}
