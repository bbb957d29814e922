import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { compareTrees } from "../../src/archive/changes.ts";
import { fileSink } from "../../src/archive/compression.ts";
import { entryFromStat, exportChanges } from "../../src/archive/export.ts";
import type { Change } from "../../src/archive/types.ts";
import { NO_ID_MAPS, type IdMaps } from "../../src/idmap.ts";
import { applyFile, makeTempDir, removeDir, run, sh, snapshotTree } from "./apply-helpers.ts";

let work: string;
let lower: string;
let upper: string;

beforeEach(() => {
  work = makeTempDir("export-test");
  lower = `${work}/lower`;
  upper = `${work}/upper`;
});
afterEach(() => removeDir(work));

const NO_MAPS = { lower: NO_ID_MAPS, upper: NO_ID_MAPS };

/**
 * Builds lower (all times 1600000000), copies it to upper, changes upper, then gives everything the script
 * touched the whole-second time 1700000000 (tar mtimes are whole seconds).
 */
function lowerThenUpper(lowerScript: string, upperScript: string): void {
  sh(`mkdir ${lower} && cd ${lower} && ${lowerScript} && find . -exec touch -h -d @1600000000 {} + && cp -a ${lower} ${upper}`);
  sh(`${upperScript}\nfind . -newermt @1650000000 -exec touch -h -d @1700000000 {} +`, upper);
}

async function exportToFile(tree: string, changes: Change[], maps: IdMaps = NO_ID_MAPS): Promise<string> {
  const path = `${work}/export.tar`;
  const sink = fileSink(path);
  await exportChanges(tree, changes, sink, maps);
  await sink.close();
  return path;
}

interface Member {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  mtime: number;
  linkname: string;
  xattrs: Record<string, string>;
}

/** The members as Python's tarfile reads them, plus where the last member's data ends. */
function readWithPython(path: string): { members: Member[]; endOfLastMember: number } {
  const script = `
import json, sys, tarfile
members = []
end = 0
with tarfile.open(sys.argv[1]) as tf:
    for m in tf.getmembers():
        members.append({"name": m.name, "type": m.type.decode(), "mode": m.mode, "uid": m.uid, "gid": m.gid,
                        "uname": m.uname, "gname": m.gname, "size": m.size, "mtime": m.mtime, "linkname": m.linkname,
                        "xattrs": {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}})
        end = m.offset_data + (m.size + 511) // 512 * 512
print(json.dumps({"members": members, "endOfLastMember": end}))
`;
  return JSON.parse(run(["python3", "-c", script, path]));
}

const SPEC_LOWER =
  "mkdir -p data/sub etc && echo 1 > data/sub/file1 && echo 2 > data/sub/file2 && ln -s sub/file1 data/link && echo 127.0.0.1 > etc/hosts && echo root > etc/passwd && echo same > unchanged";
const SPEC_UPPER = "echo 3 > data/sub/file3 && rm data/sub/file2 data/link && echo '::1 localhost' >> etc/hosts && echo new > newfile && chown 1000:1000 newfile";

