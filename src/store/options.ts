/**
 * Where a store lives and which driver it uses: built-in defaults, the configuration file,
 * the STORAGE_DRIVER and STORAGE_OPTS variables and command-line options, combined in the
 * two phases of docs/cli-contract.md §1.4.
 */
import { cleanComponents } from "../archive/paths.ts";
import { InitError, SystemError, errnoReason } from "../errors.ts";
import { pathExists } from "../sys/path-exists.ts";

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

// Paths are built here without node:path and node:os: every command resolves its options, and
// loading those modules would cost each of them a millisecond or two (docs/benchmarks.md).

/** The path made absolute against the working directory and normalized, as node:path's resolve does. */
export function absolutePath(path: string): string {
  return `/${cleanComponents(path.startsWith("/") ? path : `${process.cwd()}/${path}`).join("/")}`;
}

/** The home directory: $HOME, else the password database's (node:os, loaded only then). */
async function homeDirectory(env: Record<string, string | undefined>): Promise<string> {
  return env.HOME || (await import("node:os")).homedir();
}

/** The built-in graph and run roots: system paths for root, XDG paths for other users. Never those of containers-storage. */
export async function defaultRoots(env: Record<string, string | undefined> = process.env): Promise<{ graphRoot: string; runRoot: string }> {
  if (process.getuid?.() === 0) return { graphRoot: "/var/lib/oci-storage", runRoot: "/run/oci-storage" };
  const dataHome = env.XDG_DATA_HOME || `${await homeDirectory(env)}/.local/share`;
  const runtimeDir = env.XDG_RUNTIME_DIR;
  // os.tmpdir(): $TMPDIR without its trailing slash, else /tmp.
  const tmp = (env.TMPDIR || "/tmp").replace(/(.)\/+$/, "$1");
  return {
    graphRoot: absolutePath(`${dataHome}/oci-storage`),
    runRoot: absolutePath(runtimeDir ? `${runtimeDir}/oci-storage` : `${tmp}/oci-storage-${process.getuid?.() ?? "user"}`),
  };
}

/**
 * The configuration file in use: $OCI_STORAGE_CONF, else the user's, else the system's; undefined
 * when none exists. Anything at those paths counts, as with containers-storage 1.43: a
 * directory there is an error when it is read. Looked for with a synchronous stat, which every
 * command does: `Bun.file().exists()` took it 0.1–0.3 ms longer.
 */
export function configPath(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.OCI_STORAGE_CONF) return env.OCI_STORAGE_CONF;
  const configHome = env.XDG_CONFIG_HOME || (env.HOME ? `${env.HOME}/.config` : undefined);
  for (const candidate of [configHome && `${configHome}/oci-storage/storage.conf`, "/etc/oci-storage/storage.conf"]) {
    if (candidate && pathExists(candidate)) return candidate;
  }
  return undefined;
}

/** Reads a storage.conf in containers-storage's layout; a malformed file is an error naming the file and line. */
export async function readConfig(path: string): Promise<ConfigValues> {
  let text: string;
  try {
    text = await Bun.file(path).text();
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
  const storage = asTable(parsed.storage, path, "storage");
  const driver = asString(storage.driver, path, "storage.driver");
  const values: ConfigValues = {
    driver,
    graphRoot: asString(storage.graphroot, path, "storage.graphroot"),
    runRoot: asString(storage.runroot, path, "storage.runroot"),
    driverOptions: [],
  };
  const opts = asTable(storage.options, path, "storage.options");
  const prefix = driver ?? "overlay";
  for (const store of asStringList(opts.additionalimagestores, path, "storage.options.additionalimagestores")) values.driverOptions.push(`${prefix}.imagestore=${store}`);
  const driverTable = driver ? asTable(opts[driver], path, `storage.options.${driver}`) : undefined;
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

/** A setting that must be a string (as 1.43 requires); absent or "" is undefined. */
function asString(value: unknown, path: string, key: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string") throw new InitError(`${path}: ${key} must be a string, not ${tomlType(value)}`);
  return value;
}

/** A section that must be a table; absent is an empty one. */
function asTable(value: unknown, path: string, key: string): Record<string, any> {
  if (value === undefined) return {};
  if (tomlType(value) !== "a table") throw new InitError(`${path}: [${key}] must be a table, not ${tomlType(value)}`);
  return value as Record<string, any>;
}

/** What a parsed TOML value is, in words. */
function tomlType(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return "a date";
  if (typeof value === "object" && value !== null) return "a table";
  return typeof value === "number" || typeof value === "bigint" ? "a number" : typeof value === "boolean" ? "a boolean" : "a string";
}

function asStringList(value: unknown, path: string, key: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw new InitError(`${path}: ${key} must be a list of strings`);
  return value as string[];
}

/** Command-line values relevant to the store, as parsed; an empty root or driver counts as not given, as in 1.43. */
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
export async function resolveStoreOptions(flags: StoreFlags, explicitBeforeCommand: boolean, env: Record<string, string | undefined> = process.env): Promise<StoreOptions> {
  const defaults = await defaultRoots(env);
  const file = configPath(env);
  const config: ConfigValues = file ? await readConfig(file) : { driverOptions: [] };
  const graphDefault = config.graphRoot ?? defaults.graphRoot;
  const runDefault = config.runRoot ?? defaults.runRoot;
  let driver: string | undefined;
  let driverOptions: string[];
  if (explicitBeforeCommand) {
    driver = flags.driver || undefined;
    driverOptions = [...flags.storageOpts];
  } else {
    driver = flags.driver || env.STORAGE_DRIVER || config.driver;
    const base = env.STORAGE_OPTS !== undefined ? env.STORAGE_OPTS.split(",").filter((o) => o !== "") : config.driverOptions;
    driverOptions = [...base, ...flags.storageOpts];
  }
  for (const option of driverOptions) {
    if (!option.includes("=")) throw new InitError(`unable to parse key/value option: ${option}`);
  }
  return {
    graphRoot: absolutePath(flags.graph || graphDefault),
    runRoot: absolutePath(flags.run || runDefault),
    driver,
    driverOptions,
  };
}
