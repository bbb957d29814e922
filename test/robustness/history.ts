/**
 * The history of a concurrency run and the checks that the final store is what the successes
 * imply. Every operation is known only by its real-time interval [start, end] (spawn to exit),
 * so each check asks whether some order of the operations that respects those intervals
 * (a linearization) explains what was observed; a check fails only when none does.
 */

export type Kind = "layer" | "image" | "container";

/** What a successful (or refused) command did to the store, as far as the checks care. */
export type Effect =
  | { type: "create"; kind: Kind; id: string; names: string[]; metadata?: string }
  | { type: "delete"; kind: Kind; id: string }
  | { type: "names"; kind: Kind; id: string; mode: "add" | "set"; names: string[] }
  | { type: "metadata"; kind: Kind; id: string; value: string }
  | { type: "data"; kind: Kind; id: string; key: string; digest: string }
  | { type: "mount"; layer: string }
  | { type: "unmount"; layer: string }
  /** A creation refused because this one name was in use: the name had an owner at some point. */
  | { type: "name-taken"; kind: Kind; name: string }
  /** A listing: what existed (by kind) at some point in the interval. */
  | { type: "listing"; kind: Kind; ids: string[]; names: string[] }
  /** `exists`: whether the object existed at some point in the interval. */
  | { type: "exists"; kind: Kind; id: string; found: boolean }
  /** A refusal saying a referenced object is unknown: one of these must have been deleted by then. */
  | { type: "unknown"; refs: Array<{ kind: Kind; id: string }> };

export type Outcome = "ok" | "refused" | "unexpected";

export interface OperationRecord {
  worker: number;
  step: number;
  argv: string[];
  start: number;
  end: number;
  code: number;
  stdout: string;
  stderr: string;
  outcome: Outcome;
  effects: Effect[];
}

/** What the store holds at the end, read after every worker has stopped. */
export interface FinalState {
  objects: Record<Kind, Map<string, { names: string[]; metadata: string; data: Map<string, string> }>>;
  /** Mount count per layer ID, for layers with a count above zero. */
  mountCounts: Map<string, number>;
}

const KINDS: Kind[] = ["layer", "image", "container"];

function successes(history: OperationRecord[]): OperationRecord[] {
  return history.filter((op) => op.outcome === "ok");
}

function describe(op: OperationRecord): string {
  return `worker ${op.worker} step ${op.step} [${op.start.toFixed(1)}, ${op.end.toFixed(1)}] ${op.argv.join(" ")}`;
}

interface Interval {
  start: number;
  end: number;
}

/** One operation's effect on a single register, for the linearization search. */
interface RegisterEvent<S> extends Interval {
  /** The state after the event, or undefined when the event could not have happened in state `before`. */
  apply(before: S): S | undefined;
}

/**
 * True when some order of the events consistent with their intervals takes `initial` to `final`.
 * Wing & Gong's search with memoized (remaining events, state) pairs; histories here are short.
 */
export function linearizable<S extends string | null>(events: RegisterEvent<S>[], initial: S, final: S): boolean {
  const sorted = [...events].sort((a, b) => a.start - b.start);
  const failed = new Set<string>();
  const remaining = sorted.map(() => true);
  const search = (left: number, state: S): boolean => {
    if (left === 0) return state === final;
    const key = `${remaining.map((r) => (r ? 1 : 0)).join("")}|${state}`;
    if (failed.has(key)) return false;
    let earliestEnd = Infinity;
    for (let i = 0; i < sorted.length; i++) if (remaining[i]) earliestEnd = Math.min(earliestEnd, sorted[i]!.end);
    for (let i = 0; i < sorted.length; i++) {
      if (!remaining[i] || sorted[i]!.start > earliestEnd) continue;
      const next = sorted[i]!.apply(state);
      if (next === undefined) continue;
      remaining[i] = false;
      const found = search(left - 1, next);
      remaining[i] = true;
      if (found) return true;
    }
    failed.add(key);
    return false;
  };
  return search(sorted.length, initial);
}

/** Creations and deletions of every object, by kind and ID. */
function lifetimes(history: OperationRecord[]): Record<Kind, Map<string, { created: Interval[]; deleted: Interval[] }>> {
  const result = { layer: new Map(), image: new Map(), container: new Map() } as Record<Kind, Map<string, { created: Interval[]; deleted: Interval[] }>>;
  const entry = (kind: Kind, id: string) => {
    let e = result[kind].get(id);
    if (!e) result[kind].set(id, (e = { created: [], deleted: [] }));
    return e;
  };
  for (const op of successes(history)) {
    for (const effect of op.effects) {
      if (effect.type === "create") entry(effect.kind, effect.id).created.push(op);
      if (effect.type === "delete") entry(effect.kind, effect.id).deleted.push(op);
    }
  }
  return result;
}

