// How the CLI prints: a table for a person at a terminal, JSON for a pipe (as gh does), either forced with --output.

export type OutputMode = "table" | "json";

export interface Io {
  readonly stdout: { write(text: string): unknown; isTTY?: boolean | undefined };
  readonly stderr: { write(text: string): unknown };
}

export interface Instance {
  id: string;
  name: string;
  version?: string;
  address: string;
  port: number;
  nodeId?: string;
  tags?: readonly string[];
  healthStatus?: string;
  maintenance?: { reason: string; since: string } | undefined;
}

/** Columns padded to their widest cell, two spaces apart; the last one not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

export function instanceRows(services: readonly Instance[]): string {
  return table(
    ["ID", "NAME", "VERSION", "ADDRESS", "PORT", "NODE", "HEALTH", "TAGS"],
    services.map((s) => [s.id, s.name, s.version ?? "", s.address, String(s.port), s.nodeId ?? "", s.maintenance ? `maintenance (${s.maintenance.reason})` : (s.healthStatus ?? ""), (s.tags ?? []).join(",")]),
  );
}

/** One instance as "key  value" lines. */
export function instanceDetail(s: Instance & Record<string, unknown>): string {
  const rows: string[][] = [];
  for (const [key, value] of Object.entries(s)) {
    if (value === undefined) continue;
    rows.push([key, typeof value === "string" ? value : JSON.stringify(value)]);
  }
  return table(["FIELD", "VALUE"], rows);
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
