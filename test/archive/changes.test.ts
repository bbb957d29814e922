import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { compareTrees, sizeOfChanges } from "../../src/archive/changes.ts";
import { ChangeKind, type Change } from "../../src/archive/types.ts";
import { NO_ID_MAPS, type IdMaps } from "../../src/idmap.ts";
import { makeTempDir, removeDir, sh } from "./apply-helpers.ts";

let work: string;
let lower: string;
let upper: string;

beforeEach(() => {
  work = makeTempDir("changes-test");
  lower = `${work}/lower`;
  upper = `${work}/upper`;
});
afterEach(() => removeDir(work));

const NO_MAPS = { lower: NO_ID_MAPS, upper: NO_ID_MAPS };

/** Builds lower with the script, copies it to upper (cp -a keeps ns times), then changes upper with the second script. */
function lowerThenUpper(lowerScript: string, upperScript: string): void {
  sh(`mkdir ${lower} && cd ${lower} && ${lowerScript} && find . -exec touch -h -d @1600000000.5 {} + && cp -a ${lower} ${upper}`);
  sh(upperScript, upper);
}

/** The `changes` text lines. */
function lines(changes: Change[]): string[] {
  return changes.map((change) => `${ChangeKind[change.kind]} ${JSON.stringify(change.path)}`);
}

describe("compareTrees", () => {
  test("reproduces the example of docs/cli-contract.md §3.7.3 in its order", async () => {
    lowerThenUpper(
      "mkdir -p data/sub etc && echo 1 > data/sub/file1 && echo 2 > data/sub/file2 && ln -s sub/file1 data/link && echo 127.0.0.1 > etc/hosts && echo root > etc/passwd && echo same > unchanged",
      "echo 3 > data/sub/file3 && rm data/sub/file2 data/link && echo '::1 localhost' >> etc/hosts && echo new > newfile",
    );
    expect(lines(await compareTrees(lower, upper, NO_MAPS))).toEqual([
      'Modify "/data"',
      'Modify "/data/sub"',
      'Add "/data/sub/file3"',
      'Delete "/data/sub/file2"',
      'Delete "/data/link"',
      'Modify "/etc"',
      'Modify "/etc/hosts"',
      'Add "/newfile"',
    ]);
  });

  test("an added directory lists every entry below it; a deleted one only its top", async () => {
    lowerThenUpper("mkdir -p gone/a/b && echo x > gone/a/b/f", "rm -r gone && mkdir -p new/dir && echo x > new/dir/file && ln -s dir new/link");
    expect(lines(await compareTrees(lower, upper, NO_MAPS))).toEqual(['Add "/new"', 'Add "/new/dir"', 'Add "/new/dir/file"', 'Add "/new/link"', 'Delete "/gone"']);
  });

  test("a directory replaced by a file is one Modify; a file replaced by a directory is Modify plus its new entries", async () => {
    lowerThenUpper("mkdir -p x/deep && echo 1 > x/deep/f && echo 2 > y", "rm -r x && echo file > x && rm y && mkdir y && echo c > y/child");
    expect(lines(await compareTrees(lower, upper, NO_MAPS))).toEqual(['Modify "/x"', 'Modify "/y"', 'Add "/y/child"']);
  });

  test("mode, owner, mtime, size, device, symlink target and xattr changes are modifications; a directory's mtime is not", async () => {
    lowerThenUpper(
      "mkdir d && for f in mode owner mtime size xattr same-size; do echo 12345 > $f; done && ln -s aaaa sym && mknod dev c 1 3",
      `chmod 600 mode && chown 5 owner && touch -d @1700000000 mtime && echo 123456 > size && touch -d @1600000000.5 size
       setfattr -n user.x -v 1 xattr && rm sym && ln -s bbbbb sym && touch -h -d @1600000000.5 sym && rm dev && mknod dev c 1 5
       touch -h -d @1600000000.5 dev && touch -d @1800000000 d
       echo 54321 > same-size && touch -d @1600000000.5 same-size`,
    );
    // Contents are not compared: same size and mtime (same-size) count as unchanged, as in 1.43.
    expect(lines(await compareTrees(lower, upper, NO_MAPS))).toEqual([
      'Modify "/dev"',
      'Modify "/mode"',
      'Modify "/mtime"',
      'Modify "/owner"',
      'Modify "/size"',
      'Modify "/sym"',
      'Modify "/xattr"',
    ]);
  });

  test("owners are compared as container IDs through each tree's maps", async () => {
    lowerThenUpper("echo a > shifted && echo b > really-changed", "chown 100000:200000 shifted && chown 100007:200000 really-changed");
    const upperMaps: IdMaps = { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }] };
    expect(lines(await compareTrees(lower, upper, { lower: NO_ID_MAPS, upper: upperMaps }))).toEqual(['Modify "/really-changed"']);
  });

  test("against an empty tree everything is added, depth first, siblings in byte order, the root never listed", async () => {
    sh(`mkdir -p ${upper} && cd ${upper} && mkdir b a && touch a/z a/y B a.b 'é' '😀' 'ﬀ'`);
    expect(lines(await compareTrees(null, upper, NO_MAPS))).toEqual([
      'Add "/B"',
      'Add "/a"',
      'Add "/a/y"',
      'Add "/a/z"',
      'Add "/a.b"',
      'Add "/b"',
      'Add "/é"',
      'Add "/ﬀ"',
      'Add "/😀"',
    ]);
  });

  test("identical trees have no changes", async () => {
    lowerThenUpper("mkdir -p a/b && echo x > a/b/f && ln -s f a/b/l && mkfifo p", "true");
    expect(await compareTrees(lower, upper, NO_MAPS)).toEqual([]);
  });
});

describe("sizeOfChanges", () => {
  test("counts added and modified non-directories, symlink targets, hard links once and deletions as zero", async () => {
    lowerThenUpper(
      "head -c 1000 /dev/zero > modified && head -c 500 /dev/zero > deleted && mkdir dir",
      "head -c 30 /dev/zero > modified && rm deleted && head -c 100 /dev/zero > added && ln -s abcdef link && head -c 50 /dev/zero > h1 && ln h1 h2 && mkdir newdir && echo -n 1234567 > newdir/f && mkfifo fifo",
    );
    const changes = await compareTrees(lower, upper, NO_MAPS);
    expect(lines(changes)).toContain('Delete "/deleted"');
    expect(await sizeOfChanges(upper, changes)).toBe(30 + 100 + 6 + 50 + 7);
  });

  test("is zero without changes", async () => {
    lowerThenUpper("echo x > f", "true");
    expect(await sizeOfChanges(upper, await compareTrees(lower, upper, NO_MAPS))).toBe(0);
  });
});
