import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SystemError } from "../../src/errors.ts";
import { syncFilesystemInBackground } from "../../src/sys/background-sync.ts";

const TMPFS_MAGIC = 0x01021994;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "background-sync-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const onTmpfs = () => {
  const tmpfs = statfsSync(tmpdir()).type === TMPFS_MAGIC;
  if (tmpfs) console.log(`skipping the background flush test: ${tmpdir()} is a tmpfs, whose syncfs has nothing to write`);
  return tmpfs;
};

test.skipIf(onTmpfs())("the flush runs on a thread of its own: the event loop goes on while 64 MiB are written back", async () => {
  for (let i = 0; i < 16; i++) writeFileSync(join(dir, `dirty-${i}`), new Uint8Array(4 << 20).fill(i + 1));
  let turns = 0;
  const ticker = setInterval(() => turns++, 1);
  try {
    await syncFilesystemInBackground(dir);
  } finally {
    clearInterval(ticker);
  }
  expect(turns).toBeGreaterThan(0);
});

test("a path that cannot be opened fails with one error naming it", async () => {
  const missing = join(dir, "missing");
  const error = await syncFilesystemInBackground(missing).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SystemError);
  expect((error as SystemError).code).toBe("ENOENT");
  expect((error as SystemError).message).toStartWith(`syncfs ${missing}: `);
});
