/** The completion scripts `oci-storage completion SHELL` prints: thin adapters that ask `oci-storage __complete`. */
import bash from "./oci-storage.bash" with { type: "text" };
import fish from "./oci-storage.fish" with { type: "text" };
import zsh from "./oci-storage.zsh" with { type: "text" };

/** The shells there is a completion script for, and the script of each. */
export const COMPLETION_SCRIPTS: Readonly<Record<string, string>> = { bash, zsh, fish };
