// HAProxy (Debian haproxy 2.6) balancing over the SRV answers of the built server, configured by
// examples/haproxy/haproxy.cfg itself: the test only points it at this run's ports and temp dir. Assertions
// go through HAProxy's stats socket (`show servers state`) and through real requests to its frontend.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { api, closedPort, startPeer } from "../helpers.js";
import { root, startBuiltServer, type BuiltServer } from "./built-server.js";

const EXAMPLE = join(root, "examples/haproxy/haproxy.cfg");
const BACKEND = "web";
/** How long our registry may take to notice a change (two failed checks at a 1 s interval, on a busy machine). */
const DEADLINE_MS = 10_000;
/** How long HAProxy may take to follow the registry: the example's `timeout resolve 1s`, with slack. */
const FOLLOW_MS = 5_000;

/** Replaces exactly one match of `pattern`, so a changed example fails here instead of testing something else. */
function substitute(text: string, pattern: RegExp, replacement: string): string {
  const flags = pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`;
  const count = [...text.matchAll(new RegExp(pattern.source, flags))].length;
  if (count !== 1) throw new Error(`examples/haproxy/haproxy.cfg: expected one match of ${pattern}, found ${count}`);
  return text.replace(pattern, replacement);
}

/**
 * The example with this run's nameserver port, frontend address and stats socket. `chroot`, `user` and `group`
 * go (they need root and a haproxy user), and so does `log /dev/log` (no syslog here; warnings go to stderr).
 */
function haproxyConfig(example: string, o: { dnsPort: number; frontendPort: number; socket: string }): string {
  let cfg = substitute(example, /^(\s*nameserver \S+ )127\.0\.0\.1:8600$/m, `$1127.0.0.1:${o.dnsPort}`);
  cfg = substitute(cfg, /^(\s*bind ):80$/m, `$1127.0.0.1:${o.frontendPort}`);
  cfg = substitute(cfg, /^(\s*stats socket )\/run\/haproxy\/admin\.sock /m, `$1${o.socket} `);
  for (const drop of [/^\s*chroot .*$/m, /^\s*user .*$/m, /^\s*group .*$/m, /^\s*log \/dev\/log .*$/m]) cfg = substitute(cfg, drop, "");
  return cfg;
}

type Row = Record<string, string>;

/** One command on the stats socket. */
function stats(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const c = connect(socket, () => c.end(`${command}\n`));
    c.setEncoding("utf8");
    c.on("data", (d: string) => (out += d));
    c.on("end", () => resolve(out));
    c.on("error", reject);
  });
}

/** `show servers state <backend>`: a version line, a `# col col ...` header, then one row per server slot. */
async function servers(socket: string): Promise<Row[]> {
  const lines = (await stats(socket, `show servers state ${BACKEND}`)).trim().split("\n");
  if (lines[0] !== "1" || !lines[1]?.startsWith("# ")) throw new Error(`unexpected show servers state output:\n${lines.join("\n")}`);
  const cols = lines[1].slice(2).split(" ");
  return lines.slice(2).map((line) => Object.fromEntries(line.split(" ").map((v, i) => [cols[i] ?? `col${i}`, v])));
}

/**
 * Slots taking traffic: an address, running (op state 2), and no maintenance or drain flag in the admin state
 * (0x01 forced, 0x02 inherited, 0x04 config, 0x08/0x10 drain, 0x20 resolution; 0x40 only says the FQDN came
 * from DNS).
 */
const inRotation = (rows: Row[]) =>
  rows.filter((r) => r.srv_addr !== "-" && r.srv_op_state === "2" && (Number(r.srv_admin_state) & 0x3f) === 0);
const rotationPorts = (rows: Row[]) => inRotation(rows).map((r) => Number(r.srv_port)).sort((a, b) => a - b);

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = DEADLINE_MS): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Peer {
  name: string;
  port: number;
  healthy: boolean;
  close(): Promise<void>;
}

let server: BuiltServer | undefined;
let haproxy: ChildProcess | undefined;
let haproxyOut = "";
let dir: string;
let socket: string;
let frontendPort: number;
const peers: Record<string, Peer> = {};

