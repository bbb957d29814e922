/** Driver options (KEY=VALUE strings from --storage-opt and storage.conf) and the one parser of the image store options. */

import { InitError } from "../errors.ts";

/** Names of the option that lists read-only image stores (`<driver>.imagestore=/a,/b`). */
const IMAGE_STORE_NAMES = ["imagestore", "additionalimagestore"];

/** An option split at its first "=", with the key lower-cased. */
export function splitDriverOption(option: string): { key: string; value: string } {
  const eq = option.indexOf("=");
  return { key: option.slice(0, eq).toLowerCase(), value: option.slice(eq + 1) };
}

/** The graph roots an image store option lists (comma-separated, empty items skipped); undefined when `name` (the key without its driver prefix) is another option. */
export function imageStoresOption(name: string, value: string): string[] | undefined {
  return IMAGE_STORE_NAMES.includes(name) ? value.split(",").filter(Boolean) : undefined;
}

/** A boolean driver option's value, spelled as Go's ParseBool takes it (1.43 parses them so); anything else is an error naming the option. */
export function booleanOption(driver: string, key: string, value: string): boolean {
  if (/^(1|t|T|true|TRUE|True)$/.test(value)) return true;
  if (/^(0|f|F|false|FALSE|False)$/.test(value)) return false;
  throw new InitError(`${driver}: ${key}: invalid boolean ${JSON.stringify(value)}`);
}

/** Graph roots of read-only image stores named by a store's driver options (which the driver checked when it was made). */
export function imageStorePaths(driverOptions: string[]): string[] {
  return driverOptions.flatMap((option) => {
    const { key, value } = splitDriverOption(option);
    return imageStoresOption(key.slice(key.lastIndexOf(".") + 1), value) ?? [];
  });
}
