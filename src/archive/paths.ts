/** Archive path handling shared by extraction, reproduction and copying. */

/** Splits an entry name into clean components: no "", ".", or ".."; ".." above the root is dropped. */
export function cleanComponents(name: string): string[] {
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts;
}

/** An entry path for a message, quoted, and shortened when it is absurdly long. */
export function shownPath(path: string): string {
  return path.length > 200 ? `${JSON.stringify(path.slice(0, 100))}... (${path.length} characters)` : JSON.stringify(path);
}
