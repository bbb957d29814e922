import { describe, expect, test } from "bun:test";
import { nowNs } from "../../src/util/time.ts";

describe("nowNs", () => {
  test("is close to the wall clock and never goes backwards within a process", () => {
    const before = BigInt(Date.now()) * 1_000_000n;
    const first = nowNs();
    const second = nowNs();
    const after = BigInt(Date.now() + 1) * 1_000_000n;
    expect(first).toBeGreaterThanOrEqual(before);
    expect(second).toBeGreaterThanOrEqual(first);
    expect(second).toBeLessThan(after + 2_000_000n);
  });

  test("carries digits below the millisecond", () => {
    const samples = Array.from({ length: 20 }, () => nowNs() % 1_000_000n);
    expect(samples.some((subMs) => subMs !== 0n)).toBe(true);
  });
});
