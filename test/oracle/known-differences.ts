/** The deliberate differences from containers-storage 1.43 that oracle steps name (known-differences.json). */
import list from "./known-differences.json";

/** One deliberate difference: what each tool shows at the steps that name it, and why. */
export interface KnownDifference {
  id: string;
  /** Why we differ. */
  reason: string;
  /** Words of the docs/cli.md row that records this difference. */
  docs: string;
  /** What our step shows (any of status, stdout, stderr; normalised as the step compares them); none for a scenario's. */
  ours?: Record<string, unknown>;
  /** What 1.43's step shows. */
  peer?: Record<string, unknown>;
  /** The harness file whose normalisation leaves this difference out (it names the id there). */
  harness?: string;
}

export const KNOWN_DIFFERENCES: KnownDifference[] = list.differences;

/** The entry with this id; an oracle step naming one that does not exist is a mistake in the test. */
export function knownDifference(id: string): KnownDifference {
  const entry = KNOWN_DIFFERENCES.find((d) => d.id === id);
  if (!entry) throw new Error(`known-differences.json has no entry "${id}"`);
  return entry;
}
