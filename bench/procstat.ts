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
