// What the benchmarks that run servers as child processes share: the list of children (SIGTERMed if this
// process exits first), stopping one, running main with cleanup, whether taskset can pin, and timing helpers.
import { spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

/** Every child started; any still running when this process exits gets SIGTERM (also when it is interrupted or
 * killed with SIGTERM/SIGHUP, e.g. by `timeout`, which would otherwise leave servers running and skew later runs). */
export const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => process.exit(130));

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

/**
 * Runs a benchmark's main, then stops every child. The work dir is removed after a success and kept after a
 * failure, with a line saying where and what it holds (`kept`, e.g. "the children's logs").
 */
export async function runMain(main: () => Promise<void>, work: string, kept: string): Promise<void> {
  try {
    await main();
  } catch (err) {
    await Promise.all(children.map(stopChild));
    console.error(`failed; ${kept} are kept in ${work}`);
    throw err;
  }
  await Promise.all(children.map(stopChild));
  rmSync(work, { recursive: true, force: true });
}
