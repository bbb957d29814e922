/** The one byte-order comparer that JSON map keys, usage listings and tree walks sort with. */
import { describe, expect, test } from "bun:test";
import { compareBytes } from "../../src/util/byte-order.ts";

describe("compareBytes", () => {
  test("orders by UTF-8 bytes: U+FFFD sorts before an emoji (JS < says the opposite)", () => {
    expect(compareBytes("\ufffd", "😀")).toBeLessThan(0);
    expect(compareBytes("😀", "\ufffd")).toBeGreaterThan(0);
    expect(compareBytes("A", "a")).toBeLessThan(0);
    expect(compareBytes("ab", "abc")).toBeLessThan(0);
    expect(compareBytes("x", "x")).toBe(0);
  });

  test("orders like the UTF-8 bytes", () => {
    const names = ["😀", "ﬀ", "é", "a", "B", "a.b", "a/b", "", "\ud7ff", "\ue000"];
    const byBytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...names].sort(compareBytes)).toEqual(byBytes);
  });
});
