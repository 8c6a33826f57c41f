// dnsmasq and unbound (Debian 12's) in front of the built server, configured by examples/dnsmasq/ and
// examples/unbound/ themselves: the test only points them at this run's ports. Queries go through them with
// node:dns and dig; the built server runs with short TTLs (service 1 s, negative 2 s) so that caching can be
// measured quickly.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promises as dns } from "node:dns";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { api, closedPort } from "../helpers.js";
import { root, startBuiltServer, type BuiltServer } from "./built-server.js";

const SERVICE_TTL = 1;
const NEGATIVE_TTL = 2;
/**
 * Slack on top of a TTL: resolvers count in whole seconds and unbound still serves an entry during its last
 * second (with TTL 0), so an entry lives up to TTL + 1 s there; plus our polling on a loaded machine.
 */
const MARGIN_MS = 2_000;
/** What a DNS answer (not a socket error) looks like through node:dns. */
const DNS_ERRORS = ["ENOTFOUND", "ENODATA", "ESERVFAIL", "EREFUSED"];

let server: BuiltServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hd-e2e-resolvers-"));
  server = await startBuiltServer({ HD_DNS_TTL: String(SERVICE_TTL), HD_DNS_NEGATIVE_TTL: String(NEGATIVE_TTL) });
});
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Replaces exactly one match, so a changed example fails here instead of testing something else. */
function substitute(file: string, text: string, pattern: RegExp, replacement: string): string {
  const count = [...text.matchAll(new RegExp(pattern.source, `${pattern.flags.replace("g", "")}g`))].length;
  if (count !== 1) throw new Error(`${file}: expected one match of ${pattern}, found ${count}`);
  return text.replace(pattern, replacement);
}

const example = (path: string) => readFileSync(join(root, path), "utf8");

// ---- the resolvers, each from its example file ------------------------------------------------------------

interface Running {
  port: number;
  output: () => string;
  stop(): Promise<void>;
}

interface ResolverKind {
  name: "dnsmasq" | "unbound";
  /** The example's directives, by name, that a test drops one at a time to show each one is needed. */
  directives: Record<string, RegExp>;
  start(opts?: { drop?: RegExp }): Promise<Running>;
}

async function run(command: string, args: string[], port: number): Promise<Running> {
  const child: ChildProcess = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running: Running = {
    port,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
  // Ready when it answers anything for `localhost` (a name none of the example's lines is about).
  const end = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}:\n${out}`);
    const r = await lookup(port, "localhost", "A", 500);
    if (!("error" in r) || DNS_ERRORS.includes(r.error)) break;
    if (Date.now() > end) {
      await running.stop();
      throw new Error(`${command} did not answer on port ${port}:\n${out}`);
    }
    await sleep(100);
  }
  return running;
}

const dnsmasq: ResolverKind = {
  name: "dnsmasq",
  directives: { server: /^server=\/home\.arpa\/.*$/m, "rebind-domain-ok": /^rebind-domain-ok=.*$/m },
  async start({ drop } = {}) {
    const file = "examples/dnsmasq/homelab-discovery.conf";
    let conf = substitute(file, example(file), /^server=\/home\.arpa\/127\.0\.0\.1#8600$/m, `server=/home.arpa/127.0.0.1#${server.dnsPort}`);
    if (drop) conf = substitute(file, conf, drop, "");
    const confFile = join(dir, `dnsmasq-${Date.now()}.conf`);
    writeFileSync(confFile, conf);
    const port = await closedPort();
    const args = [
      "-k", // foreground, no daemon
      `--conf-file=${confFile}`,
      "--no-resolv", // no upstream for other names
      "--no-hosts",
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      `--port=${port}`,
      "--pid-file=",
      "--log-facility=-",
      // Rebind protection, as Pi-hole and many routers have it: the example's rebind-domain-ok must let our
      // 127.0.0.x instances through.
      "--stop-dns-rebind",
    ];
    return run("dnsmasq", args, port);
  },
};

