import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidError } from "../../src/lib/errors.js";
import { hasCheck } from "../../src/model/schema.js";
import { loadServiceFiles, ServiceFileError } from "../../src/sources/files.js";
import { jsonErrorOffset, lineColumn } from "../../src/sources/parse.js";

const FIXTURES = new URL("../fixtures/services/", import.meta.url).pathname;
const EXAMPLES = new URL("../../examples/services.d/", import.meta.url).pathname;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "services-files-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const svc = (id: string, over: Record<string, unknown> = {}) => ({ id, name: "web", address: "192.168.1.20", port: 80, ...over });

async function write(files: Record<string, unknown>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), typeof content === "string" ? content : JSON.stringify(content, null, 2));
  }
}

/** The ServiceFileError that loading the temp dir throws. */
async function loadError(): Promise<ServiceFileError> {
  const err = await loadServiceFiles(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ServiceFileError);
  return err as ServiceFileError;
}

/** The message lines, with the temp dir written as "d". */
async function problems(files: Record<string, unknown>): Promise<string[]> {
  await write(files);
  const err = await loadError();
  return err.message.split("\n").map((line) => line.replaceAll(`${dir}/`, "d/"));
}

describe("loadServiceFiles: good files", () => {
  it("reads an object, an array and {services} in name order, ignoring other and hidden files and directories", async () => {
    const good = join(FIXTURES, "good");
    const set = await loadServiceFiles(good);
    expect(set.files).toEqual(["10-router.json", "20-cameras.json", "30-nas.json"].map((f) => join(good, f)));
    expect(set.services.map((s) => s.id)).toEqual(["router", "camera-door", "camera-yard", "nas-smb"]);
    expect([...set.sources]).toEqual([
      ["router", { file: join(good, "10-router.json"), path: "" }],
      ["camera-door", { file: join(good, "20-cameras.json"), path: "[0]" }],
      ["camera-yard", { file: join(good, "20-cameras.json"), path: "[1]" }],
      ["nas-smb", { file: join(good, "30-nas.json"), path: "services[0]" }],
    ]);
  });

  it("parses each service as the API does: defaults, normalised names and addresses, deduplicated tags", async () => {
    const set = await loadServiceFiles(join(FIXTURES, "good"));
    const [router, door, , nas] = set.services;
    expect(router).toEqual({
      id: "router",
      name: "router",
      version: "0.0.0",
      address: "192.168.1.1",
      port: 443,
      metadata: {},
      tags: ["https", "gateway"],
      healthCheckInterval: 30_000,
    });
    expect(door?.metadata).toEqual({ room: "hall" });
    // Server-managed fields a pasted GET response carries are dropped, as the API ignores them.
    expect(nas).toEqual({
      id: "nas-smb",
      name: "nas",
      version: "7.2.1",
      nodeId: "nas",
      address: "fd00::10",
      port: 445,
      metadata: { vendor: "synology" },
      tags: [],
      healthCheckInterval: 30_000,
    });
    expect(Object.isFrozen(nas)).toBe(true);
  });

  it("loads the examples: a NAS and a printer without checks at private addresses", async () => {
    const set = await loadServiceFiles(EXAMPLES);
    expect(set.files).toEqual([join(EXAMPLES, "nas.json"), join(EXAMPLES, "printer.json")]);
    expect(set.services.map((s) => s.id)).toEqual(["nas-smb", "nas-web", "printer-ipp"]);
    for (const s of set.services) {
      expect(hasCheck(s)).toBe(false);
      expect(s.address).toMatch(/^192\.168\./);
    }
    expect(set.services[0]?.tags).toEqual(["smb", "backup"]);
    expect(set.services[2]?.metadata).toMatchObject({ vendor: "brother" });
  });

  it("treats a missing directory as empty", async () => {
    expect(await loadServiceFiles(join(dir, "nope"))).toEqual({ services: [], files: [], sources: new Map(), missing: true });
  });

  it("reads an empty directory, and files that declare no service", async () => {
    expect((await loadServiceFiles(dir)).files).toEqual([]);
    await write({ "a.json": [], "b.json": { services: [] } });
    const set = await loadServiceFiles(dir);
    expect(set.services).toEqual([]);
    expect(set.files).toEqual([join(dir, "a.json"), join(dir, "b.json")]);
  });

  it("ignores files that are not *.json, and reads .JSON in any case", async () => {
    await write({
      "a.json": svc("a"),
      "B.JSON": svc("b"),
      "notes.txt": "{",
      "c.json.bak": "{",
      "c.json~": "{",
      ".#c.json": "{",
      README: "{",
    });
    const set = await loadServiceFiles(dir);
    expect(set.services.map((s) => s.id)).toEqual(["b", "a"]); // name order: "B" sorts before "a"
  });

  it("accepts a file that starts with a byte order mark", async () => {
    await write({ "a.json": `\uFEFF${JSON.stringify(svc("a"))}` });
    expect((await loadServiceFiles(dir)).services.map((s) => s.id)).toEqual(["a"]);
  });
});

