/**
 * Entry point: parse the command line, open the store, run the command, and turn any error
 * into one line on stderr and an exit status (a stack trace only with --debug).
 */
import { dispatch } from "./cli/dispatch.ts";
import type { CommandContext, ParsedOptions } from "./commands/command.ts";
import { COMMANDS } from "./commands/index.ts";
import { configuredGlobals, selectedStore } from "./commands/store-selection.ts";
import { IoError, exitStatusOf, ioError, isWriteFault, messageOf, withContext } from "./errors.ts";
import { type Store, openStore } from "./store/store.ts";
import { KILLED_BY_SIGPIPE, parentIgnoresSigpipe } from "./sys/sigpipe.ts";

/**
 * What the program writes, in the order it writes it. Text for stdout is collected and written
 * in one go; binary output and any text for stderr first write out the text collected before
 * them, so that a terminal showing both streams shows them in order (a command's usage before
 * its options, as 1.43 prints them). stderr goes through Bun.write rather than process.stderr,
 * whose stream machinery costs a command ~10 ms to load.
 */
class Output {
  private pending: string[] = [];
  /** The writes so far, one after another; it goes on after a failed one. */
  private queue: Promise<unknown> = Promise.resolve();
  /** A failed write of collected text, for the next flush to throw. */
  private failure: { error: unknown } | undefined;

  text = (s: string): void => {
    this.pending.push(s);
  };

  /** Writes stderr text after everything written before it; a failure to write it is ignored. */
  error = (s: string): void => {
    this.writeCollected();
    // Bun.write of nothing truncates a stderr redirected to a file.
    if (s !== "") this.queue = this.queue.then(() => Bun.write(Bun.stderr, s)).catch(() => {});
  };

  flush = async (): Promise<void> => {
    this.writeCollected();
    await this.queue;
    const failure = this.failure;
    this.failure = undefined;
    if (failure) throw failure.error;
  };

  bytes = async (bytes: Uint8Array): Promise<void> => {
    await this.flush();
    if (bytes.byteLength === 0) return;
    const written = this.queue.then(() => toStdout(bytes));
    this.queue = written.catch(() => {});
    await written;
  };

  /** Queues the text collected so far; Bun.write of nothing truncates a stdout redirected to a file. */
  private writeCollected(): void {
    const text = this.pending.join("");
    this.pending = [];
    if (text === "") return;
    this.queue = this.queue.then(() => toStdout(text)).catch((error) => (this.failure ??= { error }));
  }
}

/** Writes to stdout; a failure is an IoError naming it ("write /dev/stdout: broken pipe"), which main ends as 1.43 does. */
async function toStdout(data: string | Uint8Array): Promise<void> {
  try {
    await Bun.write(Bun.stdout, data);
  } catch (error) {
    throw ioError("write", "/dev/stdout", error);
  }
}

const output = new Output();

/** The one line shown for a failure; with --debug, the stack of the error as thrown. */
function errorText(e: unknown, debug: boolean): string {
  if (debug && e instanceof Error && e.stack) return e.stack;
  return messageOf(e);
}

/**
 * Reports a failure and gives its exit status. Standard output whose reader went away ends the
 * command as SIGPIPE ends containers-storage: silently with 141, or, when SIGPIPE was ignored
 * by whoever started us, with the one-line error (src/sys/sigpipe.ts).
 */
async function failed(e: unknown, debug: boolean): Promise<number> {
  const stdoutGone = e instanceof IoError && e.code === "EPIPE" && e.message.startsWith("write /dev/stdout:");
  if (stdoutGone && !(await parentIgnoresSigpipe())) return KILLED_BY_SIGPIPE;
  output.error(`${errorText(e, debug)}\n`);
  return exitStatusOf(e);
}

function programName(): string {
  const exe = process.execPath.slice(process.execPath.lastIndexOf("/") + 1);
  return exe === "bun" || exe === "node" ? "oci-storage" : exe;
}

function debugLog(enabled: boolean, message: string): void {
  if (enabled) output.error(`time="${new Date().toISOString()}" level=debug msg=${JSON.stringify(message)}\n`);
}

/** What a command that declared needsStore: false gets as its store: any use is a bug. */
function storeNotOpened(): Store {
  return new Proxy({} as Store, {
    get() {
      throw new Error("this command does not open the store");
    },
  });
}

async function main(argv: string[]): Promise<number> {
  const out = output;
  const stderr = out.error;
  // Phase A of docs/cli-contract.md §1.4: with no store option before the command, the configuration file and
  // environment supply the defaults (shown in command help), and options after the command override them.
  let configError: unknown;
  const defaultGlobals = async (globals: ParsedOptions, given: string[]): Promise<ParsedOptions> => {
    const configured = await configuredGlobals(globals, given);
    configError = configured.configError;
    return configured.globals;
  };
  const parsed = await dispatch(programName(), argv, COMMANDS, { stdout: out.text, stderr }, { defaultGlobals });
  if (parsed.kind === "exit") {
    await out.flush();
    return parsed.code;
  }
  const globals: ParsedOptions = parsed.globals;
  const debug = globals.debug === true;
  let store: Store;
  try {
    // A command without a store does not depend on the storage configuration either (man works with a broken one).
    if (parsed.command.needsStore === false) {
      store = storeNotOpened();
    } else {
      if (configError) throw configError;
      const options = await selectedStore(globals);
      store = await openStore(options, { recover: parsed.command.recoversStore !== false, notice: (line) => stderr(`${line}\n`) });
      debugLog(debug, `Root: ${store.graphRoot}`);
      debugLog(debug, `Run Root: ${store.runRoot}`);
      debugLog(debug, `Driver Name: ${store.driverName}`);
      debugLog(debug, `Driver Options: [${options.driverOptions.join(" ")}]`);
    }
  } catch (e) {
    out.text(`error initializing: ${errorText(e, debug)}\n`);
    await out.flush();
    return exitStatusOf(e);
  }
  const ctx: CommandContext = {
    invokedAs: parsed.invokedAs,
    args: parsed.args,
    options: parsed.options,
    store,
    stdout: out.text,
    stderr,
    stdoutBytes: out.bytes,
    flushStdout: out.flush,
    debug: (message) => debugLog(debug, message),
  };
  let code: number;
  try {
    code = await parsed.command.run(ctx);
  } catch (e) {
    await out.flush().catch(() => {});
    // A failure of the store's file system in a command that writes content names the command.
    code = await failed(parsed.command.namesIoFailures && isWriteFault(e) ? withContext(parsed.command.names[0]!, e) : e, debug);
  }
  if (parsed.command.needsStore !== false) store.close();
  await out.flush();
  return code;
}

const code = await main(process.argv.slice(2)).catch((e) => failed(e, process.argv.includes("--debug") || process.argv.includes("-D")));
await output.flush().catch(() => {});
process.exit(code);
