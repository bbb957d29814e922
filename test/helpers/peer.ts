/** The peer (containers-storage 1.43 with skopeo) as the oracle for what a pull stores, and the comparisons tests make. */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { TestStore } from "./cli.ts";
import { sh } from "./fixtures.ts";

/** Output without the creation times, which differ between any two runs. */
export function withoutTimes(json: any): any {
  const strip = (record: any) => {
    const { created: _created, ...rest } = record;
    return rest;
  };
  return Array.isArray(json) ? json.map(strip) : strip(json);
}

/** The record `image --json` prints for one image. */
export function imageRecord(store: TestStore, ref: string): any {
  const printed = store.json(["image", "--json", ref]);
  return Array.isArray(printed) ? printed[0] : printed;
}

/** containers-storage 1.43 on its own store in `dir`; `spec` is skopeo's containers-storage:[spec] store selector. */
export function peer(dir: string, driver: string) {
  const globals = ["--graph", join(dir, "g"), "--run", join(dir, "r"), "--storage-driver", driver];
  return {
    spec: `${driver}@${join(dir, "g")}+${join(dir, "r")}`,
    run: (args: string[]) => sh(["containers-storage", ...globals, ...args]),
    destroy: () => {
      Bun.spawnSync(["containers-storage", ...globals, "shutdown", "-f"]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
