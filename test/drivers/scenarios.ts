/** The layer scenarios both driver suites run: a base layer with every kind of entry, a child and a grandchild that delete, replace and bring back, and the changes users see. */
import { ChangeKind, type Change } from "../../src/archive/types.ts";
import type { TarSpecEntry } from "./store-helpers.ts";

export const T0 = "1714557600";

/** A base layer with every kind of entry, owners, ns mtimes, xattrs and a hard link. */
export const BASE: TarSpecEntry[] = [
  { name: "data/", type: "dir", mode: 0o750, uid: 1000, gid: 1000, mtime: `${T0}.100000001` },
  { name: "data/file1", data: "one", mode: 0o640, uid: 1000, gid: 1000, mtime: `${T0}.123456789`, xattrs: { "user.note": "n1" } },
  // A hard link's header carries its target's mode, owner and time, as tar writers emit it (its header sets the shared inode's).
  { name: "data/hard", type: "hardlink", link: "data/file1", mode: 0o640, uid: 1000, gid: 1000, mtime: `${T0}.123456789` },
  { name: "data/link", type: "symlink", link: "file1", mtime: `${T0}.5` },
  { name: "data/setuid", data: "#!/bin/sh\n", mode: 0o4755 },
  { name: "data/sub/", type: "dir", mtime: `${T0}.2` },
  { name: "data/sub/file2", data: "two", mtime: `${T0}.3` },
  { name: "dev/", type: "dir" },
  { name: "dev/fifo", type: "fifo", mode: 0o600 },
  { name: "dev/null", type: "char", major: 1, minor: 3, mode: 0o666 },
  { name: "etc/", type: "dir", mtime: `${T0}.111111111` },
  { name: "etc/hosts", data: "127.0.0.1 localhost\n", mtime: `${T0}.222222222` },
  { name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n" },
  { name: "gone/", type: "dir" },
  { name: "gone/a", data: "a" },
  { name: "gone/b", data: "b" },
  { name: "opaque/", type: "dir", mode: 0o711 },
  { name: "opaque/inner/", type: "dir" },
  { name: "opaque/inner/deep", data: "deep" },
  { name: "opaque/keep-name", data: "old keep" },
  { name: "opaque/old1", data: "old1" },
];

/** Deletes a file, a symlink and a whole directory, replaces a directory (opaque), modifies and adds. */
export const CHILD: TarSpecEntry[] = [
  { name: "data/", type: "dir", mode: 0o750, uid: 1000, gid: 1000, mtime: `${T0}.400000004` },
  { name: "data/.wh.link", mtime: T0 },
  { name: "data/sub/", type: "dir", mtime: `${T0}.6` },
  { name: "data/sub/.wh.file2", mtime: T0 },
  { name: "data/sub/file3", data: "three", mtime: `${T0}.7` },
  { name: "etc/", type: "dir", mtime: `${T0}.8` },
  { name: "etc/hosts", data: "changed hosts\n", mtime: `${T0}.9` },
  { name: ".wh.gone", mtime: T0 },
  { name: "newdir/", type: "dir", mtime: `${T0}.01` },
  { name: "newdir/x", data: "xx", mode: 0o600, uid: 7, gid: 8, mtime: `${T0}.02` },
  { name: "newdir/y", type: "hardlink", link: "newdir/x", mode: 0o600, uid: 7, gid: 8, mtime: `${T0}.02` },
  { name: "newfile", data: "new", mtime: `${T0}.03`, xattrs: { "user.a": "b" } },
  { name: "opaque/", type: "dir", mode: 0o711, mtime: `${T0}.04` },
  { name: "opaque/.wh..wh..opq", mtime: T0 },
  { name: "opaque/keep-name", data: "new keep!", mtime: `${T0}.05` },
  { name: "opaque/new", data: "n", mtime: `${T0}.06` },
];

/** Brings back deleted names and a directory hidden by the opaque one, and deletes more. */
export const GRANDCHILD: TarSpecEntry[] = [
  { name: "data/", type: "dir", mode: 0o750, uid: 1000, gid: 1000, mtime: `${T0}.11` },
  { name: "data/sub/", type: "dir", mtime: `${T0}.12` },
  { name: "data/sub/file2", data: "two again", mtime: `${T0}.13` },
  { name: "etc/", type: "dir", mtime: `${T0}.14` },
  { name: "etc/.wh.passwd", mtime: T0 },
  { name: "gone/", type: "dir", mtime: `${T0}.15` },
  { name: "gone/again", data: "again", mtime: `${T0}.16` },
  { name: "opaque/", type: "dir", mode: 0o711, mtime: `${T0}.17` },
  { name: "opaque/inner/", type: "dir", mtime: `${T0}.18` },
  { name: "opaque/inner/fresh", data: "fresh", mtime: `${T0}.19` },
];

export const CHILD_CHANGES = [
  'Modify "/data"',
  'Modify "/data/sub"',
  'Add "/data/sub/file3"',
  'Delete "/data/sub/file2"',
  'Delete "/data/link"',
  'Modify "/etc"',
  'Modify "/etc/hosts"',
  'Add "/newdir"',
  'Add "/newdir/x"',
  'Add "/newdir/y"',
  'Add "/newfile"',
  'Modify "/opaque"',
  'Modify "/opaque/keep-name"',
  'Add "/opaque/new"',
  'Delete "/opaque/inner"',
  'Delete "/opaque/old1"',
  'Delete "/gone"',
];

export const GRANDCHILD_CHANGES = [
  'Modify "/data"',
  'Modify "/data/sub"',
  'Add "/data/sub/file2"',
  'Modify "/etc"',
  'Delete "/etc/passwd"',
  'Add "/gone"',
  'Add "/gone/again"',
  'Modify "/opaque"',
  'Add "/opaque/inner"',
  'Add "/opaque/inner/fresh"',
];

/** The grandchild against the base layer (not its parent): the merged trees compared. */
export const GRANDCHILD_FROM_BASE = [
  'Modify "/data"',
  'Modify "/data/sub"',
  'Modify "/data/sub/file2"',
  'Add "/data/sub/file3"',
  'Delete "/data/link"',
  'Modify "/etc"',
  'Modify "/etc/hosts"',
  'Delete "/etc/passwd"',
  'Modify "/gone"',
  'Add "/gone/again"',
  'Delete "/gone/a"',
  'Delete "/gone/b"',
  'Add "/newdir"',
  'Add "/newdir/x"',
  'Add "/newdir/y"',
  'Add "/newfile"',
  'Modify "/opaque"',
  'Modify "/opaque/inner"',
  'Add "/opaque/inner/fresh"',
  'Delete "/opaque/inner/deep"',
  'Modify "/opaque/keep-name"',
  'Add "/opaque/new"',
  'Delete "/opaque/old1"',
];

/** Changes as "Kind \"path\"" lines. */
export function show(changes: Change[]): string[] {
  return changes.map((c) => `${ChangeKind[c.kind]} ${JSON.stringify(c.path)}`);
}
