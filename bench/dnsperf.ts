// dnsperf as a child process, asynchronously (the caller may keep loading the server meanwhile): qps and lost
// queries from its report. `pin`: on CPU 0 (taskset), beside the driver, leaving CPU 1 to the server.
import { spawn, spawnSync } from "node:child_process";
import { children } from "./children.js";

export interface DnsperfRun {
  readonly qps: number;
  readonly lost: number;
  readonly out: string;
  /** With `statsEvery`: dnsperf's per-interval rates, each for the interval ending at `at` (Unix ms). */
  readonly samples: readonly { at: number; qps: number }[];
}

export function requireDnsperf(): void {
  if (spawnSync("sh", ["-c", "command -v dnsperf"]).status !== 0) throw new Error("dnsperf not found: apt-get install -y dnsperf");
}

/** `statsEvery` (s): dnsperf -S, a rate per interval in `samples`. */
export function dnsperf(port: number, file: string, seconds: number, opts: { clients: number; pin: boolean; statsEvery?: number }): Promise<DnsperfRun> {
  const args = ["-s", "127.0.0.1", "-p", String(port), "-d", file, "-c", String(opts.clients), "-l", String(seconds), ...(opts.statsEvery ? ["-S", String(opts.statsEvery)] : [])];
  const child = spawn(opts.pin ? "taskset" : "dnsperf", opts.pin ? ["-c", "0", "dnsperf", ...args] : args, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`dnsperf exited with ${code}: ${out.slice(-500)}`));
      const qps = Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1]);
      const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1]);
      const samples = [...out.matchAll(/^(\d+\.\d+): ([\d.]+)$/gm)].map((m) => ({ at: Number(m[1]) * 1000, qps: Number(m[2]) }));
      resolve({ qps, lost, out, samples });
    });
  });
}