describe("loadServiceFiles: errors", () => {
  it("names the file and the field path in each of the three forms", async () => {
    expect(await problems({ "nas.json": { services: [svc("a"), svc("b", { port: 70000 })] } })).toEqual([
      "d/nas.json: services[1].port: must be 1-65535",
    ]);
  });

  it("uses [i] for a top-level array and no prefix for a single object", async () => {
    expect(await problems({ "a.json": [svc("a"), svc("b", { port: 0 })], "b.json": svc("c", { port: 1.5 }) })).toEqual([
      "d/a.json: [1].port: must be 1-65535",
      "d/b.json: port: must be a whole number",
    ]);
  });

  it("collects every problem in every file, in file and field order", async () => {
    await write({
      "a.json": { services: [svc("a", { name: "-web", tags: ["ok", "bell\u0007"] }), svc("b", { address: "999.1.1.1" })] },
      "b.json": "{",
      "c.json": svc("c", { metadata: { "a.b": 1, "bad key": "x" } }),
    });
    const err = await loadError();
    expect(err).toBeInstanceOf(InvalidError);
    expect(err.kind).toBe("invalid");
    expect(err.message.replaceAll(`${dir}/`, "d/").split("\n")).toEqual([
      "d/a.json: services[0].name: must be a DNS label: letters, digits and '-', not starting or ending with '-'",
      "d/a.json: services[0].tags[1]: must be printable (no control characters)",
      "d/a.json: services[1].address: must be an IPv4 address, an IPv6 address or a hostname",
      "d/b.json:1:2: invalid JSON: Expected property name or '}'",
      'd/c.json: metadata["a.b"]: Invalid input: expected string, received number',
      'd/c.json: metadata["bad key"]: metadata keys may contain only letters, digits, \'.\', \'_\' and \'-\'',
    ]);
    expect(err.problems[0]).toEqual({
      file: join(dir, "a.json"),
      path: "services[0].name",
      reason: "must be a DNS label: letters, digits and '-', not starting or ending with '-'",
    });
    expect(err.problems[3]).toMatchObject({ file: join(dir, "b.json"), line: 1, column: 2, path: "" });
    expect(err.details).toEqual({ problems: err.problems });
  });

  it("reports a missing id, and other required fields", async () => {
    expect(await problems({ "a.json": { name: "web", address: "192.168.1.2", port: 80 }, "b.json": [{ id: "b" }] })).toEqual([
      "d/a.json: id: is required",
      "d/b.json: [0].name: is required",
      "d/b.json: [0].address: is required",
      "d/b.json: [0].port: is required",
    ]);
  });

  it("reports unknown fields one by one, and fields beside a services list", async () => {
    expect(
      await problems({
        "a.json": { services: [svc("a", { prot: 80, Tags: [] })] },
        "b.json": { services: [svc("b")], version: 2 },
        "c.json": svc("c", { "x.y": 1 }),
      }),
    ).toEqual([
      "d/a.json: services[0].prot: unknown field",
      "d/a.json: services[0].Tags: unknown field",
      'd/b.json: version: unknown field (a file with "services" holds only that list)',
      'd/c.json: ["x.y"]: unknown field',
    ]);
  });

  it("reports more than one check, as the API does", async () => {
    expect(await problems({ "a.json": svc("a", { address: "127.0.0.1", tcpCheck: true, ttl: 10_000 }) })).toEqual([
      "d/a.json: ttl: declare at most one check: healthEndpoint (HTTP), tcpCheck (TCP) or ttl (heartbeats)",
    ]);
  });

  it("reports files and entries of the wrong shape", async () => {
    expect(
      await problems({
        "a.json": 42,
        "b.json": "null",
        "c.json": { services: { id: "x" } },
        "d.json": [svc("d"), "printer", null, [svc("e")]],
        "e.json": '"nas"',
      }),
    ).toEqual([
      'd/a.json: must hold a service object, an array of services, or {"services": [...]}, not a number',
      'd/b.json: must hold a service object, an array of services, or {"services": [...]}, not null',
      "d/c.json: services: must be an array of services, not an object",
      "d/d.json: [1]: must be a service object, not a string",
      "d/d.json: [2]: must be a service object, not null",
      "d/d.json: [3]: must be a service object, not an array",
      'd/e.json: must hold a service object, an array of services, or {"services": [...]}, not a string',
    ]);
  });

  it("reports duplicate ids within a file and across files, naming both places", async () => {
    expect(
      await problems({
        "a.json": { services: [svc("nas"), svc("printer"), svc("nas", { port: 81 })] },
        "b.json": svc("printer"),
        "c.json": [svc("x"), svc("nas")],
      }),
    ).toEqual([
      'd/a.json: services[2].id: id "nas" is already declared in d/a.json at services[0]',
      'd/b.json: id: id "printer" is already declared in d/a.json at services[1]',
      'd/c.json: [1].id: id "nas" is already declared in d/a.json at services[0]',
    ]);
  });

  it("reports JSON syntax errors with line:column", async () => {
    const cases: [string, string][] = [
      ['{\n  "id": "a",\n}\n', "3:1: invalid JSON: Expected double-quoted property name"],
      ['{\n  "id": "a"\n  "name": "web"\n}\n', "3:3: invalid JSON: Expected ',' or '}' after property value"],
      ['[\n  {"id": "a"},\n  {"id": "b"}}\n]\n', "3:14: invalid JSON: Expected ',' or ']' after array element"],
      ['{\n  "id": "a",\n  "port": 80x\n}\n', "3:13: invalid JSON: Expected ',' or '}' after property value"],
      // V8 gives no position for these: the offset is found by our own scan.
      ['{\n  "id": "a",\n  "name": web\n}\n', "3:11: invalid JSON: Unexpected token 'w'"],
      ['{\n  "id": \'a\'\n}\n', "2:9: invalid JSON: Unexpected token '''"],
      ['{\n  "tcpCheck": tru\n}\n', "2:18: invalid JSON: Unexpected token '\\n'"],
      // A JSON comment is a mistake worth its own line number.
      ['{\n  // the NAS\n  "id": "a"\n}\n', "2:3: invalid JSON: Expected property name or '}'"],
      ['{"id": "a"}\n{"id": "b"}\n', "2:1: invalid JSON: Unexpected non-whitespace character after JSON"],
      ['{"id": "a\tb"}', "1:10: invalid JSON: Bad control character in string literal"],
      ['{\n  "id": "a', "2:11: invalid JSON: Unterminated string"],
      // At the end of the input: just after the last character, not on a line past the end.
      ['{\n  "id": "a",\n', "2:13: invalid JSON: Expected double-quoted property name"],
      ['{\n  "id": "a"\n\n', "2:12: invalid JSON: Expected ',' or '}' after property value"],
      ["nul", "1:4: invalid JSON: Unexpected end of JSON input"],
      ["", "1:1: invalid JSON: Unexpected end of JSON input"],
      ["\n\n", "1:1: invalid JSON: Unexpected end of JSON input"],
    ];
    for (const [i, [text]] of cases.entries()) await write({ [`${String(i).padStart(2, "0")}.json`]: text });
    expect(await problems({})).toEqual(cases.map(([, message], i) => `d/${String(i).padStart(2, "0")}.json:${message}`));
  });

  it("reports a services directory that is not a directory", async () => {
    await write({ "file.json": svc("a") });
    const file = join(dir, "file.json");
    const err = await loadServiceFiles(file).then(
      () => undefined,
      (e: unknown) => e as ServiceFileError,
    );
    expect(err).toBeInstanceOf(ServiceFileError);
    expect(err?.message).toMatch(new RegExp(`^${file}: cannot read the services directory: ENOTDIR`));
  });

  it("lists every file read, though a failed load throws instead of returning it", async () => {
    await mkdir(join(dir, "sub.json"));
    await write({ "a.json": svc("a") });
    expect((await loadServiceFiles(dir)).files).toEqual([join(dir, "a.json")]);
  });
});

