// The replica's watch, an adapter around etcd3's watcher: on one member at a time, through a client of its own.
// etcd3 keeps one stream for all the watchers of a client and picks its member at random, so a new watcher on the
// shared client would land on the same frozen stream; a silent watch (liveness.ts, the probe) moves to the next
// endpoint instead.
import type { Etcd3, Watcher } from "etcd3";
import type { Logger } from "pino";
import { connectEtcd, type EtcdConnection } from "./etcd.js";
import type { KeyEvent } from "./keys.js";

export interface WatchHandlers {
  data(events: readonly KeyEvent[]): void;
  /** The watch was cancelled (how etcd3 reports a start below the compacted revision): read everything again. */
  error(err: Error): void;
  disconnected(err: Error): void;
  connected(): void;
}

export class EtcdWatch {
  private client: Etcd3 | undefined;
  private endpointIndex = 0;
  private move = false;
  private watcher: Watcher | undefined;
  errors = 0;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly log: Logger,
    private readonly on: WatchHandlers,
  ) {}

  get running(): boolean {
    return this.watcher !== undefined;
  }

  get endpoint(): string | undefined {
    return this.conn.endpoints[this.endpointIndex];
  }

  /** The next start watches through the next endpoint, on a new client. */
  moveOnNextStart(): void {
    this.move = true;
  }

  async start(range: { start: Buffer; end: Buffer }, fromRevision: number): Promise<void> {
    if (this.move) {
      this.move = false;
      this.client?.close();
      this.client = undefined;
      this.endpointIndex = (this.endpointIndex + 1) % this.conn.endpoints.length;
    }
    this.client ??= connectEtcd({ ...this.conn, endpoints: [this.conn.endpoints[this.endpointIndex]!] });
    this.watcher = await this.client.watch().inRange(range).startRevision(String(fromRevision)).create();
    this.watcher.on("data", (res) => this.on.data(res.events));
    this.watcher.on("error", (err) => {
      this.errors += 1;
      this.log.warn({ error: err.message }, "etcd watch cancelled: resyncing the replica");
      this.on.error(err);
    });
    this.watcher.on("disconnected", (err) => this.on.disconnected(err));
    this.watcher.on("connected", () => this.on.connected());
  }

  /**
   * Stops listening to the watcher and cancels it without waiting: a cancel waits for the member's answer, and on
   * a dead member it never comes (that hung the resync that followed a compaction).
   */
  drop(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher === undefined) return;
    watcher.removeAllListeners();
    watcher.on("error", () => undefined);
    watcher.cancel().catch(() => undefined);
  }

  close(): void {
    this.drop();
    this.client?.close();
  }
}
