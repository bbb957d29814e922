/**
 * The failures a user can meet, grouped by what they mean, and the one table that gives each
 * group its exit status. docs/errors.md says which class to throw and how to word its message;
 * texts follow containers-storage 1.43 where scripts may match on them (docs/cli-contract.md).
 */

/** Base of every expected failure: shown as its message alone (a stack only with --debug). Abstract: throw the class that says what went wrong. */
export abstract class StorageError extends Error {}

/** A layer, image, container, data item or name that does not exist. */
export class NotFoundError extends StorageError {}

/** An ID or name that another object of the same kind already has. */
export class AlreadyExistsError extends StorageError {}

/** The object is not in the state the operation needs: used by something else (a layer with children, an image with containers, a mounted layer), or not mounted, or of the wrong type at a path. */
export class PreconditionError extends StorageError {}

/** An argument, option value, ID, digest or configuration setting that is malformed or not allowed. */
export class InvalidArgumentError extends StorageError {}

/** Input or stored data that cannot be read as what it claims to be: a bad tar, a failed decompression, a damaged database or layout record. */
export class CorruptError extends StorageError {}

/** The operating system refused or failed an operation (ENOSPC, EROFS, EIO, EACCES, a failed mount(8)); the message names the path. */
export class IoError extends StorageError {
  constructor(
    message: string,
    /** The errno name (ENOSPC) when known. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Something this build does not do (a driver, a compression format, an option); said plainly rather than faked. */
export class NotSupportedError extends StorageError {}

/** A command line that cannot be understood: a bad option or option value, or `COMMAND --help` (1.43 exits 125). */
export class UsageError extends InvalidArgumentError {}

/** A bad option before the command name, or no command at all (1.43 exits 1, not 125). */
export class GlobalOptionError extends UsageError {}

/** Too few or too many arguments for a command (1.43 exits 1, not 125). */
export class ArgumentCountError extends UsageError {}

/** A command name that no command has (1.43 exits 1, not 125). */
export class UnknownCommandError extends UsageError {}

// Specific kinds, each with 1.43's text.

export class LayerUnknownError extends NotFoundError {
  constructor(message = "layer not known") {
    super(message);
  }
}
export class ImageUnknownError extends NotFoundError {
  constructor(message = "image not known") {
    super(message);
  }
}
export class ContainerUnknownError extends NotFoundError {
  constructor(message = "container not known") {
    super(message);
  }
}
export class NotALayerError extends NotFoundError {
  constructor() {
    super("identifier is not a layer");
  }
}
export class NotAnImageError extends NotFoundError {
  constructor() {
    super("identifier is not an image");
  }
}
export class NotAContainerError extends NotFoundError {
  constructor() {
    super("identifier is not a container");
  }
}
export class NotAnyObjectError extends NotFoundError {
  constructor() {
    super("identifier is not a layer, image, or container");
  }
}
/** A named data item (big data) that the object does not have. */
export class DataItemUnknownError extends NotFoundError {}

export class IdInUseError extends AlreadyExistsError {
  constructor(message = "that ID is already in use") {
    super(message);
  }
}
export class NameInUseError extends AlreadyExistsError {
  constructor(message = "that name is already in use") {
    super(message);
  }
}

export class LayerInUseError extends PreconditionError {}
export class ImageInUseError extends PreconditionError {}

export class InvalidIdError extends InvalidArgumentError {
  constructor(id: string, reason = `an ID must be non-empty, not "." or "..", and contain no "/" or NUL`) {
    const shown = id.length > 80 ? `${JSON.stringify(id.slice(0, 64))}... (${id.length} characters)` : JSON.stringify(id);
    super(`invalid ID ${shown}: ${reason}`);
  }
}

/** Store options or configuration the store cannot be opened with (a bad --storage-opt, storage.conf, driver option). */
export class InitError extends InvalidArgumentError {}

/** A layer archive that cannot be read, or that would write outside its layer. */
export class ArchiveError extends CorruptError {}

/** A failed system call (libc, node:fs) or external program; `code` is its errno name. */
export class SystemError extends IoError {}

/** The exit status of each group, most specific first: the only place exit statuses of failures are decided. */
const EXIT_STATUS: ReadonlyArray<readonly [abstract new (...args: never[]) => StorageError, number]> = [
  [GlobalOptionError, 1],
  [ArgumentCountError, 1],
  [UnknownCommandError, 1],
  [UsageError, 125],
  [NotFoundError, 1],
  [AlreadyExistsError, 1],
  [PreconditionError, 1],
  [InvalidArgumentError, 1],
  [CorruptError, 1],
  [IoError, 1],
  [NotSupportedError, 1],
];

/** Exit status of a failure that is not a StorageError (a bug): "internal error: …". */
export const INTERNAL_ERROR_EXIT = 1;

/** The groups the exit table covers, for tests and docs. */
export const ERROR_GROUPS = EXIT_STATUS.map(([group]) => group);

/** The process exit status for anything a command threw. */
export function exitStatusOf(error: unknown): number {
  const known = asStorageError(error);
  if (known === undefined) return INTERNAL_ERROR_EXIT;
  for (const [group, status] of EXIT_STATUS) if (known instanceof group) return status;
  return INTERNAL_ERROR_EXIT;
}

/** The errno names that say the file system failed a write, rather than that an input was wrong. */
const WRITE_FAULTS = ["ENOSPC", "EDQUOT", "EROFS", "EIO"];

/** True for an I/O failure that a full, read-only or failing file system caused (ENOSPC, EDQUOT, EROFS, EIO). */
export function isWriteFault(error: unknown): boolean {
  const known = asStorageError(error);
  return known instanceof IoError && known.code !== undefined && WRITE_FAULTS.includes(known.code);
}

/** Go's wording of the errno reasons people meet (strerror, lower case). */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EINVAL: "invalid argument",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EIO: "input/output error",
  EPIPE: "broken pipe",
  EEXIST: "file exists",
  ENOTEMPTY: "directory not empty",
  EXDEV: "invalid cross-device link",
  ENAMETOOLONG: "file name too long",
  ELOOP: "too many levels of symbolic links",
  EMFILE: "too many open files",
  EBUSY: "device or resource busy",
};

function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** The reason alone of a failed system call, as Go words it ("no space left on device"): no errno prefix, no path. */
export function errnoReason(error: unknown): string {
  const code = errnoCode(error);
  if (code !== undefined && ERRNO_TEXT[code]) return ERRNO_TEXT[code];
  const message = (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
  if (code === undefined || !message.startsWith(`${code}: `)) return message;
  return message.slice(code.length + 2).replace(/, \w+( '.*)?$/, "");
}

/** A SystemError worded like Go's PathError: "<op> <path>: <reason>", keeping the errno name. */
export function ioError(op: string, path: string, cause: unknown): SystemError {
  return new SystemError(`${op} ${path}: ${errnoReason(cause)}`, errnoCode(cause));
}

/**
 * An SQLite failure (Bun's SQLiteError, by its code) as "<context>: <reason>": a damaged file is
 * corrupt, a full disk or read-only or failing file system an I/O failure; undefined for other codes.
 */
export function sqliteFailure(error: unknown, context: string): StorageError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return undefined;
  const reason = errnoReason(error);
  // bun:sqlite gives extended codes: SQLITE_CORRUPT_INDEX, SQLITE_CORRUPT_SEQUENCE, ... are corruption too.
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") return new CorruptError(`${context}: database is corrupt: ${reason}`);
  // SQLITE_IOERR_SHMSIZE: the WAL index file could not be extended, which on Linux means no space.
  if (code === "SQLITE_FULL" || code === "SQLITE_IOERR_SHMSIZE") return new SystemError(`${context}: ${ERRNO_TEXT.ENOSPC}`, "ENOSPC");
  if (code.startsWith("SQLITE_READONLY")) return new SystemError(`${context}: ${ERRNO_TEXT.EROFS}`, "EROFS");
  if (code.startsWith("SQLITE_CANTOPEN") || code.startsWith("SQLITE_IOERR")) return new SystemError(`${context}: ${reason}`, "EIO");
  return undefined;
}

/**
 * Any thrown value as a StorageError: itself, a node:fs error as a SystemError naming its path
 * ("open /x: permission denied"), an SQLite I/O or corruption error by its code; undefined for
 * anything else, which is a bug.
 */
export function asStorageError(error: unknown): StorageError | undefined {
  if (error instanceof StorageError) return error;
  if (!(error instanceof Error)) return undefined;
  const { code, syscall, path } = error as NodeJS.ErrnoException;
  if (typeof code === "string" && code.startsWith("SQLITE_")) return sqliteFailure(error, "database");
  if (errnoCode(error) === undefined || typeof syscall !== "string") return undefined;
  return path === undefined ? new SystemError(`${syscall}: ${errnoReason(error)}`, code) : ioError(syscall, path, error);
}

/** The same failure with "<context>: " before its message (the class, and so the exit status, kept); a bug is returned as it is. */
export function withContext(context: string, error: unknown): unknown {
  const known = asStorageError(error);
  if (known === undefined) return error;
  known.message = `${context}: ${known.message}`;
  return known;
}

/** The one-line text of anything thrown, as shown after "<REF>: " or alone; a bug reads "internal error: …". */
export function messageOf(error: unknown): string {
  const known = asStorageError(error);
  if (known !== undefined) return known.message;
  const message = error instanceof Error ? error.message : String(error);
  return `internal error: ${message.split("\n")[0]}`;
}
