// One server per data directory: two would append to one journal at the same offsets and overwrite each other's
// acknowledged writes. registry.lock names its owner by PID, boot and process start time, so a lock left by a
// crash, a power cut or a restarted container is taken over even when its PID now belongs to someone else.
import { readFileSync } from "node:fs";
import { open, readFile, rm } from "node:fs/promises";
import type { Logger } from "pino";
import { errnoOf, reasonText } from "../lib/errno.js";
import { StoreError } from "./types.js";

/** Who holds a lock: the process, the boot it ran in, and when it started (Linux: /proc/<pid>/stat's starttime). */
export interface LockOwner {
  readonly pid: number;
  readonly boot?: string | undefined;
  readonly start?: string | undefined;
}

/** Lock files this process holds: a second store on the same directory in this process is refused too. */
const heldHere = new Set<string>();

export class DirLock {
  private held = false;

  constructor(
    private readonly path: string,
    private readonly logger?: Logger,
  ) {}

  /** Takes the lock, or throws a StoreError naming the live owner. */
  async acquire(what: string): Promise<void> {
    if (heldHere.has(this.path)) throw new StoreError(`${what} is already open in this process: one store per data directory`);
    for (;;) {
      try {
        const file = await open(this.path, "wx");
        try {
          await file.writeFile(formatOwner(ownerOf(process.pid)));
        } catch (err) {
          // A lock we could not write (a full disk) is not ours: no handle left to GC, no empty file left behind.
          await file.close();
          await rm(this.path, { force: true });
          throw new StoreError(`cannot lock ${this.path}: ${reasonText(err)}`);
        }
        await file.close();
        this.held = true;
        heldHere.add(this.path);
        return;
      } catch (err) {
        if (err instanceof StoreError) throw err;
        if (errnoOf(err) !== "EEXIST") throw new StoreError(`cannot lock ${this.path}: ${reasonText(err)}`);
      }
      const owner = parseOwner(await readFile(this.path, "utf8").catch(() => ""));
      const verdict = owner === undefined ? "unreadable" : judge(owner);
      if (verdict === "alive") {
        throw new StoreError(`${what} is in use by process ${owner!.pid} (${this.path}): one server per data directory; if no server runs there, remove the lock file`);
      }
      this.logger?.warn({ path: this.path, pid: owner?.pid, reason: verdict }, "taking over a lock left by a process that is gone");
      await rm(this.path, { force: true });
    }
  }

  async release(): Promise<void> {
    if (!this.held) return;
    await rm(this.path, { force: true });
    heldHere.delete(this.path);
    this.held = false;
  }
}

/** "12345\nboot <id>\nstart <ticks>\n": the PID first, as a bare-PID lock of an older version has it. */
export function formatOwner(owner: LockOwner): string {
  return [`${owner.pid}`, ...(owner.boot ? [`boot ${owner.boot}`] : []), ...(owner.start ? [`start ${owner.start}`] : [])].join("\n") + "\n";
}

export function parseOwner(text: string): LockOwner | undefined {
  const [first, ...rest] = text.split("\n");
  const pid = Number(first?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const field = (name: string) => rest.find((line) => line.startsWith(`${name} `))?.slice(name.length + 1).trim();
  return { pid, boot: field("boot"), start: field("start") };
}

/** This machine's boot, and a process's identity in it, where /proc tells (Linux); undefined elsewhere. */
export function ownerOf(pid: number): LockOwner {
  return { pid, boot: bootId(), start: procStat(pid)?.start };
}

/**
 * Whether the lock's owner still runs: "alive", or why not. Our own PID is a previous life of this process (a
 * container's PID 1 restarted). Without /proc (not Linux), a live PID is taken as the owner, as before.
 */
export function judge(owner: LockOwner, boot = bootId(), stat = procStat(owner.pid)): "alive" | "own pid" | "rebooted" | "exited" | "zombie" | "pid reused" {
  if (owner.pid === process.pid) return "own pid";
  if (owner.boot !== undefined && boot !== undefined && owner.boot !== boot) return "rebooted";
  if (boot !== undefined) {
    // /proc is there: it is the truth about the PID.
    if (stat === undefined) return "exited";
    if (stat.state === "Z" || stat.state === "X") return "zombie";
    if (owner.start !== undefined && owner.start !== stat.start) return "pid reused";
    return "alive";
  }
  return processExists(owner.pid) ? "alive" : "exited";
}

function bootId(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** State and start time (clock ticks since boot) from /proc/<pid>/stat; the name before them may hold anything. */
function procStat(pid: number): { state: string; start: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const start = fields[19];
  return state !== undefined && start !== undefined ? { state, start } : undefined;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === "EPERM"; // alive, someone else's
  }
}
