// The layout holds: every part is a folder behind its index.ts, arrows point down the picture in
// ../shared/DESIGN.md, leaves import no part, and nothing imports in a circle. Read from src/'s own imports
// (type-only ones too: a type is a dependency a reader has to follow).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../src");

/**
 * What each part may import (besides leaves and packages). The picture, top to bottom: app wires everything; the
 * faces (http, dns), health, cluster and sources sit on the registry; the registry on the store; model (the shared
 * shapes) under all of them. client speaks the API, so it shares http's wire helpers.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  app: ["registry", "model", "store", "health", "dns", "http", "cluster", "sources"],
  client: ["registry", "model", "http"],
  cli: ["client"],
  http: ["registry", "model"],
  dns: ["registry", "model"],
  health: ["registry", "model"],
  cluster: ["registry", "model"],
  sources: ["registry", "model"],
  registry: ["model", "store"],
  store: ["model"],
  model: [],
};
/** The "never"s of DESIGN.md, checked on their own so a failure names the rule. */
const NEVER: readonly [string, string, string][] = [
  ["registry", "http", "the core knows no transport"],
  ["registry", "dns", "the core knows no transport"],
  ["registry", "health", "health writes into the registry, not the reverse"],
  ["registry", "cluster", "the core knows no transport"],
  ["dns", "http", "faces do not know each other"],
  ["http", "dns", "faces do not know each other"],
  ["cluster", "http", "the owner-forwarding proxy lives in http"],
  ["http", "cluster", "the owner-forwarding proxy lives in http"],
];
const LEAVES = "lib";
/** Files at the top of src/: the CLI entry, the package API and the container's HEALTHCHECK probe, which import
 * parts through their doors (the probe only a leaf). */
const TOP = ["main.ts", "index.ts", "healthcheck.ts"];

interface Edge {
  from: string; // path under src/
  to: string; // path under src/
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import, `export ... from` and dynamic import() of every file under src/. */
function importEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith(".")) continue; // node: builtins and packages
      const target = resolve(dirname(file), fileName).replace(/\.js$/, ".ts");
      edges.push({ from: relative(SRC, file), to: relative(SRC, target) });
    }
  }
  return edges;
}

/** The part a file belongs to: its folder under src/ ("lib" for leaves), or "" for a top-level file. */
function partOf(path: string): string {
  const slash = path.indexOf("/");
  return slash === -1 ? "" : path.slice(0, slash);
}

/** Each rule's violations, as readable lines. */
function violations(edges: readonly Edge[], parts: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = { door: [], leaf: [], layering: [], never: [], top: [], partCycle: [], fileCycle: [] };
  for (const { from, to } of edges) {
    const a = partOf(from);
    const b = partOf(to);
    if (a === LEAVES && b !== LEAVES) out.leaf!.push(`${from} -> ${to}: a leaf imports no part`);
    if (b === LEAVES || a === b) continue;
    if (b === "") out.top!.push(`${from} -> ${to}: nothing imports the entry or the package API`);
    else if (to !== `${b}/index.ts`) out.door!.push(`${from} -> ${to}: import ${b}/index.js, the part's door`);
    if (a !== "" && a !== LEAVES && b !== "" && !(MAY_IMPORT[a] ?? []).includes(b)) out.layering!.push(`${from} -> ${to}: ${a} may import ${(MAY_IMPORT[a] ?? []).join(", ") || "no part"}`);
    for (const [x, y, why] of NEVER) if (a === x && b === y) out.never!.push(`${from} -> ${to}: never ${x} -> ${y} (${why})`);
  }
  const partEdges = edges.map((e) => ({ from: partOf(e.from), to: partOf(e.to) })).filter((e) => parts.includes(e.from) && parts.includes(e.to) && e.from !== e.to);
  out.partCycle = cycles(partEdges).map((c) => `parts in a circle: ${c.join(" -> ")}`);
  out.fileCycle = cycles(edges).map((c) => `files in a circle: ${c.join(" -> ")}`);
  return out;
}

/** One cycle per strongly connected component of more than one node (Tarjan), each shown as a path. */
function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) (next.get(from) ?? next.set(from, new Set()).get(from)!).add(to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1) found.push([...component.reverse(), component[0]!]);
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

const PARTS = readdirSync(SRC).filter((name) => name !== LEAVES && statSync(join(SRC, name)).isDirectory());
const EDGES = importEdges();
const FOUND = violations(EDGES, PARTS);

