/** Object IDs: generation and validation (docs/cli-contract.md §2.2). */
import { InvalidIdError } from "../errors.ts";

/** A random 64-hex-character ID whose first 12 characters are not all digits. */
export function generateId(): string {
  for (;;) {
    const id = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
    if (!/^[0-9]{12}/.test(id)) return id;
  }
}

/** The ID asked for, checked; none or an empty one gets a generated ID, as in 1.43 (`create-layer -i ""`). */
export function chosenId(asked: string | undefined): string {
  return validateId(asked || generateId());
}

/** The longest file name Linux file systems take (NAME_MAX), in bytes: IDs name directories. */
const MAX_ID_BYTES = 255;

/**
 * Rejects IDs that could not safely name a directory: empty, "." or "..", containing "/" or
 * NUL, longer than a file name may be, or starting with "." (names the drivers keep for their
 * own files, such as overlay's .has-mount-program).
 */
export function validateId(id: string): string {
  if (id === "" || id === "." || id === ".." || id.includes("/") || id.includes("\0")) throw new InvalidIdError(id);
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new InvalidIdError(id, `an ID may be at most ${MAX_ID_BYTES} bytes long`);
  if (id.startsWith(".")) throw new InvalidIdError(id, `an ID may not start with "."`);
  return id;
}