async function startNamedPeer(name: string): Promise<Peer> {
  const peer: Peer = { name, port: 0, healthy: true, close: async () => {} };
  const p = await startPeer((req, res) => {
    if (req.url === "/health") {
      res.statusCode = peer.healthy ? 200 : 500;
      res.end(peer.healthy ? "ok" : "failing");
    } else res.end(name); // traffic is answered whatever the health endpoint says
  });
  peer.port = p.port;
  peer.close = p.close;
  return peer;
}

/** Sends `n` requests through HAProxy, each on a new connection, and counts the answers by peer name. */
async function traffic(n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const key = await new Promise<string>((resolve) => {
      const req = request({ host: "127.0.0.1", port: frontendPort, path: "/", agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve(res.statusCode === 200 ? body : `status ${res.statusCode}`));
      });
      req.on("error", (err) => resolve(`error ${err.message}`));
      req.end();
    });
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const register = (p: Peer) =>
  api(server!.url, "PUT", `/v1/services/web-${p.name}`, {
    name: "web",
    address: "127.0.0.1",
    port: p.port,
    healthEndpoint: "/health",
    healthCheckInterval: 1000,
  });
const healthOf = async (p: Peer) => (await api(server!.url, "GET", `/v1/services/web-${p.name}`)).body.healthStatus as string;
const waitHealth = (p: Peer, status: string) => until(`web-${p.name} ${status} in the registry`, async () => (await healthOf(p)) === status);
const waitRotation = (what: string, expected: Peer[]) => {
  const want = expected.map((p) => p.port).sort((a, b) => a - b);
  return until(
    `HAProxy rotation = ${what} (${want.join(", ")})`,
    async () => {
      const ports = rotationPorts(await servers(socket));
      return ports.length === want.length && ports.every((p, i) => p === want[i]) ? ports : undefined;
    },
    FOLLOW_MS,
  );
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hd-e2e-haproxy-"));
  socket = join(dir, "haproxy.sock");
  for (const name of ["a", "b", "c"]) peers[name] = await startNamedPeer(name);
  server = await startBuiltServer();
  for (const p of [peers.a!, peers.b!]) expect((await register(p)).status).toBe(201);
  await waitHealth(peers.a!, "healthy");
  await waitHealth(peers.b!, "healthy");

  frontendPort = await closedPort();
  const cfgFile = join(dir, "haproxy.cfg");
  writeFileSync(cfgFile, haproxyConfig(readFileSync(EXAMPLE, "utf8"), { dnsPort: server.dnsPort, frontendPort, socket }));
  execFileSync("haproxy", ["-c", "-q", "-f", cfgFile]);
  const child = spawn("haproxy", ["-db", "-f", cfgFile], { stdio: ["ignore", "pipe", "pipe"] });
  haproxy = child;
  child.stdout!.on("data", (d: Buffer) => (haproxyOut += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (haproxyOut += d.toString()));
  const end = Date.now() + DEADLINE_MS;
  while (!(await stats(socket, "show info").catch(() => "")).includes("Name: HAProxy")) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`haproxy did not start (exit code ${child.exitCode}):\n${haproxyOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== "fail") return;
  const state = await stats(socket, `show servers state ${BACKEND}`).catch((err: Error) => err.message);
  console.error(`haproxy output:\n${haproxyOut}\nshow servers state:\n${state}\nserver log (tail):\n${server?.log().slice(-4000)}`);
});

afterAll(async () => {
  const child = haproxy;
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }
  await server?.stop().catch(() => {});
  for (const p of Object.values(peers)) await p.close().catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("HAProxy with examples/haproxy/haproxy.cfg over the built server's SRV records", () => {
  it("sends traffic to every healthy instance, with SRV weight 2560 as HAProxy weight 10", async () => {
    const { a, b } = peers as Record<string, Peer>;
    await until("HAProxy's first answer", async () => rotationPorts(await servers(socket)).length === 2);
    await waitRotation("a and b", [a!, b!]);
    const rows = inRotation(await servers(socket));
    expect(rows.map((r) => r.srv_addr)).toEqual(["127.0.0.1", "127.0.0.1"]); // two instances, one IP: allow-dup-ip
    expect(rows.map((r) => r.srv_uweight)).toEqual(["10", "10"]);
    const hits = await traffic(40);
    expect(Object.keys(hits).sort()).toEqual(["a", "b"]);
    expect(hits.a).toBeGreaterThanOrEqual(10);
    expect(hits.b).toBeGreaterThanOrEqual(10);
  });

  it("stops sending to an instance that turns unhealthy", async () => {
    const { a, b } = peers as Record<string, Peer>;
    const start = Date.now();
    b!.healthy = false;
    await waitHealth(b!, "unhealthy");
    const registry = Date.now() - start;
    await waitRotation("a", [a!]);
    console.info(`unhealthy: registry after ${registry} ms, HAProxy after ${Date.now() - start} ms`);
    expect(await traffic(20)).toEqual({ a: 20 });
    // The slot went into maintenance because the record left the answer (HAProxy's own TCP check still passes).
    const slot = (await servers(socket)).find((r) => r.srv_port === String(b!.port));
    expect(slot === undefined || (Number(slot.srv_admin_state) & 0x20) !== 0).toBe(true);
  });

  it("picks up a newly registered instance", async () => {
    const { a, c } = peers as Record<string, Peer>;
    const start = Date.now();
    expect((await register(c!)).status).toBe(201);
    await waitRotation("a and c", [a!, c!]);
    console.info(`registered: HAProxy after ${Date.now() - start} ms`);
    const hits = await traffic(30);
    expect(Object.keys(hits).sort()).toEqual(["a", "c"]);
  });

  it("drops a deregistered instance", async () => {
    const { a, c } = peers as Record<string, Peer>;
    const start = Date.now();
    expect((await api(server!.url, "DELETE", `/v1/services/web-${a!.name}`)).status).toBeLessThan(300);
    await waitRotation("c", [c!]);
    console.info(`deregistered: HAProxy after ${Date.now() - start} ms`);
    expect(await traffic(20)).toEqual({ c: 20 });
  });

  it("takes back an instance that recovers (checked on demand)", async () => {
    const { b, c } = peers as Record<string, Peer>;
    b!.healthy = true;
    const start = Date.now();
    // It is in backoff (rechecked after 2, 4, 8... intervals): run its check now, as an operator would.
    expect((await api(server!.url, "POST", `/v1/services/web-${b!.name}/check`)).status).toBe(200);
    await waitHealth(b!, "healthy");
    await waitRotation("b and c", [b!, c!]);
    console.info(`recovered: HAProxy after ${Date.now() - start} ms`);
    const hits = await traffic(30);
    expect(Object.keys(hits).sort()).toEqual(["b", "c"]);
  });

  it("empties the backend when no instance is healthy (an empty answer, after `hold other`)", async () => {
    const { b, c } = peers as Record<string, Peer>;
    const start = Date.now();
    b!.healthy = false;
    c!.healthy = false;
    await waitHealth(b!, "unhealthy");
    await waitHealth(c!, "unhealthy");
    const registry = Date.now() - start;
    // NOERROR with no record: HAProxy keeps the last answer for `hold other`, counted from its last valid one.
    await until("an empty HAProxy rotation", async () => rotationPorts(await servers(socket)).length === 0, 5_000 + DEADLINE_MS);
    console.info(`no healthy instance: registry after ${registry} ms, HAProxy emptied the backend after ${Date.now() - start} ms`);
    expect(await traffic(3)).toEqual({ "status 503": 3 });
    // and it refills when one recovers
    b!.healthy = true;
    expect((await api(server!.url, "POST", `/v1/services/web-${b!.name}/check`)).status).toBe(200);
    await waitRotation("b", [b!]);
    expect(await traffic(5)).toEqual({ b: 5 });
  });

  it("empties the backend once the service is gone (NXDOMAIN, after `hold nx`)", async () => {
    const start = Date.now();
    const r = await api(server!.url, "POST", "/v1/services/bulk", { deregister: ["web-b", "web-c"] });
    expect(r.status).toBe(200);
    await until("an empty HAProxy rotation", async () => rotationPorts(await servers(socket)).length === 0, 5_000 + DEADLINE_MS);
    const elapsed = Date.now() - start;
    console.info(`service gone: HAProxy emptied the backend after ${elapsed} ms`);
    expect(elapsed).toBeGreaterThanOrEqual(3_500); // the example's `hold nx 5s` kept the last answer meanwhile
    expect(await traffic(3)).toEqual({ "status 503": 3 });
  });
});

describe("HAProxy following a version-aware routing policy (issue 21)", () => {
  const registerVersion = (p: Peer, version: string) =>
    api(server!.url, "PUT", `/v1/services/web-${p.name}`, { name: "web", version, address: "127.0.0.1", port: p.port, healthEndpoint: "/health", healthCheckInterval: 1000 });
  const weights = async () => Object.fromEntries(inRotation(await servers(socket)).map((r) => [r.srv_port, r.srv_uweight]));

  it("splits traffic 90/10 between two versions by the SRV weights, and switches blue-green at once both ways", async () => {
    const { a, b, c } = peers as Record<string, Peer>;
    for (const p of [a!, b!, c!]) p.healthy = true;
    expect((await registerVersion(a!, "2.0.0")).status).toBe(201);
    expect((await registerVersion(b!, "2.1.0")).status).toBe(201);
    expect((await registerVersion(c!, "3.0.0")).status).toBe(201);
    for (const p of [a!, b!, c!]) await waitHealth(p, "healthy");
    const put = await api(server!.url, "PUT", "/v1/routing/web", { split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }] });
    expect(put.status).toBe(200);
    // SRV weights 11520, 11520 and 2560: HAProxy's (w+255)/256 makes them 45, 45 and 10.
    const want = { [a!.port]: "45", [b!.port]: "45", [c!.port]: "10" };
    await until("HAProxy weights 45/45/10", async () => JSON.stringify(await weights()) === JSON.stringify(want), 5_000 + DEADLINE_MS);
    // HAProxy's weighted round robin is deterministic per cycle of the weights' sum (100): over 500 requests the
    // canary's share is 10% to within the few requests a reload of the slots mid-run can shift (3 points).
    const hits = await traffic(500);
    console.info(`90/10 split through HAProxy: ${JSON.stringify(hits)}`);
    expect(Object.keys(hits).sort()).toEqual(["a", "b", "c"]);
    expect(Math.abs(hits.c! / 500 - 0.1)).toBeLessThanOrEqual(0.03);
    expect(Math.abs((hits.a! + hits.b!) / 500 - 0.9)).toBeLessThanOrEqual(0.03);

    // Blue-green: all of it to v3; dig and the API agree the moment the call returns, HAProxy at its next resolution.
    const start = Date.now();
    expect((await api(server!.url, "PUT", "/v1/routing/web", { split: [{ version: "^3", weight: 100 }] })).status).toBe(200);
    const srv = execFileSync("dig", ["@127.0.0.1", "-p", String(server!.dnsPort), "+short", "_web._tcp.service.home.arpa", "SRV"], { encoding: "utf8" });
    expect(srv.trim().split("\n").map((l) => Number(l.split(" ")[2]))).toEqual([c!.port]);
    const routed = await api(server!.url, "GET", "/v1/services?name=web&routed=true");
    expect(routed.body.services.map((e: { id: string }) => e.id)).toEqual(["web-c"]);
    await waitRotation("c only", [c!]);
    console.info(`blue-green to v3: HAProxy after ${Date.now() - start} ms`);
    expect(await traffic(20)).toEqual({ c: 20 });
    // And back: the old version stayed registered and checked.
    expect((await api(server!.url, "PUT", "/v1/routing/web", { split: [{ version: "^2", weight: 100 }] })).status).toBe(200);
    await waitRotation("a and b", [a!, b!]);
    const back = await traffic(20);
    expect(Object.keys(back).sort()).toEqual(["a", "b"]);
  });
});
