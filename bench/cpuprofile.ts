// Reads a .cpuprofile (from bench/profiler.ts) and prints where the busy time went: by origin, by source file and
// by function (self time), as markdown tables. Percentages are of busy time: idle is the process waiting.
import { readFileSync } from "node:fs";
import { fmt } from "./stats.js";

interface ProfileNode {
  id: number;
  children?: number[];
  positionTicks?: { line: number; ticks: number }[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}

function origin(f: ProfileNode["callFrame"]): string {
  const m = /\/dist\/(src\/[^/]+)\//.exec(f.url);
  if (m !== null) return `${m[1]} (ours)`;
  if (f.url.includes("/dist/src/")) return "src (ours)";
  if (f.url.includes("/dist/bench/")) return "bench";
  const pkg = /\/node_modules\/((@[^/]+\/)?[^/]+)\//.exec(f.url);
  if (pkg !== null) return pkg[1]!;
  if (f.url.startsWith("node:")) return "node core (JS)";
  if (f.url === "" && /^\(.*\)$/.test(f.functionName)) return f.functionName;
  if (f.url === "") return "native (C++, e.g. the UDP send)";
  return "other";
}

const where = (f: ProfileNode["callFrame"]) => f.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, "$1/");

export function printHotFunctions(file: string, top = 20): void {
  const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  const self = new Map<string, number>();
  const origins = new Map<string, number>();
  const files = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, dt: number) => m.set(k, (m.get(k) ?? 0) + dt);
  let total = 0;
  let idle = 0;
  prof.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = prof.timeDeltas[i] ?? 0;
    if (n === undefined) return;
    total += dt;
    const f = n.callFrame;
    if (f.functionName === "(idle)") {
      idle += dt;
      return;
    }
    add(self, `${f.functionName || "(anonymous)"} ${f.url ? `${where(f)}:${f.lineNumber + 1}` : ""}`.trim(), dt);
    add(origins, origin(f), dt);
    if (f.url) add(files, where(f), dt);
    // Inclusive time of our own functions: each counted once per sample, however deep the recursion.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const g = byId.get(at)?.callFrame;
      if (g === undefined || !g.url.includes("/dist/src/")) continue;
      const key = `${g.functionName || "(anonymous)"} ${where(g)}:${g.lineNumber + 1}`;
      if (!seen.has(key)) add(inclusive, key, dt);
      seen.add(key);
    }
  });
  const busy = total - idle;
  // Line-level self time in our code (V8 records it per sampled line), with the compiled line's text.
  const lines = new Map<string, { ticks: number; url: string; line: number }>();
  let allTicks = 0;
  for (const n of prof.nodes) {
    for (const t of n.positionTicks ?? []) {
      allTicks += t.ticks;
      if (!n.callFrame.url.includes("/dist/src/")) continue;
      const key = `${where(n.callFrame)}:${t.line}`;
      const e = lines.get(key) ?? { ticks: 0, url: n.callFrame.url, line: t.line };
      e.ticks += t.ticks;
      lines.set(key, e);
    }
  }
  const pct = (us: number) => fmt((100 * us) / busy, 1);
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  console.log(`busy ${fmt(busy / 1e6, 2)} s of ${fmt(total / 1e6, 2)} s profiled`);
  console.log("\n| % of busy | origin |\n|---|---|");
  for (const [key, us] of sorted(origins)) console.log(`| ${pct(us)} | ${key} |`);
  console.log("\n| % of busy | file (self time of its functions) |\n|---|---|");
  for (const [key, us] of sorted(files).slice(0, 12)) console.log(`| ${pct(us)} | \`${key}\` |`);
  console.log("\n| % of busy | function (self time) |\n|---|---|");
  for (const [key, us] of sorted(self).slice(0, top)) console.log(`| ${pct(us)} | \`${key}\` |`);
  console.log("\n| % of busy | our function (total time, callees included) |\n|---|---|");
  for (const [key, us] of sorted(inclusive).slice(0, 12)) console.log(`| ${pct(us)} | \`${key}\` |`);
  if (lines.size === 0) return;
  // Ticks are samples; as a share of busy time they assume the sampling interval of bench/profiler.ts (100 us).
  const busyTicks = busy / 100;
  const text = (url: string, line: number) => {
    try {
      return readFileSync(new URL(url), "utf8").split("\n")[line - 1]?.trim().slice(0, 110) ?? "";
    } catch {
      return "";
    }
  };
  console.log(`\n| % of busy | line of our compiled code (self time; ${fmt((100 * allTicks) / busyTicks, 0)}% of samples carry a line) | code |\n|---|---|---|`);
  for (const [key, e] of [...lines.entries()].sort((a, b) => b[1].ticks - a[1].ticks).slice(0, 12)) {
    console.log(`| ${fmt((100 * e.ticks) / busyTicks, 1)} | \`${key}\` | \`${text(e.url, e.line).replace(/\|/g, "\\|")}\` |`);
  }
}
