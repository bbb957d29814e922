/** The concurrency suite's checker: it must accept what some order explains and flag what none does. */
import { describe, expect, test } from "bun:test";
import { type Effect, type FinalState, type OperationRecord, checkHistory, linearizable } from "./history.ts";

function op(start: number, end: number, effects: Effect[], outcome: OperationRecord["outcome"] = "ok"): OperationRecord {
  return { worker: 0, step: 0, argv: ["x"], start, end, code: outcome === "ok" ? 0 : 1, stdout: "", stderr: "", outcome, effects };
}

function finalState(layers: Record<string, { names?: string[]; metadata?: string }>): FinalState {
  const objects: FinalState["objects"] = { layer: new Map(), image: new Map(), container: new Map() };
  for (const [id, l] of Object.entries(layers)) objects.layer.set(id, { names: l.names ?? [], metadata: l.metadata ?? "", data: new Map() });
  return { objects, mountCounts: new Map() };
}

describe("linearizable", () => {
  const set = (start: number, end: number, value: string) => ({ start, end, apply: () => value });
  test("overlapping writes may end in either order; sequential ones only in theirs", () => {
    expect(linearizable([set(0, 10, "a"), set(5, 15, "b")], null, "a")).toBe(true);
    expect(linearizable([set(0, 10, "a"), set(5, 15, "b")], null, "b")).toBe(true);
    expect(linearizable([set(0, 4, "a"), set(5, 15, "b")], null, "a")).toBe(false);
  });

  test("a precondition that no order satisfies is caught", () => {
    const createIfFree = (start: number, end: number, id: string) => ({ start, end, apply: (s: string | null) => (s === null ? id : undefined) });
    expect(linearizable([createIfFree(0, 4, "x"), createIfFree(5, 9, "y")], null, "y")).toBe(false);
  });
});

describe("checkHistory", () => {
  test("a consistent history passes", () => {
    const history = [
      op(0, 10, [{ type: "create", kind: "layer", id: "A", names: ["n"] }]),
      op(11, 20, [{ type: "create", kind: "layer", id: "B", names: [] }]),
      op(21, 30, [{ type: "names", kind: "layer", id: "B", mode: "add", names: ["n"] }]),
      op(25, 35, [{ type: "metadata", kind: "layer", id: "A", value: "m1" }]),
    ];
    expect(checkHistory(history, finalState({ A: { metadata: "m1" }, B: { names: ["n"] } }))).toEqual([]);
  });

  test("a lost name move, a resurrected object, a stale value and a refusal nothing explains are all flagged", () => {
    const history = [
      op(0, 10, [{ type: "create", kind: "layer", id: "A", names: ["n"] }]),
      op(11, 20, [{ type: "create", kind: "layer", id: "B", names: [] }]),
      op(21, 30, [{ type: "names", kind: "layer", id: "B", mode: "add", names: ["n"] }]),
      op(31, 40, [{ type: "metadata", kind: "layer", id: "A", value: "old" }]),
      op(41, 50, [{ type: "metadata", kind: "layer", id: "A", value: "new" }]),
      op(51, 60, [{ type: "create", kind: "layer", id: "C", names: [] }]),
      op(61, 70, [{ type: "delete", kind: "layer", id: "C" }]),
      op(71, 80, [{ type: "unknown", refs: [{ kind: "layer", id: "B" }] }], "refused"),
    ];
    const problems = checkHistory(history, finalState({ A: { names: ["n"], metadata: "old" }, B: {}, C: {} }));
    expect(problems).toEqual([
      "layer C still exists after its deletion",
      "layer name n ends on A, which no order of the commands that touched it explains",
      'layer A has metadata "old", not the last value written',
      "worker 0 step 0 [71.0, 80.0] x was refused as unknown, but nothing it names had been deleted: ",
    ]);
  });
});