const unbound: ResolverKind = {
  name: "unbound",
  directives: {
    "local-zone": /^\s*local-zone: .*$/m,
    "domain-insecure": /^\s*domain-insecure: .*$/m,
    "do-not-query-localhost": /^\s*do-not-query-localhost: .*$/m,
    "private-domain": /^\s*private-domain: .*$/m,
  },
  async start({ drop } = {}) {
    const file = "examples/unbound/homelab-discovery.conf";
    let conf = substitute(file, example(file), /^(\s*stub-addr: )127\.0\.0\.1@8600$/m, `$1127.0.0.1@${server.dnsPort}`);
    if (drop) conf = substitute(file, conf, drop, "");
    const port = await closedPort();
    const nowhere = await closedPort();
    // What the packaged unbound.conf provides, in a form that runs unprivileged in the foreground, plus two
    // settings that make the example's lines matter: a root trust anchor (Debian's default; domain-insecure
    // must exempt home.arpa) and loopback as a private address (private-domain must allow it). The root
    // itself is a closed loopback port, so nothing leaves the machine.
    const preamble = `server:
    interface: 127.0.0.1@${port}
    username: ""
    chroot: ""
    directory: "${dir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    trust-anchor: ". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
    private-address: 127.0.0.0/8
stub-zone:
    name: "."
    stub-addr: 127.0.0.1@${nowhere}
`;
    const confFile = join(dir, `unbound-${Date.now()}.conf`);
    writeFileSync(confFile, `${preamble}\n${conf}`);
    await promisify(execFile)("unbound-checkconf", [confFile]);
    return run("unbound", ["-d", "-c", confFile], port);
  },
};

// ---- queries ------------------------------------------------------------------------------------------------

type Result<T> = { ok: T } | { error: string };

/** One query on a fresh node:dns Resolver (c-ares keeps no cache between channels). */
async function lookup(port: number, name: string, type: "A" | "SRV", timeout = 2_000): Promise<Result<unknown>> {
  const resolver = new dns.Resolver({ timeout, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  try {
    if (type === "A") return { ok: [...(await resolver.resolve4(name))].sort() };
    const records = await resolver.resolveSrv(name);
    return { ok: records.map((r) => `${r.priority} ${r.weight} ${r.port} ${r.name}`).sort() };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? String(err) };
  } finally {
    resolver.cancel();
  }
}

async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)("dig", ["@127.0.0.1", "-p", String(port), "+time=2", "+tries=1", ...args], { encoding: "utf8" });
  return stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `probe` returns `want` (deep-equal), and returns how long that took from `since`. */
async function within(since: number, limitMs: number, what: string, probe: () => Promise<unknown>, want: unknown): Promise<number> {
  let last: unknown;
  for (;;) {
    last = await probe();
    const elapsed = Date.now() - since;
    if (JSON.stringify(last) === JSON.stringify(want) && elapsed <= limitMs) return elapsed;
    if (elapsed > limitMs) throw new Error(`${what}: still ${JSON.stringify(last)} after ${elapsed} ms (limit ${limitMs} ms, want ${JSON.stringify(want)})`);
    await sleep(100);
  }
}

const register = (id: string, name: string, address: string, port = 8080) =>
  api(server.url, "PUT", `/v1/services/${id}`, { name, address, port });
const deregister = (id: string) => api(server.url, "DELETE", `/v1/services/${id}`);

// ---- the tests --------------------------------------------------------------------------------------------

