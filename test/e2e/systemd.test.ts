// The systemd unit a user copies (examples/systemd/homelab-discovery.service), checked offline: no running systemd is
// needed. `systemd-analyze verify` loads the file as the manager would (unknown keys, values it cannot parse, an
// ExecStart= that cannot be run); `systemd-analyze security --offline` scores its sandbox. Then the built server run
// the way the unit runs it (its ExecStart= arguments and Environment=, with the variables StateDirectory= and
// ConfigurationDirectory= set) keeps its data and reads its zones and services files there, whatever its working
// directory.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { Resolver } from "node:dns/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { api } from "../helpers.js";
import { root } from "./built-server.js";

const UNIT = "homelab-discovery.service";
const shipped = readFileSync(join(root, "examples/systemd", UNIT), "utf8");
const SHIPPED_BIN = "/usr/local/bin/homelab-discovery";
const DROP_IN = "lan-tls.conf";
const dropIn = readFileSync(join(root, "examples/systemd", DROP_IN), "utf8");

const work = mkdtempSync(join(tmpdir(), "hd-systemd-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * The unit as `npm install -g` then the unit's own install lines would leave it, in a temp dir: verify checks that
 * ExecStart='s binary exists and is executable, so the unit's /usr/local/bin/homelab-discovery is rewritten to
 * <tmp>/bin/homelab-discovery, an executable that runs the built dist/src/main.js with node (what npm's bin link to
 * the package's dist/src/main.js does). Everything else in the unit is as shipped.
 */
function install(text: string, name: string, drop?: string): { unit: string; bin: string } {
  const dir = join(work, name);
  mkdirSync(join(dir, "bin"), { recursive: true });
  const bin = join(dir, "bin", "homelab-discovery");
  writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${join(root, "dist/src/main.js")}' "$@"\n`, { mode: 0o755 });
  const unit = join(dir, UNIT);
  writeFileSync(unit, text.replaceAll(`ExecStart=${SHIPPED_BIN}`, `ExecStart=${bin}`));
  // A drop-in beside it, in <unit>.d/, where verify finds it (the unit's directory joins the search path).
  if (drop !== undefined) {
    mkdirSync(join(dir, `${UNIT}.d`), { recursive: true });
    writeFileSync(join(dir, `${UNIT}.d`, DROP_IN), drop.replaceAll(`ExecStart=${SHIPPED_BIN}`, `ExecStart=${bin}`));
  }
  return { unit, bin };
}

/**
 * systemd-analyze verify: its exit status and the warnings that name the unit. Some problems (a Type= it cannot
 * parse) are only a warning and exit 0, so both count. --recursive-errors=no: the host's own units the unit pulls in
 * (network-online.target, multi-user.target) are not ours to judge.
 */
function verify(unit: string): { status: number | null; warnings: string[]; stderr: string } {
  const r = spawnSync("systemd-analyze", ["verify", "--man=no", "--recursive-errors=no", unit], { encoding: "utf8" });
  const warnings = `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.includes("homelab-discovery"));
  return { status: r.status, warnings, stderr: r.stderr };
}

/** The unit's settings, key -> values in order (a key may repeat: Environment=). */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe("the systemd unit", () => {
  const { unit } = install(shipped, "shipped");

  it("passes systemd-analyze verify: exit 0, no warning about the unit", () => {
    expect(shipped).toContain(`ExecStart=${SHIPPED_BIN} `); // the rewrite above took
    const r = verify(unit);
    expect(r.warnings, r.stderr).toEqual([]);
    expect(r.status, r.stderr).toBe(0);
  });

  it("passes verify with the LAN-over-HTTPS drop-in, which verify reads (a misspelt key in it is caught)", () => {
    const r = verify(install(shipped, "with-drop-in", dropIn).unit);
    expect(r.warnings, r.stderr).toEqual([]);
    expect(r.status, r.stderr).toBe(0);
    const broken = verify(install(shipped, "broken-drop-in", dropIn.replace("LoadCredential=tls-key", "LoadCredentiall=tls-key")).unit);
    expect(broken.warnings.join("\n")).toMatch(/Unknown key 'LoadCredentiall'/);
  });

  it("verify catches a broken unit (so the check above means something)", () => {
    const broken: Array<[string, string, RegExp]> = [
      ["a misspelt key", shipped.replace(/^ProtectSystem=/m, "ProtectSytem="), /Unknown key 'ProtectSytem'/],
      ["a value it cannot parse", shipped.replace(/^ProtectSystem=strict/m, "ProtectSystem=strcit"), /protect system value/],
      // Only a warning, exit status 0: caught by the warnings.
      ["a Type= it does not know", shipped.replace(/^Type=exec/m, "Type=exce"), /service type/],
      ["an ExecStart= binary that is not there", shipped.replace(`ExecStart=${SHIPPED_BIN}`, `ExecStart=${join(work, "missing")}`), /is not executable/],
    ];
    for (const [what, text, message] of broken) {
      const r = verify(install(text, what.replaceAll(" ", "-")).unit);
      expect(r.warnings.join("\n"), what).toMatch(message);
      expect(r.warnings.length > 0 || r.status !== 0, what).toBe(true);
    }
  });

  it("is sandboxed: systemd-analyze security --offline scores it 2.0 or less, with the options the issue names", () => {
    // --threshold is in tenths: exit status 1 above 2.0 ("OK"; the shipped unit scores 1.9). What is left is
    // exposure the server needs: IP and netlink sockets, the host's network, the one capability, JIT memory.
    const r = spawnSync("systemd-analyze", ["security", "--offline=yes", "--threshold=20", "--json=short", unit], { encoding: "utf8" });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    const checks = new Map((JSON.parse(r.stdout) as Array<{ json_field: string; set: boolean; description: string }>).map((c) => [c.json_field, c]));
    for (const field of ["UserOrDynamicUser", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "CapabilityBoundingSet_CAP_SYS_ADMIN", "RestrictSUIDSGID"]) {
      expect(checks.get(field)?.set, field).toBe(true);
    }
    expect(checks.get("ProtectSystem")?.description).toMatch(/strict/);
    // What security does not score (or scores as exposure, the capability), read from the unit itself.
    const s = settings(shipped);
    expect(s.get("DynamicUser")).toEqual(["yes"]);
    expect(s.get("StateDirectory")).toEqual(["homelab-discovery"]);
    expect(s.get("ConfigurationDirectory")).toEqual(["homelab-discovery"]);
    expect(s.get("ProtectSystem")).toEqual(["strict"]);
    expect(s.get("NoNewPrivileges")).toEqual(["yes"]);
    expect(s.get("AmbientCapabilities")).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(s.get("CapabilityBoundingSet")).toEqual(["CAP_NET_BIND_SERVICE"]);
  });
});

interface Running {
  url: string;
  dnsPort: number;
  stop(): Promise<void>;
}

/**
 * The built server started as the unit starts it: ExecStart='s command line (its binary, installed as above, and its
 * arguments), the unit's Environment= settings, and the directories systemd would give it, from a working directory
 * holding nothing. Only the listen addresses are changed, to loopback and free ports.
 */
async function startAsUnit(state: string, conf: string, cwd: string, withDropIn?: { credentials: string; paths: Record<string, string> }): Promise<Running> {
  const s = settings(shipped);
  const d = settings(withDropIn ? dropIn : "");
  // A drop-in's `ExecStart=` empties the list and the line after it replaces the unit's (systemd.unit(5)); systemd
  // expands ${CREDENTIALS_DIRECTORY} in it; its Environment= lines come after the unit's.
  const execStart = withDropIn ? d.get("ExecStart")!.filter((l) => l !== "").at(-1)! : s.get("ExecStart")![0]!;
  const expanded = withDropIn ? Object.entries(withDropIn.paths).reduce((line, [from, to]) => line.replaceAll(from, to), execStart.replaceAll("${CREDENTIALS_DIRECTORY}", withDropIn.credentials)) : execStart;
  const [, ...args] = expanded.split(/\s+/);
  const envOf = (lines: string[] | undefined) => Object.fromEntries((lines ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  const unitEnv = envOf(s.get("Environment"));
  expect(Object.keys(unitEnv)).toEqual(["HD_DNS_LISTEN", "HD_HTTP_LISTEN"]);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("HD_")));
  const child: ChildProcess = spawn(install(shipped, "run").bin, args, {
    cwd,
    env: { ...clean, ...unitEnv, ...envOf(d.get("Environment")), HD_DNS_LISTEN: "127.0.0.1:0", HD_HTTP_LISTEN: "127.0.0.1:0", STATE_DIRECTORY: state, CONFIGURATION_DIRECTORY: conf, ...(withDropIn ? { CREDENTIALS_DIRECTORY: withDropIn.credentials } : {}) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 15_000;
  while (!out.includes("HTTP API listening")) {
    if (Date.now() > end || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`server did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const lines = out.trim().split("\n").map((l) => JSON.parse(l) as { msg: string; url?: string; address?: string });
  return {
    url: lines.find((l) => l.msg === "HTTP API listening")!.url!,
    dnsPort: Number(lines.find((l) => l.msg === "DNS listening")!.address!.split(":").pop()),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

describe("the built server run as the unit runs it", () => {
  it("keeps its data in $STATE_DIRECTORY and reads zones/ and services.d/ under $CONFIGURATION_DIRECTORY", async () => {
    const state = join(work, "var-lib");
    const conf = join(work, "etc");
    const cwd = join(work, "cwd");
    for (const d of [state, join(conf, "zones"), join(conf, "services.d"), cwd]) mkdirSync(d, { recursive: true });
    writeFileSync(join(conf, "zones", "home.arpa.zone"), "$ORIGIN home.arpa.\n@ IN SOA ns.home.arpa. hostmaster.home.arpa. 1 3600 600 86400 5\n  IN NS ns.home.arpa.\nprinter IN A 192.168.1.30\n");
    copyFileSync(join(root, "examples/services.d/nas.json"), join(conf, "services.d", "nas.json"));

    let server = await startAsUnit(state, conf, cwd);
    try {
      const resolver = new Resolver({ timeout: 1_000, tries: 2 });
      resolver.setServers([`127.0.0.1:${server.dnsPort}`]);
      expect(await resolver.resolve4("printer.home.arpa")).toEqual(["192.168.1.30"]); // zones/
      const nas = await api(server.url, "GET", "/v1/services/nas-smb"); // services.d/
      expect(nas.status).toBe(200);
      expect(nas.body).toMatchObject({ name: "nas", source: "file" });
      expect((await api(server.url, "PUT", "/v1/services/web-1", { name: "web", address: "10.0.0.1", port: 8080 })).status).toBe(201);
      await server.stop();
      expect(readdirSync(state).length).toBeGreaterThan(0);
      expect(readdirSync(cwd)).toEqual([]); // no ./data, nothing read from ./zones

      server = await startAsUnit(state, conf, cwd);
      const web = await api(server.url, "GET", "/v1/services/web-1");
      expect(web.status).toBe(200);
      expect(web.body).toMatchObject({ name: "web", address: "10.0.0.1", port: 8080 });
    } finally {
      await server.stop();
    }
  });
});

describe("the built server run as the unit with the LAN-over-HTTPS drop-in runs it", () => {
  it("serves HTTPS with the certificate and the credentials' key, and takes the credentials' admin token", async () => {
    const dir = join(work, "drop-in-run");
    const [state, conf, cwd, credentials] = ["state", "etc", "cwd", "credentials"].map((d) => join(dir, d));
    for (const d of [state, conf, cwd, credentials!]) mkdirSync(d!, { recursive: true });
    // The certificate where the drop-in says (/etc/homelab-discovery/api.pem: here a temp copy), the key and the
    // token where LoadCredential= would put them.
    const ssl = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(credentials!, "tls-key"), "-out", join(conf!, "api.pem"), "-days", "1", "-subj", "/CN=discovery", "-addext", "subjectAltName=IP:127.0.0.1"], { encoding: "utf8" });
    expect(ssl.status, ssl.stderr).toBe(0);
    writeFileSync(join(credentials!, "admin-token"), "drop-in-admin-token\n", { mode: 0o600 });
    const server = await startAsUnit(state!, conf!, cwd!, { credentials: credentials!, paths: { "/etc/homelab-discovery/api.pem": join(conf!, "api.pem") } });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
      const curl = (...args: string[]) => spawnSync("curl", ["-sS", "--cacert", join(conf!, "api.pem"), "-o", "/dev/null", "-w", "%{http_code}", ...args], { encoding: "utf8" }).stdout;
      expect(curl(`${server.url}/v1/status`)).toBe("200");
      const body = ["-X", "PUT", "-H", "content-type: application/json", "-d", JSON.stringify({ name: "web", address: "10.0.0.1", port: 8080 }), `${server.url}/v1/services/web-1`];
      expect(curl(...body)).toBe("401");
      expect(curl("-H", "Authorization: Bearer drop-in-admin-token", ...body)).toBe("201");
    } finally {
      await server.stop();
    }
  });
});
