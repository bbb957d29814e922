/**
 * End-to-end: an empty reference means "none", as containers-storage 1.43 takes it — the parent
 * of create-layer/import-layer, the top layer of create-image, the image of create-container —
 * so that the usual script idiom `parent=""; parent=$(create-layer "$parent")` builds a chain.
 * The outputs asserted here are the ones 1.43 prints for the same commands (test/oracle/ runs
 * both side by side).
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, TestStore, availableDrivers } from "../helpers/cli.ts";
import { makeTar } from "../helpers/fixtures.ts";

const HEX64 = /^[0-9a-f]{64}$/;
const CHAIN_LENGTH = 151;
// One process per layer: on a loaded machine the chain takes far longer than bun's default 5 s.

for (const driver of availableDrivers()) {
  describe(`empty references on ${driver}`, () => {
    let s: TestStore;
    beforeEach(() => {
      s = new TestStore(driver);
    });
    afterEach(() => s.destroy());

    /** `check` finds nothing wrong with the store the test leaves. */
    const expectClean = () => {
      const r = s.cli(["check"]);
      expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: "" });
    };

    test(`a chain of ${CHAIN_LENGTH} layers built with parent=$(create-layer "$parent"), an image on its top, and a container on that`, () => {
      const globals = s.globals.map((g) => `'${g}'`).join(" ");
      const script = `set -e; parent=""; for i in $(seq ${CHAIN_LENGTH}); do parent=$('${BINARY}' ${globals} create-layer "$parent"); echo "$parent"; done`;
      const run = Bun.spawnSync(["bash", "-c", script], { stdout: "pipe", stderr: "pipe" });
      expect({ code: run.exitCode, stderr: run.stderr.toString() }).toEqual({ code: 0, stderr: "" });
      const chain = run.stdout.toString().trim().split("\n");
      expect(chain).toHaveLength(CHAIN_LENGTH);
      const layers = s.json(["layers", "-j"]) as Array<{ id: string; parent?: string }>;
      expect(layers.map((l) => l.id)).toEqual(chain);
      expect(layers.map((l) => l.parent)).toEqual([undefined, ...chain.slice(0, -1)]);

      const top = chain.at(-1)!;
      const image = s.json(["create-image", "-j", "-n", "tall", top]);
      expect(image.layer).toBe(top);
      const container = s.ok(["create-container", "tall"]).trim();
      const mountPoint = s.ok(["mount", container]).trim();
      writeFileSync(join(mountPoint, "hello"), "from the top\n");
      expect(readdirSync(mountPoint)).toEqual(["hello"]);
      s.ok(["unmount", container]);
      expect(s.ok(["diffsize", s.json(["container", "-j", container])[0].layer])).toBe("13\n");
      expectClean();
    }, 300_000);

    test('an empty --id gets a generated ID, as in 1.43: create-layer, import-layer, create-image, create-container', () => {
      const layer = s.json(["create-layer", "-j", "-i", "", "-n", "base"]);
      const imported = s.json(["import-layer", "-j", "-i", "", "-f", makeTar({ "f": "x" }), "base"]);
      const image = s.json(["create-image", "-j", "-i", "", "-n", "img", imported.id]);
      const container = s.ok(["create-container", "-i", "", "-n", "ctr", "img"]).split("\n")[0]!;
      for (const id of [layer.id, imported.id, image.id, container]) expect(id).toMatch(HEX64);
      expect(new Set([layer.id, imported.id]).size).toBe(2);
      expect(s.ok(["exists", "-c", "ctr"])).toBe("ctr: true\n");
      expectClean();
    });

    test('create-layer "" and import-layer "" make layers without a parent', () => {
      const layer = s.json(["create-layer", "-j", "-n", "base", ""]);
      expect(Object.keys(layer)).toEqual(["id", "names", "created"]);
      const tar = makeTar({ "etc/": "", "etc/os-release": "ID=test\n" });
      const imported = s.json(["import-layer", "-j", "-f", tar, ""]);
      expect(imported.parent).toBeUndefined();
      expect(imported["diff-size"]).toBeGreaterThan(0);
      expect(s.ok(["layer", imported.id])).toBe(`ID: ${imported.id}\n`);
      expectClean();
    });

    test('create-image "" makes an image with no layer, as 1.43 prints it', () => {
      const id = s.ok(["create-image", ""]).trim();
      expect(id).toMatch(HEX64);
      expect(s.ok(["image", id])).toBe(`ID: ${id}\nTop Layer: \nSize: 0\n`);
      const [json] = s.json(["image", "-j", id]);
      expect(Object.keys(json)).toEqual(["id", "created"]);
      // An image with no layer is an image like any other: containers on it get an empty layer.
      const container = s.json(["create-container", "-j", id]);
      expect(container.image).toBe(id);
      expect(s.json(["layer", "-j", container.layer])[0].parent).toBeUndefined();
      s.ok(["delete-container", container.id]);
      expect(s.ok(["delete-image", id])).toBe("");
      expect(s.json(["images", "-j"])).toBeNull();
      expectClean();
    });

    for (const volatile of [false, true]) {
      test(`create-container ${volatile ? "--volatile " : ""}"" makes a container on no image that mounts, keeps what is written, and mounts again`, () => {
        const args = ["create-container", "-j", ...(volatile ? ["--volatile"] : []), ""];
        const container = s.json(args);
        expect(Object.keys(container)).toEqual(["id", "image", "layer", "created", "flags"]);
        expect(container.image).toBe("");
        expect(container.flags).toEqual(volatile ? { MountLabel: "", ProcessLabel: "", Volatile: true } : { MountLabel: "", ProcessLabel: "" });
        expect(s.json(["layer", "-j", container.layer])[0].parent).toBeUndefined();

        const first = s.ok(["mount", container.id]).trim();
        expect(readdirSync(first)).toEqual([]);
        expect(statSync(first).mode & 0o7777).toBe(0o555);
        writeFileSync(join(first, "f"), "hi\n");
        expect(s.ok(["unmount", container.id])).toBe(`${container.id} mountpoint unmounted\n`);
        const again = s.ok(["mount", container.id]).trim();
        expect(again).toBe(first);
        expect(readFileSync(join(again, "f"), "utf8")).toBe("hi\n");
        s.ok(["unmount", container.id]);

        expect(s.ok(["container", container.id])).toBe(`ID: ${container.id}\nImage: \nSize: 3\nLayer: ${container.layer}\n`);
        expectClean();
        s.ok(["delete-container", container.id]);
        expect(s.json(["containers", "-j"])).toEqual([]);
        expect(s.json(["layers", "-j"])).toEqual([]);
        expectClean();
      });
    }
  });
}