/** Every violation of the invariants the history implies; empty when the store is consistent with it. */
export function checkHistory(history: OperationRecord[], final: FinalState): string[] {
  const problems: string[] = [];
  for (const op of history) {
    if (op.outcome === "unexpected") problems.push(`unexpected failure: ${describe(op)}: exit ${op.code}: ${op.stderr.trim() || op.stdout.trim()}`);
    if (/database is locked|SQLITE_BUSY|busy/i.test(op.stderr)) problems.push(`store busy: ${describe(op)}: ${op.stderr.trim()}`);
  }
  const lives = lifetimes(history);

  // Existence: created and not deleted <=> present; each object is created and deleted at most once.
  for (const kind of KINDS) {
    for (const [id, life] of lives[kind]) {
      if (life.created.length !== 1) problems.push(`${kind} ${id} was created ${life.created.length} times`);
      if (life.deleted.length > 1) problems.push(`${kind} ${id} was deleted successfully ${life.deleted.length} times`);
      const shouldExist = life.created.length > 0 && life.deleted.length === 0;
      if (shouldExist !== final.objects[kind].has(id)) problems.push(`${kind} ${id} ${shouldExist ? "is missing" : "still exists after its deletion"}`);
    }
    for (const id of final.objects[kind].keys()) if (!lives[kind].has(id)) problems.push(`${kind} ${id} exists but no successful command created it`);
  }

  // Names: unique per kind, and each name's owner explained by a linearization of the commands touching it.
  for (const kind of KINDS) {
    const owners = new Map<string, string>();
    for (const [id, object] of final.objects[kind]) {
      for (const name of object.names) {
        const other = owners.get(name);
        if (other !== undefined) problems.push(`${kind} name ${name} is on both ${other} and ${id}`);
        owners.set(name, id);
      }
    }
    for (const name of namesTouched(history, kind)) {
      const events = nameEvents(history, kind, name);
      const owner = owners.get(name) ?? null;
      if (!linearizable(events, null, owner)) problems.push(`${kind} name ${name} ends on ${owner ?? "nothing"}, which no order of the commands that touched it explains`);
    }
  }

  // Metadata and data items: each final value is the last write in some linearization (a write no other write follows for sure).
  for (const kind of KINDS) {
    for (const [id, object] of final.objects[kind]) {
      const writes = successes(history).flatMap((op) =>
        op.effects.flatMap((e) => {
          if (e.type === "metadata" && e.kind === kind && e.id === id) return [{ start: op.start, end: op.end, value: e.value }];
          if (e.type === "create" && e.kind === kind && e.id === id && e.metadata !== undefined) return [{ start: op.start, end: op.end, value: e.metadata }];
          return [];
        }),
      );
      if (!registerExplains(writes, "", object.metadata)) problems.push(`${kind} ${id} has metadata ${JSON.stringify(object.metadata)}, not the last value written`);
      const keys = new Set([...object.data.keys()]);
      for (const op of successes(history)) for (const e of op.effects) if (e.type === "data" && e.kind === kind && e.id === id) keys.add(e.key);
      for (const key of keys) {
        const dataWrites = successes(history).flatMap((op) =>
          op.effects.flatMap((e) => (e.type === "data" && e.kind === kind && e.id === id && e.key === key ? [{ start: op.start, end: op.end, value: e.digest }] : [])),
        );
        const value = object.data.get(key) ?? "";
        if (!registerExplains(dataWrites, "", value)) problems.push(`${kind} ${id} data item ${key} has digest ${value || "(none)"}, not that of the last value written`);
      }
    }
  }

  // Mount counts: workers only unmount what they mounted, so a live layer's count is mounts - unmounts.
  const liveLayers = new Set(final.objects.layer.keys());
  const expectedCounts = new Map<string, number>();
  for (const op of successes(history)) {
    for (const e of op.effects) {
      if (e.type === "mount") expectedCounts.set(e.layer, (expectedCounts.get(e.layer) ?? 0) + 1);
      if (e.type === "unmount") expectedCounts.set(e.layer, (expectedCounts.get(e.layer) ?? 0) - 1);
    }
  }
  for (const [layer, count] of final.mountCounts) {
    if (!liveLayers.has(layer)) problems.push(`deleted layer ${layer} still has mount count ${count}`);
  }
  for (const layer of liveLayers) {
    const expected = expectedCounts.get(layer) ?? 0;
    const actual = final.mountCounts.get(layer) ?? 0;
    if (expected !== actual) problems.push(`layer ${layer} has mount count ${actual}, but ${expected} mounts are held`);
  }

  problems.push(...checkObservations(history, lives));
  return problems;
}

