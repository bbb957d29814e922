/** The one reader of the kernel's mount table (/proc/self/mountinfo) for this process's mount namespace. */
import { nodeFs } from "./node-fs.ts";

export interface KernelMount {
  path: string;
  fsType: string;
  /** The path inside the mounted filesystem that appears at the mount point ("/" unless a bind mount). */
  root: string;
}

/** Undoes mountinfo's octal escapes (\040 for a space, ...). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Every mount in the kernel's table, in its order. */
export function kernelMounts(): KernelMount[] {
  const mounts: KernelMount[] = [];
  // node:fs loaded here, by what reads the table, not by every importer (a vfs mount never does).
  const { readFileSync } = nodeFs();
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (separator < 0 || fields.length < separator + 2) continue;
    mounts.push({ root: unescapeMountField(fields[3]!), path: unescapeMountField(fields[4]!), fsType: fields[separator + 1]! });
  }
  return mounts;
}

/** The mount points currently in the kernel's table. */
export function kernelMountPoints(): Set<string> {
  return new Set(kernelMounts().map((mount) => mount.path));
}

/** Mount points at or below dir, deepest first (the order to unmount them in). */
export function mountPointsBelow(dir: string): string[] {
  const points = kernelMounts()
    .map((mount) => mount.path)
    .filter((path) => path === dir || path.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
