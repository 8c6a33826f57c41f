// Reads a .cpuprofile (inspector or node --cpu-prof) and returns where the busy time went: self time by origin
// and the hottest functions, as markdown table lines. Used by the health and store benchmarks' --profile.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export type CallFrame = ProfileNode["callFrame"];

/** Where code lives, by package: src/<dir>, node_modules/<package>, node core, native, or V8's (gc), (program)... */
export function originOf(f: CallFrame): string {
  return f.url.includes("/dist/src/") ? `src/${f.url.replace(/^.*\/dist\/src\//, "").split("/")[0]}`
    : f.url.includes("/node_modules/") ? `node_modules/${f.url.replace(/^.*\/node_modules\//, "").split("/")[0]}`
    : f.url.startsWith("node:") ? "node core (JS)"
    : f.url === "" && /^\(.*\)$/.test(f.functionName) ? f.functionName
    : f.url === "" ? "native"
    : "other";
}

/** `origin` groups the busy time (default: originOf). */
export function profileTop(file: string, top = 20, origin: (f: CallFrame) => string = originOf): string[] {
  const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const origins = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = prof.timeDeltas[i] ?? 0;
    if (n === undefined) return;
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, "$1/")}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    origins.set(origin(f), (origins.get(origin(f)) ?? 0) + dt);
    total += dt;
  });
  const idle = self.get("(idle)") ?? 0;
  const busy = total - idle;
  const pct = (us: number) => ((100 * us) / busy).toFixed(1);
  self.delete("(idle)");
  origins.delete("(idle)");
  const out = [`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s profiled (${((100 * busy) / total).toFixed(1)}%)`, "", "| % of busy | origin |", "|---|---|"];
  for (const [key, us] of [...origins.entries()].sort((a, b) => b[1] - a[1])) out.push(`| ${pct(us)} | ${key} |`);
  out.push("", "| % of busy | function (self time) |", "|---|---|");
  for (const [key, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`| ${pct(us)} | \`${key}\` |`);
  return out;
}

/** Total time per function including callees (inclusive), for the functions whose name matches. */
export function inclusiveTime(file: string, match: RegExp): { name: string; pctOfBusy: number }[] {
  const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: (ProfileNode & { children?: number[] })[]; samples: number[]; timeDeltas: number[] };
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const incl = new Map<string, number>();
  let busy = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    const leaf = byId.get(id);
    if (leaf === undefined || leaf.callFrame.functionName === "(idle)") return;
    busy += dt;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, "$1/")}:${f.lineNumber + 1}`;
      if (!match.test(key) || seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + dt);
    }
  });
  return [...incl.entries()].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, pctOfBusy: (100 * us) / busy }));
}
