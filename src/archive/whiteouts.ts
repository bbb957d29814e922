/**
 * The names in a layer tar that stand for removals (the OCI image spec's whiteouts) and for
 * AUFS's own metadata, and what an entry's path means by them: one reading for the apply
 * (apply.ts), the look ahead at what a layer removes (layer-removals.ts) and the writers of
 * diffs (export.ts, overlay-diff.ts).
 */

/** A name `.wh.X` removes X from its directory. */
export const WHITEOUT_PREFIX = ".wh.";
/** Top-level names with this prefix are AUFS metadata, not part of the tree (except the opaque marker). */
export const WHITEOUT_META_PREFIX = ".wh..wh.";
/** In a directory, removes what the layers below put there (an opaque directory). */
export const OPAQUE_MARKER = ".wh..wh..opq";
/** AUFS's directory of hard link targets. */
export const HARDLINK_STORE = ".wh..wh.plnk";

/**
 * What an entry at a cleaned path (its components) means: undefined for an ordinary entry,
 * "metadata" for AUFS metadata (nothing in the tree), "opaque" for an opaque marker,
 * `{ hides: X }` for a whiteout of X in the entry's directory, and "ignored" for a whiteout
 * that names nothing ("", "." or "..").
 */
export function whiteoutMeaning(parts: string[]): "metadata" | "opaque" | "ignored" | { hides: string } | undefined {
  const name = parts[parts.length - 1] ?? "";
  if (parts[0]?.startsWith(WHITEOUT_META_PREFIX) && !(parts.length === 1 && name === OPAQUE_MARKER)) return "metadata";
  if (!name.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (name === OPAQUE_MARKER) return "opaque";
  const hidden = name.slice(WHITEOUT_PREFIX.length);
  return hidden === "" || hidden === "." || hidden === ".." ? "ignored" : { hides: hidden };
}