function namesTouched(history: OperationRecord[], kind: Kind): Set<string> {
  const names = new Set<string>();
  for (const op of history) {
    for (const e of op.effects) {
      if ((e.type === "create" || e.type === "names") && e.kind === kind) for (const n of e.names) names.add(n);
      if (e.type === "name-taken" && e.kind === kind) names.add(e.name);
    }
  }
  return names;
}

/** The commands that can change who owns one name, as events on the register "owner of the name". */
function nameEvents(history: OperationRecord[], kind: Kind, name: string): RegisterEvent<string | null>[] {
  const events: RegisterEvent<string | null>[] = [];
  for (const op of history) {
    for (const e of op.effects) {
      if (op.outcome === "refused" && e.type === "name-taken" && e.kind === kind && e.name === name) {
        events.push({ start: op.start, end: op.end, apply: (s) => (s === null ? undefined : s) });
      }
      if (op.outcome !== "ok" || !("kind" in e) || e.kind !== kind) continue;
      if (e.type === "create" && e.names.includes(name)) {
        const id = e.id;
        events.push({ start: op.start, end: op.end, apply: (s) => (s === null ? id : undefined) });
      } else if (e.type === "names") {
        const id = e.id;
        if (e.names.includes(name)) events.push({ start: op.start, end: op.end, apply: () => id });
        else if (e.mode === "set") events.push({ start: op.start, end: op.end, apply: (s) => (s === id ? null : s) });
      } else if (e.type === "delete") {
        const id = e.id;
        events.push({ start: op.start, end: op.end, apply: (s) => (s === id ? null : s) });
      }
    }
  }
  return events;
}

/** True when `final` is the initial value with no writes, or the value of a write that no other write surely follows. */
function registerExplains(writes: Array<Interval & { value: string }>, initial: string, final: string): boolean {
  if (writes.length === 0) return final === initial;
  return writes.some((w) => w.value === final && !writes.some((other) => other !== w && other.start > w.end));
}

/** Listings, `exists` answers and "not known" refusals must agree with when objects were created and deleted. */
function checkObservations(history: OperationRecord[], lives: ReturnType<typeof lifetimes>): string[] {
  const problems: string[] = [];
  const createdBefore = (kind: Kind, id: string, t: number) => lives[kind].get(id)?.created.some((c) => c.end < t) ?? false;
  const createStartedBefore = (kind: Kind, id: string, t: number) => lives[kind].get(id)?.created.some((c) => c.start < t) ?? false;
  const deletionEndedBefore = (kind: Kind, id: string, t: number) => lives[kind].get(id)?.deleted.some((d) => d.end < t) ?? false;
  const deletionStartedBefore = (kind: Kind, id: string, t: number) => lives[kind].get(id)?.deleted.some((d) => d.start < t) ?? false;
  for (const op of history) {
    for (const e of op.effects) {
      if (e.type === "listing") {
        const seen = new Set<string>();
        for (const name of e.names) {
          if (seen.has(name)) problems.push(`${describe(op)} listed ${e.kind} name ${name} twice`);
          seen.add(name);
        }
        for (const id of e.ids) {
          if (!createStartedBefore(e.kind, id, op.end)) problems.push(`${describe(op)} listed ${e.kind} ${id} before any command created it`);
          if (deletionEndedBefore(e.kind, id, op.start)) problems.push(`${describe(op)} listed ${e.kind} ${id} after it was deleted`);
        }
      } else if (e.type === "exists") {
        if (e.found && (!createStartedBefore(e.kind, e.id, op.end) || deletionEndedBefore(e.kind, e.id, op.start))) problems.push(`${describe(op)} found a ${e.kind} that did not exist`);
        if (!e.found && createdBefore(e.kind, e.id, op.start) && !deletionStartedBefore(e.kind, e.id, op.end)) problems.push(`${describe(op)} did not find an existing ${e.kind}`);
      } else if (e.type === "unknown") {
        if (!e.refs.some((r) => deletionStartedBefore(r.kind, r.id, op.end))) problems.push(`${describe(op)} was refused as unknown, but nothing it names had been deleted: ${op.stderr.trim()}`);
      }
    }
  }
  return problems;
}
