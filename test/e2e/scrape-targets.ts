// What a scraper (Prometheus, VictoriaMetrics) says it scrapes: its /api/v1/targets, and a wait until that
// satisfies a test. Shared by the e2e tests that run one.

export interface ScrapeTarget {
  labels: Record<string, string>;
  discoveredLabels?: Record<string, string>;
  health: string;
}

/** The active targets of the scraper at `base` (e.g. http://127.0.0.1:9090); none while it is not up yet. */
export async function activeTargets(base: string): Promise<ScrapeTarget[]> {
  const r = await fetch(`${base}/api/v1/targets?state=active`).catch(() => undefined);
  if (!r?.ok) return [];
  return ((await r.json()) as { data: { activeTargets: ScrapeTarget[] } }).data.activeTargets;
}

/** Polls the targets until `ok` holds; fails after `ms` naming `what` and the targets last seen. */
export async function untilTargets(base: string, what: string, ok: (t: ScrapeTarget[]) => boolean, ms = 20_000): Promise<ScrapeTarget[]> {
  const end = Date.now() + ms;
  for (;;) {
    const t = await activeTargets(base);
    if (ok(t)) return t;
    if (Date.now() > end) throw new Error(`${what}: targets were ${JSON.stringify(t.map((x) => x.labels))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The targets' instance labels, sorted. */
export const instancesOf = (t: ScrapeTarget[]) => t.map((x) => x.labels.instance).sort();
