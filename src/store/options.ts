/**
 * Where a store lives and which driver it uses: built-in defaults, the configuration file,
 * the STORAGE_DRIVER and STORAGE_OPTS variables and command-line options, combined in the
 * two phases of docs/cli-contract.md §1.4.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { InitError, SystemError, errnoReason } from "../errors.ts";

export interface StoreOptions {
  graphRoot: string;
  runRoot: string;
  /** Driver asked for; undefined lets the store choose (its recorded driver, else the best available). */
  driver: string | undefined;
  driverOptions: string[];
}

/** Values a configuration file can set. */
interface ConfigValues {
  driver?: string;
  graphRoot?: string;
  runRoot?: string;
  driverOptions: string[];
}

/** The built-in graph and run roots: system paths for root, XDG paths for other users. Never those of containers-storage. */
export function defaultRoots(env: Record<string, string | undefined> = process.env): { graphRoot: string; runRoot: string } {
  if (process.getuid?.() === 0) return { graphRoot: "/var/lib/oci-storage", runRoot: "/run/oci-storage" };
  const dataHome = env.XDG_DATA_HOME || join(env.HOME || homedir(), ".local", "share");
  const runtimeDir = env.XDG_RUNTIME_DIR;
  return {
    graphRoot: join(dataHome, "oci-storage"),
    runRoot: runtimeDir ? join(runtimeDir, "oci-storage") : join(tmpdir(), `oci-storage-${process.getuid?.() ?? "user"}`),
  };
}

/** The configuration file in use: $OCI_STORAGE_CONF, else the user's, else the system's; undefined when none exists. */
export function configPath(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.OCI_STORAGE_CONF) return env.OCI_STORAGE_CONF;
  const configHome = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : undefined);
  const candidates = [configHome && join(configHome, "oci-storage", "storage.conf"), "/etc/oci-storage/storage.conf"];
  return candidates.find((p): p is string => !!p && existsSync(p));
}

/** Reads a storage.conf in containers-storage's layout; a malformed file is an error naming the file and line. */
export function readConfig(path: string): ConfigValues {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new SystemError(`reading configuration ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : errnoReason(e)}`, (e as NodeJS.ErrnoException).code);
  }
  let parsed: any;
  try {
    parsed = Bun.TOML.parse(text);
  } catch (e) {
    const message = (e as Error).message.replace(/^TOML Parse error: /, "");
    throw new InitError(`${path}:${tomlErrorLine(text)}: invalid TOML: ${message}`);
  }
  const storage = parsed?.storage ?? {};
  const driver: string | undefined = typeof storage.driver === "string" && storage.driver !== "" ? storage.driver : undefined;
  const values: ConfigValues = {
    driver,
    graphRoot: typeof storage.graphroot === "string" && storage.graphroot ? storage.graphroot : undefined,
    runRoot: typeof storage.runroot === "string" && storage.runroot ? storage.runroot : undefined,
    driverOptions: [],
  };
  const opts = storage.options ?? {};
  const prefix = driver ?? "overlay";
  for (const store of asStringList(opts.additionalimagestores, path, "additionalimagestores")) values.driverOptions.push(`${prefix}.imagestore=${store}`);
  const driverTable = driver ? opts[driver] : undefined;
  for (const [key, value] of Object.entries(driverTable ?? {})) {
    if (typeof value === "string" || typeof value === "boolean" || typeof value === "number") values.driverOptions.push(`${prefix}.${key}=${value}`);
  }
  return values;
}

/**
 * The line of a TOML syntax error. Bun's parser does not say where it failed, so this finds the
 * first line at which the text read so far stops parsing (for a construct spanning lines, its first line).
 */
function tomlErrorLine(text: string): number {
  const lines = text.split("\n");
  for (let n = 1; n <= lines.length; n++) {
    try {
      Bun.TOML.parse(lines.slice(0, n).join("\n"));
    } catch {
      return n;
    }
  }
  return lines.length;
}

function asStringList(value: unknown, path: string, key: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw new InitError(`${path}: ${key} must be a list of strings`);
  return value as string[];
}

/** Command-line values relevant to the store, as parsed. */
export interface StoreFlags {
  graph?: string;
  run?: string;
  driver?: string;
  storageOpts: string[];
}

/**
 * Combines everything per §1.4: with no store option before the command (phase A) the config
 * file and environment apply, then options after the command override; otherwise (phase B)
 * only the options given count, and missing roots come from the defaults.
 */
export function resolveStoreOptions(flags: StoreFlags, explicitBeforeCommand: boolean, env: Record<string, string | undefined> = process.env): StoreOptions {
  const defaults = defaultRoots(env);
  const file = configPath(env);
  const config: ConfigValues = file ? readConfig(file) : { driverOptions: [] };
  const graphDefault = config.graphRoot ?? defaults.graphRoot;
  const runDefault = config.runRoot ?? defaults.runRoot;
  let driver: string | undefined;
  let driverOptions: string[];
  if (explicitBeforeCommand) {
    driver = flags.driver;
    driverOptions = [...flags.storageOpts];
  } else {
    driver = flags.driver ?? (env.STORAGE_DRIVER || undefined) ?? config.driver;
    const base = env.STORAGE_OPTS !== undefined ? env.STORAGE_OPTS.split(",").filter((o) => o !== "") : config.driverOptions;
    driverOptions = [...base, ...flags.storageOpts];
  }
  for (const option of driverOptions) {
    if (!option.includes("=")) throw new InitError(`unable to parse key/value option: ${option}`);
  }
  return {
    graphRoot: resolve(flags.graph ?? graphDefault),
    runRoot: resolve(flags.run ?? runDefault),
    driver,
    driverOptions,
  };
}
