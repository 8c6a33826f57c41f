// The CLI as a user runs it: the built binary (node dist/src/main.js, `npm test` builds it first) spawned against
// a real server on loopback: every command, table and JSON output, a real terminal through script(1) when there
// is one, exit codes, completion scripts that bash accepts.
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, closedPort } from "../helpers.js";
import type { ServerHandle } from "../../src/app/server.js";

const MAIN = resolve(import.meta.dirname, "../../dist/src/main.js");
const TOKEN = "cli-test-token";
let server: ServerHandle;
let dir: string;

beforeAll(async () => {
  server = await startTestServer({ adminToken: TOKEN });
  dir = await mkdtemp(join(tmpdir(), "hd-cli-"));
});
afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH, HD_ADDR: server.url, HD_ADMIN_TOKEN: TOKEN, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

describe("cli", () => {
  it("register (flags and a YAML file), services, get, maint, check, deregister, status: JSON when piped, tables when asked", async () => {
    let r = await cli(["register", "--id", "web-1", "--name", "web", "--address", "10.0.0.1", "--port", "8080", "--tag", "prod", "--meta", "zone=eu", "--version", "1.2.0"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: "web-1", name: "web", tags: ["prod"], metadata: { zone: "eu" }, healthStatus: "healthy" });
    const file = join(dir, "db.yaml");
    await writeFile(file, "id: db-1\nname: db\naddress: 10.0.0.2\nport: 5432\nversion: 2.0.0\ntags: [primary]\n");
    r = await cli(["register", "--file", file, "--output", "table"]);
    expect(r).toMatchObject({ code: 0, stdout: "registered db-1 (db at 10.0.0.2:5432, healthy)\n" });

    r = await cli(["services"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ count: 2 });
    r = await cli(["services", "--name", "web", "--tag", "prod", "--version", "^1.2", "--health", "healthy", "--meta", "zone=eu", "--json"]);
    expect((JSON.parse(r.stdout) as { services: { id: string }[] }).services.map((s) => s.id)).toEqual(["web-1"]);
    r = await cli(["services", "--version", ">=2", "-o", "table"]);
    expect(r.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+VERSION\s+ADDRESS\s+PORT\s+NODE\s+HEALTH\s+TAGS$/);
    expect(r.stdout.split("\n")[1]).toMatch(/^db-1\s+db\s+2\.0\.0\s+10\.0\.0\.2\s+5432\s+test-node\s+healthy\s+primary$/);
    expect(r.stdout.trim().split("\n")).toHaveLength(2);

    r = await cli(["get", "web-1", "--output", "table"]);
    expect(r.stdout).toMatch(/^address\s+10\.0\.0\.1$/m);
    r = await cli(["get", "web-1"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: "web-1", port: 8080 });

    r = await cli(["maint", "on", "web-1", "--reason", "kernel update", "-o", "table"]);
    expect(r).toMatchObject({ code: 0, stdout: "web-1: maintenance on (kernel update)\n" });
    expect(server.discovery.registry.get("web-1")?.maintenance?.reason).toBe("kernel update");
    r = await cli(["services", "-o", "table", "--name", "web"]);
    expect(r.stdout).toContain("maintenance (kernel update)");
    r = await cli(["maint", "off", "web-1"]);
    expect(r.code).toBe(0);
    expect(server.discovery.registry.get("web-1")?.maintenance).toBeUndefined();

    r = await cli(["check", "web-1"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: "web-1", healthStatus: "healthy" });

    r = await cli(["status", "-o", "table"]);
    expect(r.stdout).toMatch(/^status\s+ok$/m);
    expect(JSON.parse((await cli(["status"])).stdout)).toMatchObject({ status: "ok", nodeId: "test-node" });

    r = await cli(["deregister", "db-1", "-o", "table"]);
    expect(r).toMatchObject({ code: 0, stdout: "deregistered db-1\n" });
    expect(server.discovery.registry.get("db-1")).toBeUndefined();
  });

  it("prints a table on a terminal (script(1)) and JSON into a pipe", async () => {
    if (spawnSync("script", ["--version"]).status !== 0) return; // util-linux is on Debian and in CI
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} services`;
    // Not spawnSync: it would block this process, and the server in it.
    const r = await new Promise<Run>((done) =>
      execFile("script", ["-q", "-e", "-c", cmd, "/dev/null"], { env: { PATH: process.env.PATH, HD_ADDR: server.url }, timeout: 20_000 }, (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr })),
    );
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\r/g, "")).toMatch(/^ID\s+NAME\s+VERSION/m);
    expect(JSON.parse((await cli(["services"])).stdout)).toHaveProperty("count");
  });

  it("exit codes: 2 usage, 3 not found, 1 refused by the server, 4 unreachable", async () => {
    let r = await cli(["get"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/expected one instance id/);
    r = await cli(["services", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--bogus'/);
    expect((await cli(["nonsense"])).code).toBe(2);
    expect((await cli(["register", "--name", "x"])).code).toBe(2);
    expect((await cli(["maint", "sideways", "web-1"])).code).toBe(2);
    expect((await cli(["services", "-o", "yaml"])).code).toBe(2);
    r = await cli(["get", "nope-1"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/service nope-1 is not registered/);
    expect((await cli(["deregister", "nope-1"])).code).toBe(3);
    expect((await cli(["check", "nope-1"])).code).toBe(3);
    r = await cli(["register", "--id", "bad-1", "--name", "Not A Label!", "--address", "10.0.0.3", "--port", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid service: name/);
    r = await cli(["deregister", "web-1"], { HD_ADMIN_TOKEN: "wrong-token" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/admin token/);
    expect(server.discovery.registry.get("web-1")).toBeDefined();
    r = await cli(["status"], { HD_ADDR: `127.0.0.1:${await closedPort()}` });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/cannot reach/);
  });

  it("snapshot save and restore through files", async () => {
    const file = join(dir, "backup.snap.json");
    let r = await cli(["snapshot", "save", file, "-o", "table"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^saved 1 instances to .* \(sha256 [0-9a-f]{64}\)$/m);
    await cli(["register", "--id", "tmp-1", "--name", "tmp", "--address", "10.0.0.9", "--port", "9"]);
    r = await cli(["snapshot", "restore", file]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ restored: 1, removed: 1 });
    expect(server.discovery.registry.get("tmp-1")).toBeUndefined();
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace("10.0.0.1", "10.0.0.7"));
    r = await cli(["snapshot", "restore", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/checksum mismatch/);
    expect(server.discovery.registry.get("web-1")?.address).toBe("10.0.0.1");
    expect((await cli(["snapshot", "restore", join(dir, "missing")])).code).toBe(2);
  });

  it("watch prints one line per change and ends cleanly on SIGINT", async () => {
    const child = spawn(process.execPath, [MAIN, "watch", "--name", "cache", "-o", "table"], { env: { PATH: process.env.PATH, HD_ADDR: server.url } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const until = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toMatch(re);
    };
    // Connected: the server has the stream's subscriber (events before it are not the watch's).
    const before = server.discovery.eventFeed.subscriberCount;
    for (let i = 0; i < 200 && server.discovery.eventFeed.subscriberCount === before; i++) await new Promise((r) => setTimeout(r, 50));
    await server.discovery.registerService({ id: "cache-1", name: "cache", address: "10.0.0.5", port: 6379 });
    await until(/registered\s+cache-1 \(cache 10\.0\.0\.5:6379\) new/);
    await server.discovery.setMaintenance("cache-1", { enable: true, reason: "resize" });
    await until(/maintenance\s+cache-1 .* on: resize/);
    await server.discovery.registerService({ id: "other-1", name: "other", address: "10.0.0.6", port: 1 });
    await server.discovery.deregisterService("cache-1");
    await until(/deregistered\s+cache-1/);
    expect(out).not.toContain("other-1");
    expect(out.trim().split("\n")).toHaveLength(3);
    const code = new Promise((r) => child.on("exit", (c) => r(c)));
    child.kill("SIGINT");
    expect(await code).toBe(0);
  });

  it("help per command, and completion scripts bash accepts", async () => {
    let r = await cli(["help"]);
    expect(r.stdout).toMatch(/Exit codes: 0 ok/);
    for (const command of ["services", "get", "register", "deregister", "maint", "check", "watch", "snapshot", "status"]) {
      r = await cli([command, "--help"]);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toMatch(new RegExp(`^Usage: homelab-discovery ${command}`));
    }
    r = await cli(["completion", "bash"]);
    const script = join(dir, "completion.bash");
    await writeFile(script, r.stdout);
    const bash = spawnSync("bash", ["-c", `source ${script};` + '  complete -p homelab-discovery; COMP_WORDS=(homelab-discovery sn); COMP_CWORD=1; _homelab_discovery; echo "${COMPREPLY[@]}"; COMP_WORDS=(homelab-discovery services --na); COMP_CWORD=2; _homelab_discovery; echo "${COMPREPLY[@]}"'], { encoding: "utf8" });
    expect(bash.stdout).toBe("complete -F _homelab_discovery homelab-discovery\nsnapshot\n--name\n");
    r = await cli(["completion", "zsh"]);
    expect(r.stdout).toMatch(/^#compdef homelab-discovery/);
    expect((await cli(["completion", "fish"])).code).toBe(2);
  });

  it("leaves the server's own command line alone", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--http-listen/);
    expect(r.stdout).toMatch(/homelab-discovery help/);
    expect((await cli(["serve", "--no-such-flag"])).code).toBe(2);
  });
});

describe("cli with scoped tokens", () => {
  it("reads HD_TOKEN (over HD_ADMIN_TOKEN) and --token, and exits 1 with the server's 401 or 403", async () => {
    const scoped = await startTestServer({ adminToken: "cli-admin-token", readToken: "cli-read-token" });
    const run = (args: string[], env: Record<string, string>) =>
      new Promise<Run>((done) => {
        execFile(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH, HD_ADDR: scoped.url, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
          done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
        });
      });
    try {
      let r = await run(["services"], {});
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("needs the read token");
      r = await run(["services"], { HD_TOKEN: "cli-read-token", HD_ADMIN_TOKEN: "wrong-token-1" });
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout)).toMatchObject({ count: 0 });
      r = await run(["register", "--id", "a-1", "--name", "a", "--address", "10.0.0.1", "--port", "80"], { HD_TOKEN: "cli-read-token" });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("the read token does not have the write scope");
      r = await run(["register", "--id", "a-1", "--name", "a", "--address", "10.0.0.1", "--port", "80", "--token", "cli-admin-token"], { HD_TOKEN: "cli-read-token" });
      expect(r.code).toBe(0);
      expect((await run(["services"], { HD_ADMIN_TOKEN: "cli-admin-token" })).code).toBe(0);
    } finally {
      await scoped.stop();
    }
  });
});
