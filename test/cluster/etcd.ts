// Test harness: a real etcd (Debian's etcd-server, 3.4) on loopback as child processes, one or three members,
// each with its own temp data dir and free ports. Talks to etcd only through its v3 JSON gateway (fetch), so it
// needs no etcd client package. `stop()` kills every member and removes the data dirs whatever happened, and a
// process 'exit' hook does the same if a test forgot to call it; if this process is killed outright, the members
// die with it (PR_SET_PDEATHSIG through setpriv) and only a temp dir may remain.
//
// Timing: members run with --heartbeat-interval 50 --election-timeout 500 by default (etcd's defaults are
// 100/1000). Same 1:10 ratio etcd's tuning guide asks for, still far above a loopback round trip and a local
// fsync, and a killed leader is replaced in ~0.5-1 s instead of ~1-2 s, which keeps fault tests short. Pass
// `{ heartbeatMs: 100, electionMs: 1000 }` to measure with production defaults.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface StartEtcdOptions {
  members?: 1 | 3;
  /** --heartbeat-interval in ms (default 50). */
  heartbeatMs?: number;
  /** --election-timeout in ms (default 500). */
  electionMs?: number;
  /** How long start (and restart) may take before it fails with the members' logs (default 20 s). */
  readyTimeoutMs?: number;
  /** The etcd binary (default $ETCD_BIN or `etcd` on PATH). */
  binary?: string;
  /** Where the temp data dirs go (default os.tmpdir()). */
  tmpRoot?: string;
  /** Extra flags for every member. */
  extraArgs?: string[];
  /** Also serve clients over TLS on a second port (the plain http one stays for the harness): PEM files. */
  tls?: { certFile: string; keyFile: string; caFile: string; clientCertAuth?: boolean };
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** etcd's member id, a uint64 as a decimal string (never a JS number: it does not fit in 53 bits). */
  readonly id: string;
  /** The pid of the current process, or of the last one once it has exited. */
  readonly pid: number;
  readonly running: boolean;
  /**
   * Sends a signal (default SIGKILL). For anything but SIGSTOP/SIGCONT it waits until the process has exited
   * (SIGKILL after 5 s if it has not).
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the member again on the same ports and data dir (killing it first if it runs) and waits until it is healthy. */
  restart(opts?: { waitHealthy?: boolean }): Promise<void>;
  /** The last 64 KB of its stderr/stdout. */
  log(): string;
}

export interface EtcdCluster {
  /** Client URLs, one per member, in member order. */
  readonly endpoints: string[];
  /** With `tls`: the https client URLs, one per member. */
  readonly tlsEndpoints: string[];
  readonly members: EtcdMember[];
  /** The temp dir holding every member's data dir; gone after stop(). */
  readonly tmpDir: string;
  /** How long start took, ms (spawn to every member healthy). */
  readonly startMs: number;
  /**
   * The member that is leader, once a running member reports itself leader and the other reachable members agree;
   * waits (polling every 20 ms) up to timeoutMs for an election to finish.
   */
  leader(timeoutMs?: number): Promise<EtcdMember>;
  /** Kills every member (SIGKILL) and removes the temp dir. Idempotent; never throws. */
  stop(): Promise<void>;
}

const SETPRIV = process.platform === "linux" ? ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p)) : undefined;

const live = new Set<Harness>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const h of live) h.stopSync();
  });
}

/** Starts etcd and resolves once every member is healthy (has a leader and serves reads). */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdCluster> {
  let lastError: unknown;
  // Free ports are found by binding port 0 and closing; another process can take one before etcd binds it,
  // so a start that fails with "address already in use" is retried on new ports.
  for (let attempt = 0; attempt < 3; attempt++) {
    const h = new Harness(opts);
    try {
      await h.start();
      return h;
    } catch (err) {
      lastError = err;
      await h.stop();
      if (!/address already in use/.test(String(err))) break;
    }
  }
  throw lastError;
}