describe.each([dnsmasq, unbound])("$name with its example config in front of the built server", (kind) => {
  let resolver: Running | undefined;
  const p = kind.name; // service names per resolver, so the two never share cache state
  const a = (name: string) => lookup(resolver!.port, name, "A");

  beforeAll(async () => {
    resolver = await kind.start();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") console.error(`${kind.name} output:\n${resolver?.output()}`);
  });
  afterAll(async () => {
    await resolver?.stop();
  });

  it("returns our A and SRV answers", async () => {
    expect((await register(`${p}-web-1`, `${p}-web`, "127.0.0.11", 8080)).status).toBe(201);
    expect((await register(`${p}-web-2`, `${p}-web`, "127.0.0.12", 8081)).status).toBe(201);
    expect(await a(`${p}-web.service.home.arpa`)).toEqual({ ok: ["127.0.0.11", "127.0.0.12"] });
    expect(await lookup(resolver!.port, `_${p}-web._tcp.service.home.arpa`, "SRV")).toEqual({
      ok: ["1 2560 8080 7f00000b.addr.home.arpa", "1 2560 8081 7f00000c.addr.home.arpa"],
    });
    expect(await a("7f00000b.addr.home.arpa")).toEqual({ ok: ["127.0.0.11"] }); // an SRV target resolves too

    const out = await dig(resolver!.port, `_${p}-web._tcp.service.home.arpa`, "SRV");
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/flags: qr[a-z ]* rd ra;/); // a recursive resolver answered
    expect((await dig(resolver!.port, "+short", `${p}-web.service.home.arpa`)).trim().split("\n").sort()).toEqual(["127.0.0.11", "127.0.0.12"]);
    const nx = await dig(resolver!.port, `nothing-${p}.service.home.arpa`);
    expect(nx).toMatch(/status: NXDOMAIN/);
    // our SOA, its TTL (counting down in a cache) at most our negative TTL, its minimum our negative TTL
    const soa = /^home\.arpa\.\s+(\d+)\s+IN\s+SOA\s+ns\.home\.arpa\. .* (\d+)$/m.exec(nx);
    expect(Number(soa?.[1])).toBeLessThanOrEqual(NEGATIVE_TTL);
    expect(Number(soa?.[2])).toBe(NEGATIVE_TTL);
  });

  it(`caches NXDOMAIN no longer than our negative TTL (${NEGATIVE_TTL} s)`, async () => {
    const fqdn = `${p}-late.service.home.arpa`;
    const asked = Date.now();
    expect(await a(fqdn)).toEqual({ error: "ENOTFOUND" }); // NXDOMAIN, now in the resolver's cache
    expect((await register(`${p}-late-1`, `${p}-late`, "127.0.0.31")).status).toBe(201);
    const again = await a(fqdn);
    // Still the cached NXDOMAIN while its TTL runs (checked only when the machine was quick enough to tell).
    if (Date.now() - asked < 1_000) expect(again).toEqual({ error: "ENOTFOUND" });
    const took = await within(asked, NEGATIVE_TTL * 1000 + MARGIN_MS, `${fqdn} after registration`, () => a(fqdn), { ok: ["127.0.0.31"] });
    console.info(`${kind.name}: a registered name resolved ${took} ms after its NXDOMAIN was cached`);
  });

  it(`follows a deregistration within our service TTL (${SERVICE_TTL} s)`, async () => {
    const fqdn = `${p}-set.service.home.arpa`;
    expect((await register(`${p}-set-1`, `${p}-set`, "127.0.0.41")).status).toBe(201);
    expect((await register(`${p}-set-2`, `${p}-set`, "127.0.0.42")).status).toBe(201);
    expect(await a(fqdn)).toEqual({ ok: ["127.0.0.41", "127.0.0.42"] }); // cached for 1 s
    let since = Date.now();
    expect((await deregister(`${p}-set-2`)).status).toBeLessThan(300);
    const took = await within(since, SERVICE_TTL * 1000 + MARGIN_MS, `${fqdn} after deregistering one`, () => a(fqdn), { ok: ["127.0.0.41"] });
    // and the last one: the name is gone
    since = Date.now();
    expect((await deregister(`${p}-set-1`)).status).toBeLessThan(300);
    const gone = await within(since, SERVICE_TTL * 1000 + MARGIN_MS, `${fqdn} after deregistering all`, () => a(fqdn), { error: "ENOTFOUND" });
    console.info(`${kind.name}: deregistrations visible after ${took} ms and ${gone} ms`);
  });

  it("needs every line of the example", async () => {
    expect((await register(`${p}-need-1`, `${p}-need`, "127.0.0.51")).status).toBe(201);
    const fqdn = `${p}-need.service.home.arpa`;
    expect(await a(fqdn)).toEqual({ ok: ["127.0.0.51"] });
    const seen: string[] = [];
    for (const [directive, drop] of Object.entries(kind.directives)) {
      const broken = await kind.start({ drop });
      try {
        const r = await lookup(broken.port, fqdn, "A", 1_500);
        seen.push(`without ${directive}: ${"error" in r ? r.error : JSON.stringify(r.ok)}`);
        // An error answer (or, unbound without domain-insecure, a validator stuck on the unreachable root).
        expect([...DNS_ERRORS, "ETIMEOUT"], `${kind.name} without ${directive}: ${JSON.stringify(r)}`).toContain("error" in r ? r.error : "answered");
      } finally {
        await broken.stop();
      }
    }
    console.info(`${kind.name}: ${seen.join("; ")}`);
  });
});
