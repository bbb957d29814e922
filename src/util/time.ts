/** The clock the store stamps records with (creation times in nanoseconds, as containers-storage keeps them). */

let anchorWallNs = 0n;
let anchorMonotonicNs = 0n;

/** Current time in nanoseconds since the epoch (ms from Date.now plus sub-ms from a monotonic clock); never below Date.now(). */
export function nowNs(): bigint {
  const wallNs = BigInt(Date.now()) * 1_000_000n;
  const monotonic = process.hrtime.bigint();
  const candidate = anchorWallNs + (monotonic - anchorMonotonicNs);
  if (anchorWallNs === 0n || candidate >= wallNs + 2_000_000n) {
    // First use, or the wall clock went back: start again inside the current millisecond.
    anchorWallNs = wallNs + (monotonic % 1_000_000n);
    anchorMonotonicNs = monotonic;
    return anchorWallNs;
  }
  if (candidate < wallNs) {
    anchorWallNs = wallNs;
    anchorMonotonicNs = monotonic;
    return wallNs;
  }
  return candidate;
}