class Member implements EtcdMember {
  child: ChildProcess | undefined;
  spawnError: Error | undefined;
  pid = 0;
  id = "";
  private out = "";
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly h: Harness,
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    private readonly args: string[],
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.spawnError === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  spawn(): void {
    // setpriv (util-linux) execs etcd with PR_SET_PDEATHSIG: the kernel kills it if this process dies without
    // running its 'exit' hook (SIGKILL, a crashed worker). Same pid, as setpriv execs.
    const [cmd, args]: [string, string[]] = SETPRIV !== undefined ? [SETPRIV, ["--pdeathsig", "KILL", "--", this.h.binary, ...this.args]] : [this.h.binary, this.args];
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.spawnError = undefined;
    const keep = (d: Buffer) => {
      this.out += d.toString();
      if (this.out.length > 128 * 1024) this.out = this.out.slice(-64 * 1024);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    this.exited = new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (err) => {
        this.spawnError = err;
        this.out += `\nspawn failed: ${String(err)}\n`;
        resolve();
      });
    });
    this.pid = child.pid ?? 0;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill(signal);
    if (signal === "SIGSTOP" || signal === "SIGCONT") return;
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await this.exited;
    clearTimeout(timer);
  }

  async restart(opts: { waitHealthy?: boolean } = {}): Promise<void> {
    if (this.h.stopped) throw new Error(`etcd ${this.name}: the cluster was stopped`);
    if (this.running) await this.kill("SIGKILL");
    this.spawn();
    if (opts.waitHealthy !== false) await this.h.waitHealthy([this]);
  }

  log(): string {
    return this.out.slice(-64 * 1024);
  }

  killSync(): void {
    if (this.running) {
      try {
        this.child!.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  waitExit(): Promise<void> {
    return this.exited;
  }
}

class Harness implements EtcdCluster {
  binary: string;
  readonly members: Member[] = [];
  readonly tlsEndpoints: string[] = [];
  tmpDir = "";
  startMs = 0;
  stopped = false;

  constructor(private readonly opts: StartEtcdOptions) {
    this.binary = opts.binary ?? process.env.ETCD_BIN ?? "etcd";
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  async start(): Promise<void> {
    const found = findBinary(this.binary);
    if (found === undefined) throw new Error(`etcd not found (${this.binary}): install Debian's etcd-server, or set ETCD_BIN`);
    this.binary = found;
    const n = this.opts.members ?? 1;
    const ports = await freePorts(2 * n);
    const tlsPorts = this.opts.tls ? await freePorts(n) : [];
    live.add(this);
    installExitHook();
    this.tmpDir = mkdtempSync(join(this.opts.tmpRoot ?? tmpdir(), "hd-etcd-"));
    const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    const peerUrl = (i: number) => `http://127.0.0.1:${ports[2 * i + 1]}`;
    const initialCluster = names.map((name, i) => `${name}=${peerUrl(i)}`).join(",");
    const token = `hd-test-${randomBytes(6).toString("hex")}`;
    names.forEach((name, i) => {
      const clientUrl = `http://127.0.0.1:${ports[2 * i]}`;
      const dataDir = join(this.tmpDir, name);
      mkdirSync(dataDir, { mode: 0o700 });
      const tls = this.opts.tls;
      const clientUrls = tls ? `${clientUrl},https://127.0.0.1:${tlsPorts[i]}` : clientUrl;
      if (tls) this.tlsEndpoints.push(`https://127.0.0.1:${tlsPorts[i]}`);
      const args = [
        "--name", name,
        "--data-dir", dataDir,
        "--listen-client-urls", clientUrls,
        "--advertise-client-urls", clientUrls,
        ...(tls ? ["--cert-file", tls.certFile, "--key-file", tls.keyFile, "--trusted-ca-file", tls.caFile, ...(tls.clientCertAuth ? ["--client-cert-auth"] : [])] : []),
        "--listen-peer-urls", peerUrl(i),
        "--initial-advertise-peer-urls", peerUrl(i),
        "--initial-cluster", initialCluster,
        "--initial-cluster-state", "new",
        // A token per cluster: a member of another test's cluster that reuses a port cannot join this one.
        "--initial-cluster-token", token,
        "--heartbeat-interval", String(this.opts.heartbeatMs ?? 50),
        "--election-timeout", String(this.opts.electionMs ?? 500),
        "--logger", "zap",
        "--log-outputs", "stderr",
        "--log-level", "warn",
        ...(this.opts.extraArgs ?? []),
      ];
      this.members.push(new Member(this, name, clientUrl, peerUrl(i), dataDir, args));
    });
    const t0 = performance.now();
    for (const m of this.members) m.spawn();
    await this.waitHealthy(this.members);
    this.startMs = performance.now() - t0;
  }

  /** Polls /health (true once the member has a leader and can serve a read), then reads the member id. */
  async waitHealthy(members: Member[]): Promise<void> {
    const end = Date.now() + (this.opts.readyTimeoutMs ?? 20_000);
    const pending = new Set(members);
    while (pending.size > 0) {
      for (const m of [...pending]) {
        if (!m.running) {
          await m.waitExit();
          const why = m.spawnError !== undefined ? `could not run ${this.binary}: ${m.spawnError.message}` : `exited with ${m.child?.exitCode ?? m.child?.signalCode}`;
          throw new Error(`etcd ${m.name} did not start: ${why}\n${m.log()}`);
        }
        try {
          const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
          const body = (await res.json()) as { health?: string };
          if (res.ok && body.health === "true") {
            m.id = (await etcdStatus(m.clientUrl)).memberId;
            pending.delete(m);
          }
        } catch {
          // not listening yet, or no leader yet
        }
      }
      if (pending.size === 0) break;
      if (Date.now() > end) {
        const logs = [...pending].map((m) => `--- ${m.name}\n${m.log()}`).join("\n");
        throw new Error(`etcd not healthy within ${this.opts.readyTimeoutMs ?? 20_000} ms: ${[...pending].map((m) => m.name).join(", ")}\n${logs}`);
      }
      await sleep(20);
    }
  }

  async leader(timeoutMs = 10_000): Promise<EtcdMember> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.filter((m) => m.running);
      const views = await Promise.all(
        running.map((m) => etcdStatus(m.clientUrl, 300).then((s) => ({ m, s }), () => undefined)),
      );
      const answered = views.filter((v) => v !== undefined);
      // The leader is a running member that says it leads, and every other member that answered agrees.
      const self = answered.find((v) => v.s.leader !== "0" && v.s.leader === v.s.memberId);
      if (self !== undefined && answered.every((v) => v.s.leader === self.s.memberId)) return self.m;
      if (Date.now() > end) {
        throw new Error(`no etcd leader within ${timeoutMs} ms: ${JSON.stringify(answered.map((v) => ({ name: v.m.name, id: v.s.memberId, leader: v.s.leader })))}`);
      }
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await Promise.all(
        this.members.map(async (m) => {
          m.killSync();
          await Promise.race([m.waitExit(), sleep(5_000)]);
        }),
      );
    } finally {
      this.removeTmp();
      live.delete(this);
    }
  }

  /** For the process 'exit' hook: no awaiting there. */
  stopSync(): void {
    this.stopped = true;
    for (const m of this.members) m.killSync();
    this.removeTmp();
  }

  private removeTmp(): void {
    if (this.tmpDir === "") return;
    try {
      rmSync(this.tmpDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort: nothing else can be done here
    }
  }
}

function findBinary(bin: string): string | undefined {
  if (bin.includes("/")) return existsSync(bin) ? bin : undefined;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return undefined;
}

/** n distinct free TCP ports on 127.0.0.1 (all bound at once, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", resolve);
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- the v3 JSON gateway (grpc-gateway): bytes are base64, int64 are decimal strings -------------------------

export const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
export const unb64 = (s: string): string => Buffer.from(s, "base64").toString("utf8");

/** The first key after every key with this prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = bytes[i]! + 1;
      return end.toString("base64");
    }
  }
  return b64("\0");
}

export class GatewayError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(message);
    this.name = "GatewayError";
  }
}

/** POSTs a JSON body to a gateway path (`/v3/kv/put`, ...) and returns the parsed answer; throws on non-2xx. */
export async function gateway<T = Record<string, unknown>>(url: string, path: string, body: unknown = {}, timeoutMs = 5_000): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  if (!res.ok) {
    const message = (parsed as { message?: string; error?: string })?.message ?? (parsed as { error?: string })?.error ?? text;
    throw new GatewayError(`${path} on ${url}: ${res.status} ${message}`, res.status, parsed);
  }
  return parsed as T;
}

interface Header {
  cluster_id?: string;
  member_id?: string;
  revision?: string;
  raft_term?: string;
}

export interface EtcdStatus {
  memberId: string;
  /** "0" while there is no leader. */
  leader: string;
  raftTerm: string;
  version: string;
  revision: string;
}

export async function etcdStatus(url: string, timeoutMs = 2_000): Promise<EtcdStatus> {
  const r = await gateway<{ header?: Header; leader?: string; raftTerm?: string; version?: string }>(url, "/v3/maintenance/status", {}, timeoutMs);
  return {
    memberId: r.header?.member_id ?? "0",
    leader: r.leader ?? "0",
    raftTerm: r.raftTerm ?? "0",
    version: r.version ?? "",
    revision: r.header?.revision ?? "0",
  };
}

/** Puts a key (attached to a lease when given); resolves to the revision of the put. */
export async function etcdPut(url: string, key: string, value: string, opts: { lease?: string; timeoutMs?: number } = {}): Promise<number> {
  const r = await gateway<{ header?: Header }>(
    url,
    "/v3/kv/put",
    { key: b64(key), value: b64(value), ...(opts.lease !== undefined ? { lease: opts.lease } : {}) },
    opts.timeoutMs,
  );
  return Number(r.header?.revision ?? 0);
}

export interface EtcdKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** "0" when the key has no lease. */
  lease: string;
}

