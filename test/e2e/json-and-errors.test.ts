/** End-to-end: the JSON forms and error cases of commands not covered elsewhere. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";

for (const driver of availableDrivers()) {
  describe(`JSON and errors on ${driver}`, () => {
    let s: TestStore;
    beforeEach(() => {
      s = new TestStore(driver);
      s.ok(["create-layer", "-i", "L"]);
      s.ok(["create-image", "-i", "I", "L"]);
      s.ok(["create-container", "-i", "C", "-n", "ctr", "I"]);
    });
    afterEach(() => s.destroy());

    test("get-container-data: stdout, -f, and a missing item or container", () => {
      s.ok(["set-container-data", "ctr", "state.json"], { stdin: '{"a":1}' });
      expect(s.ok(["get-container-data", "C", "state.json"])).toBe('{"a":1}');
      const out = join(s.dir, "state");
      s.ok(["get-container-data", "-f", out, "ctr", "state.json"]);
      expect(readFileSync(out, "utf8")).toBe('{"a":1}');
      const missing = s.cli(["get-container-data", "C", "nope"]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toBe('locating item named "nope" for container with ID "C": file does not exist\n');
      expect(s.cli(["get-container-data", "nope", "x"]).stderr).toBe("container not known\n");
      expect(s.cli(["get-container-data-digest", "C", "nope"]).stderr).toBe("could not compute digest of item\n");
      expect(s.ok(["list-container-data", "C"])).toBe("state.json\n");
    });

    test("container-parent-owners -j, delete-container -j, mounted -j", () => {
      expect(s.ok(["container-parent-owners", "-j", "ctr"])).toBe('{"ID":"C","UIDs":null,"GIDs":null}\n');
      expect(s.cli(["container-parent-owners", "nope"]).code).toBe(1);
      s.ok(["mount", "C"]);
      expect(s.ok(["mounted", "-j", "C", "L"])).toBe('C mounted\n[{"id":"C","error":""},{"id":"L","error":""}]\n');
      const bad = s.cli(["mounted", "-j", "nope"]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe('[{"id":"nope","error":"layer not known"}]\n');
      expect(s.ok(["delete-container", "-j", "C"])).toBe('{"C":""}\n');
      const again = s.cli(["delete-container", "-j", "C"]);
      expect(again.code).toBe(1);
      expect(again.stdout).toBe('{"C":"identifier is not a container"}\n');
    });

    test("shutdown -j: \"\" on success, {} and the error on stderr when a layer is mounted", () => {
      s.ok(["mount", "L"]);
      const refused = s.cli(["shutdown", "-j"]);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe("{}\n");
      expect(refused.stderr).toBe("shutdown: a layer is mounted: layer is in use by a container\n");
      expect(s.ok(["shutdown", "-f", "-j"])).toBe('""\n');
      expect(s.ok(["shutdown", "-j"])).toBe('""\n');
    });

    test("copy -j is accepted and prints nothing", () => {
      const file = join(s.dir, "f");
      writeFileSync(file, "x");
      expect(s.ok(["copy", "-j", file, "L:/f"])).toBe("");
    });

    test("check -j on a clean store is [] and exit 0", () => {
      expect(s.ok(["check", "-j"])).toBe("[]\n");
      expect(s.ok(["check"])).toBe("");
    });

    test("content commands name what was wrong", () => {
      expect(s.cli(["diffsize", "nope"]).stderr).toBe("layer not known\n");
      expect(s.cli(["changes", "nope"]).stderr).toBe("layer not known\n");
      expect(s.cli(["diff", "nope"]).stderr).toBe("layer not known\n");
      expect(s.cli(["applydiff", "-f", "/nonexistent", "L"]).stderr).toBe("open /nonexistent: no such file or directory\n");
      const garbage = s.cli(["applydiff", "L"], { stdin: "this is not a tar archive, not even close to one" });
      expect(garbage.code).toBe(1);
      expect(garbage.stderr.trim().split("\n")).toHaveLength(1);
      // The layer is still there and usable after the failed apply.
      expect(s.ok(["diffsize", "L"])).toBe("0\n");
      expect(s.cli(["get-container-run-dir", "nope"]).stderr).toBe("container not known\n");
    });
  });
}
