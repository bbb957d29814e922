/** Object IDs: generation and validation (spec/cli.md §2.2). */
import { randomBytes } from "node:crypto";
import { InvalidIdError } from "../errors.ts";

/** A random 64-hex-character ID whose first 12 characters are not all digits. */
export function generateId(): string {
  for (;;) {
    const id = randomBytes(32).toString("hex");
    if (!/^[0-9]{12}/.test(id)) return id;
  }
}

/** Rejects IDs that could not safely name a directory: empty, "." or "..", or containing "/" or NUL. */
export function validateId(id: string): string {
  if (id === "" || id === "." || id === ".." || id.includes("/") || id.includes("\0") || id.length > 1024) {
    throw new InvalidIdError(id);
  }
  return id;
}