describe("architecture: the layout of src/", () => {
  it("has the parts of the picture, each with a door whose header says its job", () => {
    expect(PARTS.sort()).toEqual(Object.keys(MAY_IMPORT).sort());
    for (const part of PARTS) {
      const door = readFileSync(join(SRC, part, "index.ts"), "utf8");
      expect(door, `${part}/index.ts starts with a comment naming the part`).toMatch(new RegExp(`^// ${part}: `));
    }
    expect(readdirSync(SRC).filter((name) => name.endsWith(".ts")).sort()).toEqual([...TOP].sort());
  });

  it("reads the imports (the check is not vacuous)", () => {
    expect(EDGES.length).toBeGreaterThan(100);
    expect(EDGES).toContainEqual({ from: "app/server.ts", to: "cluster/index.ts" }); // a dynamic import()
  });

  it("imports another part only through its index.ts", () => expect(FOUND.door).toEqual([]));
  it("keeps leaves (src/lib) free of parts", () => expect(FOUND.leaf).toEqual([]));
  it("points arrows down the picture", () => expect(FOUND.layering).toEqual([]));
  it("keeps each never of DESIGN.md", () => expect(FOUND.never).toEqual([]));
  it("never imports src/main.ts, src/index.ts or src/healthcheck.ts", () => expect(FOUND.top).toEqual([]));
  it("has no cycle between parts", () => expect(FOUND.partCycle).toEqual([]));
  it("has no cycle between files", () => expect(FOUND.fileCycle).toEqual([]));
});

/**
 * Time in src/cluster/ goes through the injected Clock (lib/clock.ts), so its machines are tested on a manual clock.
 * The one exception is etcd.ts, the client's adapter: a gRPC deadline is a wall-clock time.
 */
const RAW_CLOCK = /\bDate\.now\(|\bsetTimeout\(|\bsetInterval\(|\bperformance\.now\(|\bnew Date\(\)/;
const CLOCK_ADAPTERS = ["cluster/etcd.ts"];

function rawClockReads(file: string, text: string): string[] {
  return text.split("\n").flatMap((line, i) => {
    const code = line.trimStart();
    if (code.startsWith("//") || code.startsWith("*") || !RAW_CLOCK.test(code.replace(/\/\/.*$/, ""))) return [];
    return [`${file}:${i + 1}: ${code}`];
  });
}

describe("architecture: time in src/cluster", () => {
  it("is read through the Clock: no Date.now, setTimeout, setInterval, performance.now or new Date() outside etcd.ts", () => {
    const files = sourceFiles(join(SRC, "cluster")).map((f) => relative(SRC, f));
    expect(files.length).toBeGreaterThan(5);
    const found = files.filter((f) => !CLOCK_ADAPTERS.includes(f)).flatMap((f) => rawClockReads(f, readFileSync(join(SRC, f), "utf8")));
    expect(found).toEqual([]);
    expect(rawClockReads("cluster/etcd.ts", readFileSync(join(SRC, "cluster/etcd.ts"), "utf8"))).toHaveLength(1); // the deadline
  });

  it("catches a raw read, not one in a comment", () => {
    expect(rawClockReads("x.ts", "const t = Date.now();\n// Date.now() in a comment\nsetTimeout(f, 1); // later")).toEqual(["x.ts:1: const t = Date.now();", "x.ts:3: setTimeout(f, 1); // later"]);
  });
});

describe("architecture: the rules catch what they are for", () => {
  const found = violations(
    [
      { from: "dns/answer.ts", to: "registry/registry.ts" },
      { from: "lib/clock.ts", to: "model/index.ts" },
      { from: "registry/discovery.ts", to: "health/index.ts" },
      { from: "health/index.ts", to: "registry/index.ts" },
      { from: "http/app.ts", to: "index.ts" },
      { from: "dns/a.ts", to: "dns/b.ts" },
      { from: "dns/b.ts", to: "dns/a.ts" },
    ],
    ["dns", "registry", "health", "model", "http"],
  );
  it("a deep import, a leaf on a part, a forbidden arrow, a cycle", () => {
    expect(found.door).toEqual(["dns/answer.ts -> registry/registry.ts: import registry/index.js, the part's door"]);
    expect(found.leaf).toHaveLength(1);
    expect(found.layering).toEqual(["registry/discovery.ts -> health/index.ts: registry may import model, store"]);
    expect(found.never).toEqual(["registry/discovery.ts -> health/index.ts: never registry -> health (health writes into the registry, not the reverse)"]);
    expect(found.top).toHaveLength(1);
    expect(found.partCycle).toEqual(["parts in a circle: registry -> health -> registry"]);
    expect(found.fileCycle!.some((c) => c.includes("dns/a.ts") && c.includes("dns/b.ts"))).toBe(true);
  });
});
