/** The ID-mapping options of create-layer, import-layer and create-container (docs/cli-contract.md §5). */
import { InvalidArgumentError } from "../errors.ts";
import type { IdMapping, IdMapsRequest } from "../idmap.ts";
import type { CommandContext, OptionDef } from "./command.ts";
import { stringOption } from "./common.ts";

export const ID_MAP_OPTIONS: OptionDef[] = [
  { names: ["uidmap"], type: "string", description: "UID map as containerID:hostID:size[:...]" },
  { names: ["gidmap"], type: "string", description: "GID map as containerID:hostID:size[:...]" },
  { names: ["hostuidmap"], type: "bool", description: "Force host UID map (no mapping)" },
  { names: ["hostgidmap"], type: "bool", description: "Force host GID map (no mapping)" },
  { names: ["subuidmap"], type: "string", description: "Map UIDs from the ranges of a user in /etc/subuid" },
  { names: ["subgidmap"], type: "string", description: "Map GIDs from the ranges of a group in /etc/subgid" },
];

/** The largest user or group ID a range may include. */
const MAX_ID = 0xfffffffe;

/** Parses "C:H:S[:C:H:S...]"; the error matches containers-storage's. */
export function parseIdMap(text: string, which: "uid" | "gid"): IdMapping[] {
  const parts = text.split(":");
  const numbers = parts.map((p) => (/^[0-9]+$/.test(p) ? Number(p) : NaN));
  if (parts.length % 3 !== 0 || numbers.some((n) => !Number.isSafeInteger(n) || n > 0xffffffff)) {
    const shown = text.length > 80 ? `${text.slice(0, 64)}... (${text.length} characters)` : text;
    throw new InvalidArgumentError(`initializing ID mappings: ${which} setting is malformed expected ["uint32:uint32:uint32"]: ["${shown}"]`);
  }
  const ranges: IdMapping[] = [];
  for (let i = 0; i < numbers.length; i += 3) {
    const range = { containerId: numbers[i]!, hostId: numbers[i + 1]!, size: numbers[i + 2]! };
    // IDs are 32-bit and 4294967295 is (uid_t)-1, which chown takes as "leave unchanged".
    if (Math.max(range.containerId, range.hostId) + range.size > MAX_ID + 1) {
      throw new InvalidArgumentError(`initializing ID mappings: ${which} range ${range.containerId}:${range.hostId}:${range.size} goes beyond the largest ID ${MAX_ID}`);
    }
    ranges.push(range);
  }
  return ranges;
}

/** Ranges of a user (or group) in /etc/subuid (/etc/subgid), mapped to container IDs 0, 1, 2, ... in host order. */
export async function subordinateRanges(name: string, file: "/etc/subuid" | "/etc/subgid"): Promise<IdMapping[]> {
  let text = "";
  try {
    text = await Bun.file(file).text();
  } catch {
    // A missing file has no ranges.
  }
  const ranges = text
    .split("\n")
    .map((line) => line.trim().split(":"))
    .filter((f) => f.length === 3 && f[0] === name)
    .map((f) => ({ start: Number(f[1]), size: Number(f[2]) }))
    .filter((r) => Number.isSafeInteger(r.start) && Number.isSafeInteger(r.size) && r.size > 0)
    .sort((a, b) => a.start - b.start);
  if (ranges.length === 0) throw new InvalidArgumentError(`no ${file === "/etc/subuid" ? "subuid" : "subgid"} ranges found for ${file === "/etc/subuid" ? "user" : "group"} "${name}" in ${file}`);
  let next = 0;
  return ranges.map((r) => {
    const mapping = { containerId: next, hostId: r.start, size: r.size };
    next += r.size;
    return mapping;
  });
}

function overlaps(map: IdMapping[]): boolean {
  const sorted = [...map].sort((a, b) => a.containerId - b.containerId);
  return sorted.some((r, i) => i > 0 && sorted[i - 1]!.containerId + sorted[i - 1]!.size > r.containerId);
}

/**
 * The maps the options ask for, each axis separately: undefined when neither a map nor
 * --host{uid,gid}map is given for it (a layer then inherits its parent's), [] for host IDs.
 */
export async function idMapsFromOptions(ctx: CommandContext): Promise<IdMapsRequest | undefined> {
  const uidText = stringOption(ctx, "uidmap");
  const gidText = stringOption(ctx, "gidmap");
  let subUser = stringOption(ctx, "subuidmap");
  let subGroup = stringOption(ctx, "subgidmap");
  if (subUser !== undefined && subGroup === undefined) subGroup = subUser;
  if (subGroup !== undefined && subUser === undefined) subUser = subGroup;
  const hostUid = ctx.options.hostuidmap === true;
  const hostGid = ctx.options.hostgidmap === true;
  if (hostUid && (uidText !== undefined || subUser !== undefined)) throw new InvalidArgumentError("host uid map specified along with UID mapping");
  if (hostGid && (gidText !== undefined || subGroup !== undefined)) throw new InvalidArgumentError("host gid map specified along with GID mapping");
  const uidMap = [...(subUser !== undefined ? await subordinateRanges(subUser, "/etc/subuid") : []), ...(uidText ? parseIdMap(uidText, "uid") : [])];
  const gidMap = [...(subGroup !== undefined ? await subordinateRanges(subGroup, "/etc/subgid") : []), ...(gidText ? parseIdMap(gidText, "gid") : [])];
  if (overlaps(uidMap) || overlaps(gidMap)) throw new InvalidArgumentError("initializing ID mappings: overlapping ranges in the ID map");
  const axis = (map: IdMapping[], host: boolean) => (map.length > 0 || host ? map : undefined);
  const request = { uidMap: axis(uidMap, hostUid), gidMap: axis(gidMap, hostGid) };
  return request.uidMap === undefined && request.gidMap === undefined ? undefined : request;
}
