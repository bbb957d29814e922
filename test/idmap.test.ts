/** ID maps: per-axis inheritance, container root's host owner, and the shift of an owner between maps as containers-storage 1.43 does it. */
import { describe, expect, test } from "bun:test";
import { type IdMaps, NO_ID_MAPS, resolveMaps, rootOwner, shiftOwner } from "../src/idmap.ts";

const range = (containerId: number, hostId: number, size: number) => ({ containerId, hostId, size });
const OVERFLOW = { uid: 65534, gid: 65533 };
const A: IdMaps = { uidMap: [range(0, 100000, 65536)], gidMap: [range(0, 200000, 65536)] };
const B: IdMaps = { uidMap: [range(0, 300000, 1000)], gidMap: [range(0, 400000, 1000)] };

describe("ID maps", () => {
  test("a map not asked for is inherited, one asked for (even empty: host IDs) is taken", () => {
    expect(resolveMaps(undefined, A)).toEqual(A);
    expect(resolveMaps({ uidMap: B.uidMap }, A)).toEqual({ uidMap: B.uidMap, gidMap: A.gidMap });
    expect(resolveMaps({ uidMap: [], gidMap: [] }, A)).toEqual(NO_ID_MAPS);
  });

  test("container root's host owner: through the map, a single-ID map's ID, else the process's (0)", () => {
    expect(rootOwner(A)).toEqual({ uid: 100000, gid: 200000 });
    expect(rootOwner({ uidMap: [range(5, 1000, 1)], gidMap: [range(1, 2000, 10)] })).toEqual({ uid: 1000, gid: 0 });
    expect(rootOwner(NO_ID_MAPS)).toEqual({ uid: 0, gid: 0 });
  });

  test("an owner is shifted host -> container by the source's maps, container -> host by the destination's", () => {
    expect(shiftOwner(NO_ID_MAPS, A, 1000, 5, OVERFLOW)).toEqual({ uid: 101000, gid: 200005 });
    expect(shiftOwner(A, B, 100999, 200001, OVERFLOW)).toEqual({ uid: 300999, gid: 400001 });
    expect(shiftOwner(A, NO_ID_MAPS, 101000, 201000, OVERFLOW)).toEqual({ uid: 1000, gid: 1000 });
  });

  test("a container ID the destination lacks becomes the overflow ID; an owner the source lacks cannot be shifted, but 0:0 counts as root", () => {
    expect(shiftOwner(A, B, 105000, 200001, OVERFLOW)).toEqual({ uid: 65534, gid: 400001 });
    expect(shiftOwner(A, B, 100001, 205000, OVERFLOW)).toEqual({ uid: 300001, gid: 65533 });
    expect(shiftOwner(A, B, 5, 200000, OVERFLOW)).toBeUndefined();
    expect(shiftOwner(A, B, 100000, 0, OVERFLOW)).toBeUndefined();
    expect(shiftOwner(A, B, 0, 0, OVERFLOW)).toEqual({ uid: 300000, gid: 400000 });
  });
});
