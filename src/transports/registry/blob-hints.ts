/**
 * What the docker:// source and destination need from the Store to remember where blobs live
 * (src/store/blob-locations.ts): a pull records the repository each layer blob came from and
 * which diffID it holds; a push looks them up to skip or mount blobs, and records what it wrote.
 */
import type { Store } from "../../store/store.ts";

/** The Store's blob-location hints, read and written through its public API only. */
export type BlobHints = Pick<Store, "rememberBlobLocation" | "rememberLayerBlob" | "knownLayerBlobs" | "blobRepositories">;
