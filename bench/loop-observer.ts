// Diagnosis: preload into every Node process of a benchmark to see their event-loop delay and GC pauses, a line
// on stderr every 10 s per process: NODE_OPTIONS="--import ./dist/bench/loop-observer.js" node dist/bench/cluster.js
// (children inherit NODE_OPTIONS). The event-loop histogram has 1 ms resolution.
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";

const nodeId = process.argv.indexOf("--node-id");
const tag = `${nodeId > 0 ? process.argv[nodeId + 1] : (process.argv[1]?.split("/").pop() ?? "node")}:${process.pid}`;
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let pauses: number[] = [];
new PerformanceObserver((list) => pauses.push(...list.getEntries().map((e) => e.duration))).observe({ entryTypes: ["gc"] });
const ms = (ns: number) => (ns / 1e6).toFixed(2);
setInterval(() => {
  const long = pauses.filter((d) => d >= 1).length;
  process.stderr.write(
    `loop ${tag}: delay p50 ${ms(delay.percentile(50))} p99 ${ms(delay.percentile(99))} max ${ms(delay.max)} ms; ` +
      `gc ${pauses.length} pauses, ${long} >= 1 ms, longest ${Math.max(0, ...pauses).toFixed(1)} ms\n`,
  );
  delay.reset();
  pauses = [];
}, 10_000).unref();
