import { describe, expect, test } from "bun:test";
import { formatTimestamp, goJson, goList, goQuote, sortedRecord } from "../../src/cli/format.ts";

describe("goJson (Go encoding/json)", () => {
  const cases: Array<[string, unknown, string]> = [
    ["plain string", "abc", '"abc"'],
    ["HTML characters", "<a href='x'>&</a>", '"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e"'],
    ["line and paragraph separators", "a\u2028b\u2029c", '"a\\u2028b\\u2029c"'],
    ["newline, tab, carriage return", "a\nb\tc\rd", '"a\\nb\\tc\\rd"'],
    ["backspace and form feed as \\u00XX (Go 1.19)", "\b\f", '"\\u0008\\u000c"'],
    ["other control characters, lowercase hex", "\x00\x01\x1b\x1f", '"\\u0000\\u0001\\u001b\\u001f"'],
    ["DEL is written raw", "\x7f", '"\x7f"'],
    ["quote and backslash", 'say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'],
    ["escaped backslash before b is not a \\b escape", "\\b\\f", '"\\\\b\\\\f"'],
    ["non-ASCII raw", "héllo 世界 😀 \u00a0", '"héllo 世界 😀 \u00a0"'],
    ["lone surrogate becomes \\ufffd", "a\ud800b", '"a\\ufffdb"'],
    ["null", null, "null"],
    ["numbers", [0, -1, 10240, 1.5], "[0,-1,10240,1.5]"],
    ["bigint", 12345678901234567890n, "12345678901234567890"],
    ["small bigints inside objects", { size: 1n, list: [-5n, 0n] }, '{"size":1,"list":[-5,0]}'],
    ["a Map deep inside", { a: [new Map([["z", 1], ["y", 2]])] }, '{"a":[{"y":2,"z":1}]}'],
    ["escapes in keys and values of nested records", { "k\\<": { v: "\\b<\u2028\"" } }, '{"k\\\\\\u003c":{"v":"\\\\b\\u003c\\u2028\\""}}'],
    ["top-level undefined", undefined, "null"],
    ["booleans", [true, false], "[true,false]"],
    ["empty containers", { a: [], b: {} }, '{"a":[],"b":{}}'],
    [
      "nested objects keep insertion order, compact",
      { id: "x", names: ["a<b"], flags: { MountLabel: "", Volatile: true }, list: [{ n: 1 }] },
      '{"id":"x","names":["a\\u003cb"],"flags":{"MountLabel":"","Volatile":true},"list":[{"n":1}]}',
    ],
    ["undefined members are left out", { a: 1, b: undefined, c: null }, '{"a":1,"c":null}'],
    ["keys are escaped too", { "a&b": 1 }, '{"a\\u0026b":1}'],
    ["Map is written sorted by key, like a Go map", new Map([["b", 1], ["a", 2]]), '{"a":2,"b":1}'],
    [
      "a layer name as containers-storage 1.43 printed it with layers -j",
      ["a<b>&c\u2028d\u2029e\bf\fg\x01h\x7fi é\"\\"],
      '["a\\u003cb\\u003e\\u0026c\\u2028d\\u2029e\\u0008f\\u000cg\\u0001h\x7fi é\\"\\\\"]',
    ],
  ];
  for (const [label, value, expected] of cases) {
    test(label, () => expect(goJson(value)).toBe(expected));
  }

  test("sortedRecord keeps byte order in JSON, even for integer-like keys", () => {
    const record = sortedRecord<boolean>([
      ["cfg.json", true],
      ["9", false],
      ["Other:Name", true],
      ["10", true],
    ]);
    expect(goJson(record)).toBe('{"10":true,"9":false,"Other:Name":true,"cfg.json":true}');
    expect(record["9"]).toBe(false);
  });

  test("numbers JSON cannot hold are refused, as Go refuses them", () => {
    expect(() => goJson({ a: [Number.NaN] })).toThrow("json: unsupported value: NaN");
    expect(() => goJson(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });

  test("sortedRecord stays sorted after a key is added", () => {
    const record = sortedRecord<number>([["b", 1]]);
    record.a = 2;
    expect(goJson(record)).toBe('{"a":2,"b":1}');
  });
});

describe("goQuote (Go %q)", () => {
  const cases: Array<[string, string | Uint8Array, string]> = [
    ["plain path", "/etc/passwd", '"/etc/passwd"'],
    ["newline", "/new\nline", '"/new\\nline"'],
    ["tab and carriage return", "a\tb\rc", '"a\\tb\\rc"'],
    ["bell, backspace, form feed, vertical tab", "\x07\x08\x0c\x0b", '"\\a\\b\\f\\v"'],
    ["quote", 'a"b', '"a\\"b"'],
    ["single quote kept", "a'b", '"a\'b"'],
    ["backslash", "a\\b", '"a\\\\b"'],
    ["other control characters as \\xNN", "\x01\x1b\x7f", '"\\x01\\x1b\\x7f"'],
    ["space kept", "a b", '"a b"'],
    ["non-breaking space is not printable", "a\u00a0b", '"a\\u00a0b"'],
    ["zero width space", "\u200b", '"\\u200b"'],
    ["printable Unicode kept", "héllo 世界 😀", '"héllo 世界 😀"'],
    ["non-printable astral as \\U", "\u{e0001}", '"\\U000e0001"'],
    ["lone surrogate does not crash", "a\ud800", '"a\\xed\\xa0\\x80"'],
    ["invalid UTF-8 bytes as \\xNN", new Uint8Array([0x61, 0xff, 0xc3, 0xa9, 0xc3]), '"a\\xffé\\xc3"'],
    ["overlong encoding is invalid", new Uint8Array([0xc0, 0xaf]), '"\\xc0\\xaf"'],
    ["valid 4-byte UTF-8 from bytes", new TextEncoder().encode("😀\n"), '"😀\\n"'],
    [
      "a file name as containers-storage 1.43 printed it with changes",
      "/new\nline\x01\u00a0é\x7f\"\\\t",
      '"/new\\nline\\x01\\u00a0é\\x7f\\"\\\\\\t"',
    ],
  ];
  for (const [label, input, expected] of cases) {
    test(label, () => expect(goQuote(input)).toBe(expected));
  }
});

describe("formatTimestamp", () => {
  const cases: Array<[string, bigint, string]> = [
    ["no fraction when zero", 1714557600_000000000n, "2024-05-01T10:00:00Z"],
    ["trailing zeros trimmed", 1714557600_250737880n, "2024-05-01T10:00:00.25073788Z"],
    ["all 9 digits", 1714557600_063937089n, "2024-05-01T10:00:00.063937089Z"],
    ["leading zeros kept", 1714557600_000000001n, "2024-05-01T10:00:00.000000001Z"],
    ["milliseconds only", 1714557600_500000000n, "2024-05-01T10:00:00.5Z"],
    ["the epoch", 0n, "1970-01-01T00:00:00Z"],
    ["before the epoch", -1n, "1969-12-31T23:59:59.999999999Z"],
    ["Go's zero time", -62135596800_000000000n, "0001-01-01T00:00:00Z"],
  ];
  for (const [label, ns, expected] of cases) {
    test(label, () => expect(formatTimestamp(ns)).toBe(expected));
  }
});

describe("goList", () => {
  test("formats like Go %v of a slice", () => {
    expect(goList(["a", "b"])).toBe("[a b]");
    expect(goList([])).toBe("[]");
    expect(goList([1, "x y"])).toBe("[1 x y]");
  });
});