describe("exportChanges", () => {
  test("writes sorted entries with parent directories and whiteouts that GNU tar and Python's tarfile read back", async () => {
    lowerThenUpper(SPEC_LOWER, SPEC_UPPER);
    const before = Math.floor(Date.now() / 1000);
    const tar = await exportToFile(upper, await compareTrees(lower, upper, NO_MAPS));
    const expectedNames = ["data/", "data/.wh.link", "data/sub/", "data/sub/.wh.file2", "data/sub/file3", "etc/", "etc/hosts", "newfile"];
    expect(run(["tar", "-tf", tar]).trim().split("\n")).toEqual(expectedNames);

    const { members, endOfLastMember } = readWithPython(tar);
    expect(members.map((m) => m.name.replace(/\/$/, ""))).toEqual(expectedNames.map((n) => n.replace(/\/$/, "")));
    const byName = new Map(members.map((m) => [m.name, m]));
    for (const whiteout of ["data/.wh.link", "data/sub/.wh.file2"]) {
      const m = byName.get(whiteout)!;
      expect([m.type, m.mode, m.uid, m.gid, m.size]).toEqual(["0", 0, 0, 0, 0]);
      expect(m.mtime).toBeGreaterThanOrEqual(before);
    }
    const hosts = byName.get("etc/hosts")!;
    // The mode field carries the file type bits (S_IFREG here), as containers-storage's Go writer puts them.
    expect([hosts.type, hosts.mode, hosts.uid, hosts.uname, hosts.gname, hosts.size, hosts.mtime]).toEqual(["0", 0o100644, 0, "root", "root", 24, 1700000000]);
    expect(byName.get("newfile")!.uid).toBe(1000);
    expect([byName.get("data")!.type, byName.get("data")!.mode]).toEqual(["5", 0o40755]);
    // Two zero blocks end the archive, without padding to a 10240-byte record.
    const size = statSync(tar).size;
    expect(size).toBe(endOfLastMember + 1024);
    expect(readFileSync(tar).subarray(size - 1024).every((byte) => byte === 0)).toBe(true);
  });

  test("includes parent directories that the change list leaves out", async () => {
    lowerThenUpper("mkdir -p a/b", "echo x > a/b/new");
    const tar = await exportToFile(upper, [{ path: "/a/b/new", kind: 1 }]);
    expect(run(["tar", "-tf", tar]).trim().split("\n")).toEqual(["a/", "a/b/", "a/b/new"]);
  });

  test("applying the export to a copy of lower reproduces upper", async () => {
    lowerThenUpper(
      "mkdir -p keep gone/deep replaced-dir && echo k > keep/f && echo g > gone/deep/f && echo r > replaced-dir/f && echo old > becomes-dir && echo m > modified && ln -s keep old-link",
      `head -c 3000000 /dev/urandom > big
       echo hard > h1 && ln h1 h2 && ln h1 keep/h3
       ln -s ../keep/f keep/link && mkfifo fifo && mknod dev c 1 3
       printf '#!' > suid && chmod 4755 suid && mkdir sticky && chmod 1777 sticky
       echo owned > owned && chown 123:456 owned
       setfattr -n user.note -v hello modified && chmod 600 modified
       rm -r gone replaced-dir && echo now-a-file > replaced-dir
       rm becomes-dir && mkdir becomes-dir && echo inner > becomes-dir/inner
       rm old-link && ln -s elsewhere old-link`,
    );
    const changes = await compareTrees(lower, upper, NO_MAPS);
    const tar = await exportToFile(upper, changes);
    sh(`cp -a ${lower} ${work}/result`);
    await applyFile(`${work}/result`, tar);
    expect(await compareTrees(`${work}/result`, upper, NO_MAPS)).toEqual([]);
    expect(snapshotTree(`${work}/result`, { skipRoot: true })).toEqual(snapshotTree(upper, { skipRoot: true }));
  });

  test("owners are mapped back to container IDs", async () => {
    lowerThenUpper("true", "echo x > file && chown 100000:200000 file && mkdir dir && chown 100005:200005 dir");
    const maps: IdMaps = { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }] };
    const tar = await exportToFile(upper, await compareTrees(lower, upper, { lower: maps, upper: maps }), maps);
    const { members } = readWithPython(tar);
    expect(members.map((m) => [m.name, m.uid, m.gid])).toEqual([
      ["dir", 5, 5],
      ["file", 0, 0],
    ]);
  });

  test("exports user.* xattrs as PAX SCHILY.xattr records, not trusted.* ones", async () => {
    lowerThenUpper("true", "echo x > file && setfattr -n user.color -v blue file && setfattr -n trusted.overlay.opaque -v y file");
    const tar = await exportToFile(upper, await compareTrees(lower, upper, NO_MAPS));
    const { members } = readWithPython(tar);
    expect(members[0]!.xattrs).toEqual({ "user.color": "blue" });
    expect(run(["tar", "--xattrs", "--xattrs-include=*", "-tvf", tar])).toContain("file");
  });
});

describe("entryFromStat", () => {
  test("describes a tree entry as a tar entry", () => {
    sh(`mkdir -p ${upper}/d && cd ${upper} && ln -s target d/link && mknod d/null c 1 3 && touch -h -d @1700000000.7 d/link`);
    const link = entryFromStat(upper, "d/link", NO_ID_MAPS)!;
    // The mtime is truncated to the second and the mode carries the type bits, as containers-storage 1.43 writes them.
    expect([link.path, link.type, link.linkTarget, link.mtimeNs, link.mode]).toEqual(["d/link", "symlink", "target", 1700000000_000_000_000n, 0o120777]);
    const dir = entryFromStat(upper, "d", NO_ID_MAPS)!;
    expect([dir.path, dir.type, dir.uname, dir.mode]).toEqual(["d/", "dir", "root", 0o40755]);
    const device = entryFromStat(upper, "d/null", NO_ID_MAPS)!;
    expect([device.type, device.devMajor, device.devMinor, device.size, device.mode & 0o170000]).toEqual(["char", 1, 3, 0, 0o020000]);
  });

  test("returns null for sockets", () => {
    sh(`mkdir -p ${upper} && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('${upper}/sock')"`);
    expect(entryFromStat(upper, "sock", NO_ID_MAPS)).toBeNull();
  });
});
