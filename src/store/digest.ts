/** Content digests in the "algorithm:hex" form used by OCI images. */
import { InvalidArgumentError } from "../errors.ts";

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Checks a digest string; the messages match containers-storage's. */
export function validateDigest(digest: string): void {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (colon <= 0 || !(algorithm in HEX_LENGTH) || !/^[a-f0-9]*$/.test(hex)) throw new InvalidArgumentError("invalid checksum digest format");
  if (hex.length !== HEX_LENGTH[algorithm]) throw new InvalidArgumentError("invalid checksum digest length");
}

/** sha256 of bytes as "sha256:<hex>". */
export function sha256Digest(data: Uint8Array): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(data).digest("hex")}`;
}
