// What the benchmarks that run servers as child processes share: the list of children (SIGTERMed if this
// process exits first), stopping one, whether taskset can pin, and small timing helpers.
import { spawnSync, type ChildProcess } from "node:child_process";

/** Every child started; any still running when this process exits gets SIGTERM. */
export const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
});

/** Children being stopped on purpose: an exit of any other is worth a warning. */
export const stopping = new Set<ChildProcess>();

/** SIGTERM, then SIGKILL if it has not exited 5 s later; resolves once it has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  stopping.add(child);
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Whether processes can be pinned to CPUs with taskset (unless the run asked not to). */
export function canPin(disabled: boolean | undefined): boolean {
  return !disabled && spawnSync("taskset", ["-c", "0", "true"]).status === 0;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const now = () => performance.now();