/** A billion-laughs document: nine levels of nine aliases each. */
function aliasBomb(): string {
  let text = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  let prev = "a";
  for (let i = 0; i < 9; i++) {
    text += `b${i}: &b${i} [${Array(9).fill(`*${prev}`).join(", ")}]\n`;
    prev = `b${i}`;
  }
  return text;
}

describe("loadServiceFiles: YAML", () => {
  it("reads *.yaml and *.yml beside *.json, with the same checks", async () => {
    await write({
      "a.yaml": "services:\n  - id: nas\n    name: nas\n    address: 192.168.1.10\n    port: 445\n    tags: [smb]\n",
      "b.yml": "- id: printer\n  name: printer\n  address: 192.168.1.40\n  port: 631\n",
      "c.json": svc("c"),
    });
    const set = await loadServiceFiles(dir);
    expect(set.services.map((s) => s.id)).toEqual(["nas", "printer", "c"]);
    expect(set.services[0]?.tags).toEqual(["smb"]);
  });

  it("reports YAML syntax with line:column and fields with their path", async () => {
    expect(
      await problems({
        "a.yaml": "id: a\nname: web\nname: web\n",
        "b.yaml": "services:\n  - id: b\n    name: web\n    address: 192.168.1.2\n    port: '80'\n",
        "c.yml": "id: c\n\tname: web\n",
        "d.yaml": aliasBomb(),
      }),
    ).toEqual([
      "d/a.yaml:3:1: invalid YAML: Map keys must be unique",
      "d/b.yaml: services[0].port: Invalid input: expected number, received string",
      "d/c.yml:2:1: invalid YAML: Tabs are not allowed as indentation",
      "d/d.yaml: invalid YAML: Excessive alias count indicates a resource exhaustion attack",
    ]);
  });
});