/** Reads one key, or every key under a prefix ({ prefix: true }); `revision` is the store revision of the read. */
export async function etcdRange(
  url: string,
  key: string,
  opts: { prefix?: boolean; timeoutMs?: number; serializable?: boolean } = {},
): Promise<{ kvs: EtcdKv[]; revision: number }> {
  const r = await gateway<{ header?: Header; kvs?: { key: string; value?: string; create_revision?: string; mod_revision?: string; lease?: string }[] }>(
    url,
    "/v3/kv/range",
    { key: b64(key), ...(opts.prefix === true ? { range_end: prefixEnd(key) } : {}), ...(opts.serializable === true ? { serializable: true } : {}) },
    opts.timeoutMs,
  );
  return {
    revision: Number(r.header?.revision ?? 0),
    kvs: (r.kvs ?? []).map((kv) => ({
      key: unb64(kv.key),
      value: unb64(kv.value ?? ""),
      createRevision: Number(kv.create_revision ?? 0),
      modRevision: Number(kv.mod_revision ?? 0),
      lease: kv.lease ?? "0",
    })),
  };
}

export async function etcdGet(url: string, key: string, opts: { timeoutMs?: number } = {}): Promise<string | undefined> {
  return (await etcdRange(url, key, opts)).kvs[0]?.value;
}

/** Grants a lease; resolves to its id (a decimal string). */
export async function leaseGrant(url: string, ttlSeconds: number, timeoutMs?: number): Promise<string> {
  const r = await gateway<{ ID?: string; error?: string }>(url, "/v3/lease/grant", { TTL: ttlSeconds }, timeoutMs);
  if (r.ID === undefined) throw new Error(`lease grant failed: ${JSON.stringify(r)}`);
  return r.ID;
}

/** Remaining TTL of a lease in seconds (-1 once it has expired). */
export async function leaseTtl(url: string, id: string, timeoutMs?: number): Promise<number> {
  const r = await gateway<{ TTL?: string }>(url, "/v3/lease/timetolive", { ID: id }, timeoutMs);
  return Number(r.TTL ?? -1);
}

/** True if a process with this pid exists (signal 0 probe). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
