// Writes at a steady rate for the churn benches (bench/dns-churn.ts, bench/write-cost.ts): `send` called
// `perSecond` times a second, paced every 5 ms, at most 32 in flight (Infinity: as fast as 32 in flight allow),
// until stopped; counts the sends that resolved true (acknowledged) and false (failed).
export interface Paced {
  stop(): Promise<{ acked: number; failed: number; seconds: number }>;
}

export function pace(perSecond: number, send: () => Promise<boolean>): Paced {
  let sent = 0;
  let acked = 0;
  let failed = 0;
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
    while (sent < due && pending.size < 32) {
      sent += 1;
      const p: Promise<void> = send()
        .then((ok) => void (ok ? (acked += 1) : (failed += 1)), () => void (failed += 1))
        .finally(() => pending.delete(p));
      pending.add(p);
    }
  }, 5);
  return {
    stop: async () => {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(pending);
      return { acked, failed, seconds };
    },
  };
}
