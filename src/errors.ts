/**
 * Typed errors. Every failure a user can cause is one of these; src/main.ts maps them to a
 * one-line message and an exit status. Messages follow containers-storage 1.43 where scripts
 * may match on them (docs/cli-contract.md), and are otherwise plain and specific.
 */

/** Base class: an expected failure whose message is shown as is, without a stack trace. */
export class StorageError extends Error {
  override name = "StorageError";
  /** Process exit status when this error ends a command. */
  exitCode = 1;
}

export class LayerUnknownError extends StorageError {
  constructor(message = "layer not known") {
    super(message);
  }
}
export class ImageUnknownError extends StorageError {
  constructor(message = "image not known") {
    super(message);
  }
}
export class ContainerUnknownError extends StorageError {
  constructor(message = "container not known") {
    super(message);
  }
}
export class NotALayerError extends StorageError {
  constructor() {
    super("identifier is not a layer");
  }
}
export class NotAnImageError extends StorageError {
  constructor() {
    super("identifier is not an image");
  }
}
export class NotAContainerError extends StorageError {
  constructor() {
    super("identifier is not a container");
  }
}
export class NotAnyObjectError extends StorageError {
  constructor() {
    super("identifier is not a layer, image, or container");
  }
}
export class IdInUseError extends StorageError {
  constructor(message = "that ID is already in use") {
    super(message);
  }
}
export class NameInUseError extends StorageError {
  constructor(message = "that name is already in use") {
    super(message);
  }
}
export class InvalidIdError extends StorageError {
  constructor(id: string, reason = `an ID must be non-empty, not "." or "..", and contain no "/" or NUL`) {
    const shown = id.length > 80 ? `${JSON.stringify(id.slice(0, 64))}... (${id.length} characters)` : JSON.stringify(id);
    super(`invalid ID ${shown}: ${reason}`);
  }
}
export class LayerInUseError extends StorageError {}
export class ImageInUseError extends StorageError {}

/** A layer archive that cannot be read or would escape its layer. */
export class ArchiveError extends StorageError {}

/** A store that cannot be opened (bad options, bad config, unusable directories). */
export class InitError extends StorageError {}

/** Something the user asked for that this build does not do; said plainly rather than faked. */
export class NotSupportedError extends StorageError {}

/** A command-line usage problem; exit status follows the spec (125 for option errors). */
export class UsageError extends StorageError {
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A failed system call or external program, carrying errno-style code when known. */
export class SystemError extends StorageError {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}
