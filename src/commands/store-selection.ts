/**
 * Which store the global options select (docs/cli-contract.md §1.4), for main.ts and for shell
 * completion, which must look at the same store the typed command would open.
 */
import type { ParsedOptions } from "../cli/command-spec.ts";
import { type StoreOptions, resolveStoreOptions } from "../store/options.ts";

/** The global options that select the store. */
const STORE_OPTIONS = ["graph", "run", "storage-driver", "storage-opt"];

/** Whether a store option was given before the command with a value: an empty root or driver counts as not given, as in 1.43. */
function givenWithValue(globals: ParsedOptions, given: string[], option: string): boolean {
  return given.includes(option) && globals[option] !== "";
}

/**
 * Phase A of §1.4: with no store option before the command, the configuration file and the
 * environment supply the defaults of the global options (command help shows them). A broken
 * configuration comes back as `configError`, to be reported when the store is opened.
 */
export async function configuredGlobals(globals: ParsedOptions, givenBeforeCommand: string[]): Promise<{ globals: ParsedOptions; configError?: unknown }> {
  if (STORE_OPTIONS.some((option) => givenWithValue(globals, givenBeforeCommand, option))) return { globals };
  try {
    const configured = await resolveStoreOptions({ storageOpts: [] }, false);
    return { globals: { ...globals, graph: configured.graphRoot, run: configured.runRoot, "storage-driver": configured.driver, "storage-opt": configured.driverOptions } };
  } catch (configError) {
    return { globals, configError };
  }
}

/** The store selected by the global options (after configuredGlobals and the options given after the command). */
export function selectedStore(globals: ParsedOptions): Promise<StoreOptions> {
  return resolveStoreOptions(
    {
      graph: globals.graph as string | undefined,
      run: globals.run as string | undefined,
      driver: globals["storage-driver"] as string | undefined,
      storageOpts: (globals["storage-opt"] as string[] | undefined) ?? [],
    },
    true,
  );
}