describe("JSON error positions", () => {
  it("agree with V8's wherever V8 names one", () => {
    const texts = [
      "{",
      "[1,]",
      "[1 2]",
      '{"a" 1}',
      '{"a":1,}',
      '{"a":1 "b":2}',
      '{"a": 01}',
      '{"a": -}',
      '{"a": 1.}',
      '{"a": 1e}',
      '{"a": 1e+}',
      '{"a": -01}',
      '{"a": .5}',
      '"\\x"',
      '"\\u12g4"',
      '{"a": [1, {"b": }]}',
      "[true, fals]",
      "{}{}",
      "  [ ]  x",
    ];
    for (const text of texts) {
      let message = "";
      try {
        JSON.parse(text);
      } catch (e) {
        message = (e as Error).message;
      }
      const v8 = /at position (\d+)/.exec(message);
      if (v8 !== null) expect([text, jsonErrorOffset(text)]).toEqual([text, Number(v8[1])]);
      else expect(jsonErrorOffset(text), text).toBeTypeOf("number");
    }
    expect(jsonErrorOffset('{"a": [1, 2, {"b": null}]}')).toBeUndefined();
  });

  it("turns an offset into a 1-based line and column", () => {
    expect(lineColumn("ab\ncd\n", 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumn("ab\ncd\n", 2)).toEqual({ line: 1, column: 3 });
    expect(lineColumn("ab\ncd\n", 3)).toEqual({ line: 2, column: 1 });
    expect(lineColumn("ab\r\ncd", 5)).toEqual({ line: 2, column: 2 });
    expect(lineColumn("ab", 99)).toEqual({ line: 1, column: 3 });
  });
});

