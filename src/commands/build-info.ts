/** What the binary was built from, set by scripts/compile.ts through `bun build --define`; from source, it says so. */
declare const BUILD_VERSION: string | undefined;
declare const BUILD_COMMIT: string | undefined;
declare const BUILD_TARGET: string | undefined;

export const BUILD = {
  /** The package version, "development" when run from source. */
  version: typeof BUILD_VERSION === "string" ? BUILD_VERSION : "development",
  /** The commit (with -dirty when built from changed files), "source" when run from source. */
  commit: typeof BUILD_COMMIT === "string" ? BUILD_COMMIT : "source",
  /** The release target (linux-x64, linux-x64-baseline, linux-arm64) or what built it locally. */
  target: typeof BUILD_TARGET === "string" ? BUILD_TARGET : `linux-${process.arch} (source)`,
};
