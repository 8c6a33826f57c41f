// Linux CPU accounting for the benchmarks: a process's CPU time and one core's busy time, from /proc. The
// difference tells how much of the server's core other processes took during a window (a noisy neighbour).
import { readFileSync } from "node:fs";

/** CPU time (user + system) a process has used so far, ms (clock ticks of 10 ms). NaN when it is gone. */
export function processCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** Busy time of one core so far (everything but idle and iowait, steal included), ms. NaN if unknown. */
export function coreBusyMs(cpu: number): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n").find((l) => l.startsWith(`cpu${cpu} `));
    if (line === undefined) return NaN;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 10;
  } catch {
    return NaN;
  }
}

/** What a child process reports about itself when the benchmark asks (over IPC): CPU, event loop use, memory. */
export interface Usage {
  at: number;
  cpu: { user: number; system: number };
  elu: { idle: number; active: number; utilization: number };
  rss: number;
  heapUsed: number;
}

export function ownUsage(): Usage {
  const memory = process.memoryUsage();
  return { at: performance.now(), cpu: process.cpuUsage(), elu: performance.eventLoopUtilization(), rss: memory.rss, heapUsed: memory.heapUsed };
}
