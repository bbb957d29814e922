/** Removes duplicates, keeping the first occurrence. */
export function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
