/** Helpers for deterministic races: start a command, wait until it is inside its critical step, then run another. */
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, type TestStore } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";

export interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Running {
  pid: number;
  /** Writes to the command's standard input and closes it (only when started with input: true). */
  finishInput(data: string): Promise<void>;
  done: Promise<Finished>;
}

/** Starts a command on the store without waiting for it; `stopAt` makes it stop itself (SIGSTOP) at that crash point. */
export function start(store: TestStore, args: string[], options: { input?: boolean; stopAt?: string } = {}): Running {
  const env = options.stopAt === undefined ? undefined : { ...process.env, OCI_STORAGE_STOP_AT: options.stopAt };
  const proc = Bun.spawn([BINARY, ...store.globals, ...args], { stdin: options.input ? "pipe" : "ignore", stdout: "pipe", stderr: "pipe", env });
  const done = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]).then(([stdout, stderr, code]) => ({ code, stdout, stderr }));
  return {
    pid: proc.pid,
    async finishInput(data: string) {
      const stdin = proc.stdin as import("bun").FileSink;
      await stdin.write(data);
      await stdin.end();
    },
    done,
  };
}

/** Polls until check() is true; throws after timeoutMs. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

/** Waits until the process has stopped itself (state T in /proc/PID/stat), e.g. at a stop point. */
export async function waitUntilStopped(pid: number): Promise<void> {
  await waitFor(`process ${pid} to stop`, () => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
  });
}

/** True when the query on the store's database (read-only) returns a row. */
export function databaseHas(store: TestStore, sql: string, ...params: string[]): boolean {
  const path = join(store.graph, "oci-storage.db");
  if (!existsSync(path)) return false;
  const db = new Database(path, { readonly: true });
  try {
    return db.query(sql).get(...params) !== null;
  } catch {
    return false;
  } finally {
    db.close();
  }
}

/** True when the process has the store's database open (it has opened the store and resolved its arguments soon after). */
export function hasStoreOpen(store: TestStore, pid: number): boolean {
  const fds = `/proc/${pid}/fd`;
  try {
    return readdirSync(fds).some((fd) => {
      try {
        return readlinkSync(join(fds, fd)) === join(store.graph, "oci-storage.db");
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** A layer tar with many small files, so that copying its layer (vfs children) takes a while. */
export function manyFilesTar(files = 2000): string {
  const dir = mkdtempSync(join(tmpdir(), "oci-many-"));
  const tree = join(dir, "tree");
  for (let d = 0; d < files / 100; d++) {
    mkdirSync(join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), "x".repeat(64));
  }
  const tar = join(dir, "many.tar");
  sh(["tar", "-C", tree, "-cf", tar, "."]);
  return tar;
}
