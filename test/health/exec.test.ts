// The exec kind: real commands (node, sh) that exit 0, 1 or 2 or hang; off without --checks-allow-exec, and never
// through an open API.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { execKind } from "../../src/health/kinds/exec.js";
import { api, startTestServer } from "../helpers.js";

const TOKEN = "exec-admin-token-1234";
const node = process.execPath;
const exits = (code: number) => [node, "-e", `console.log("said ${code}"); process.exit(${code})`];

describe("exec checks are refused", () => {
  it("without --checks-allow-exec", async () => {
    const app = await startTestServer();
    const r = await api(app.url, "PUT", "/v1/services/x-1", { name: "x", address: "127.0.0.1", port: 1, checks: [{ kind: "exec", command: exits(0) }] });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("checks.0.kind: exec checks are off: start the server with --checks-allow-exec");
    await app.stop();
  });

  it("through an API without --admin-token, even with the flag", async () => {
    const app = await startTestServer({ checksAllowExec: true });
    const r = await api(app.url, "PUT", "/v1/services/x-1", { name: "x", address: "127.0.0.1", port: 1, checks: [{ kind: "exec", command: exits(0) }] });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("need --admin-token");
    const bulk = await api(app.url, "POST", "/v1/services/bulk", { register: [{ id: "x-2", name: "x", address: "127.0.0.1", port: 1, checks: [{ kind: "exec", command: exits(0) }] }] });
    expect(bulk.status).toBe(400);
    expect(bulk.body.error.items[0].message).toContain("need --admin-token");
    const consul = await api(app.url, "PUT", "/v1/agent/service/register", { Name: "x", ID: "x-3", Address: "127.0.0.1", Port: 1, Check: { Args: exits(0), Interval: "10s" } });
    expect(consul.status).toBe(400);
    expect(consul.body.error.message).toContain("Check.Args: exec checks through the API need --admin-token");
    expect((await api(app.url, "GET", "/v1/services?name=x")).body.count).toBe(0);
    await app.stop();
  });

  it("from container labels, always", () => {
    const options = execKind.options.parse({ command: ["true"] });
    expect(execKind.refusal!(options, { origin: "docker", allowExec: true, authenticatedApi: true })?.message).toContain("never taken from container labels");
    expect(execKind.refusal!(options, { origin: "file", allowExec: true, authenticatedApi: false })).toBeUndefined();
  });
});

describe("exec checks, allowed", () => {
  let app: ServerHandle;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const register = (id: string, command: string[], extra: Record<string, unknown> = {}) =>
    api(app.url, "PUT", `/v1/services/${id}`, { name: "job", address: "127.0.0.1", port: 1, checks: [{ kind: "exec", command, ...extra }] }, auth);
  const checkOf = async (id: string) => {
    await app.discovery.checker.settled();
    return (await api(app.url, "GET", `/v1/services/${id}`)).body.checks[0] as { status: string; output: string };
  };
  beforeAll(async () => {
    app = await startTestServer({ checksAllowExec: true, adminToken: TOKEN, checkTimeout: 2_000 });
  });
  afterAll(() => app.stop());

  it("maps exit 0, 1 and 2 to healthy, degraded and unhealthy, with the output", async () => {
    for (const [code, status] of [[0, "healthy"], [1, "degraded"], [2, "unhealthy"]] as const) {
      expect((await register(`e-${code}`, exits(code))).status).toBe(201);
      expect(await checkOf(`e-${code}`)).toMatchObject({ status, output: `exit ${code}: said ${code}` });
    }
  });

  it("kills a command that hangs at the timeout, with what it started", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-exec-"));
    const pidFile = join(dir, "pid");
    // A shell that starts a child which would outlive a kill of the shell alone.
    await register("e-hang", ["/bin/sh", "-c", `sleep 30 & echo $! > ${pidFile}; wait`], { timeout: 300 });
    const t0 = performance.now();
    expect(await checkOf("e-hang")).toMatchObject({ status: "unhealthy", output: "exec /bin/sh: timed out after 300 ms" });
    expect(performance.now() - t0).toBeLessThan(1_500);
    const pid = Number(readFileSync(pidFile, "utf8"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ")).toBe(false);
  });

  it("gives the command PATH only from the server's environment", async () => {
    process.env.HD_TEST_SECRET = "do-not-pass-me";
    await register("e-env", [node, "-e", "console.log(Object.keys(process.env).sort().join(','))"]);
    const c = await checkOf("e-env");
    delete process.env.HD_TEST_SECRET;
    expect(c.output).toBe("exit 0: PATH");
  });

  it("reports a program that does not exist", async () => {
    await register("e-none", ["/nonexistent/check"]);
    expect(await checkOf("e-none")).toMatchObject({ status: "unhealthy", output: expect.stringContaining("ENOENT") });
  });

  it("takes exec checks from a services file without the token", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-exec-files-"));
    writeFileSync(join(dir, "jobs.json"), JSON.stringify({ id: "f-1", name: "backup", address: "127.0.0.1", port: 1, checks: [{ kind: "exec", command: exits(0) }] }));
    const own = await startTestServer({ checksAllowExec: true, servicesDir: dir });
    await own.discovery.checker.settled();
    expect((await api(own.url, "GET", "/v1/services/f-1")).body).toMatchObject({ healthStatus: "healthy", source: "file" });
    await own.stop();
  });
});
