// Debian's Prometheus with examples/prometheus/prometheus.yml, its SD URL pointed at the built server: its
// targets are exactly our healthy instances, labelled from tags and metadata; an unhealthy one leaves at the next
// refresh and a new one joins. The instances are HTTP servers on loopback that Prometheus really scrapes.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, closedPort, startPeer } from "../helpers.js";
import { startBuiltServer, type BuiltServer } from "./built-server.js";
import { instancesOf, untilTargets, type ScrapeTarget } from "./scrape-targets.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/prometheus/prometheus.yml", import.meta.url));
let server: BuiltServer;
let prometheus: ChildProcess;
let promUrl: string;
let dir: string;
const peers: Awaited<ReturnType<typeof startPeer>>[] = [];

const until = (what: string, ok: (t: ScrapeTarget[]) => boolean, ms?: number) => untilTargets(promUrl, what, ok, ms);
const instances = instancesOf;

beforeAll(async () => {
  server = await startBuiltServer();
  for (let i = 0; i < 3; i++) peers.push(await startPeer((_req, res) => res.end("up 1\n")));
  const register = (id: string, port: number, tags: string[]) => api(server.url, "PUT", `/v1/services/${id}`, { name: "exporter", address: "127.0.0.1", port, tags, ttl: 60_000, metadata: { team: "ops" } });
  await register("exp-1", peers[0]!.port, ["metrics", "prod"]);
  await register("exp-2", peers[1]!.port, ["metrics"]);
  await register("quiet", peers[2]!.port, ["prod"]); // no "metrics" tag: the example's keep rule drops it
  for (const id of ["exp-1", "exp-2", "quiet"]) await api(server.url, "PUT", `/v1/services/${id}/heartbeat`);
  dir = await mkdtemp(join(tmpdir(), "hd-prometheus-"));
  const config = (await readFile(EXAMPLE, "utf8"))
    .replace("http://127.0.0.1:8500", server.url)
    .replace("refresh_interval: 30s", "refresh_interval: 1s")
    .replace("scrape_interval: 15s", "scrape_interval: 1s");
  await writeFile(join(dir, "prometheus.yml"), config);
  const port = await closedPort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
});
afterAll(async () => {
  prometheus?.kill("SIGKILL");
  await server?.stop();
  for (const p of peers) await p.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("Prometheus http_sd_configs, as in examples/prometheus", () => {
  it("scrapes exactly our healthy instances that opt in, labelled from their tags and metadata", async () => {
    const t = await until("the two opted-in instances", (x) => x.length === 2 && x.every((y) => y.health === "up"));
    expect(instances(t)).toEqual([`127.0.0.1:${peers[0]!.port}`, `127.0.0.1:${peers[1]!.port}`].sort());
    const one = t.find((x) => x.labels.instance === `127.0.0.1:${peers[0]!.port}`)!;
    expect(one.labels).toMatchObject({ job: "homelab", service: "exporter", tags: ",metrics,prod,", team: "ops" });
  });

  it("drops an instance that turns unhealthy, and takes a new one, within a refresh", async () => {
    await api(server.url, "PUT", "/v1/services/exp-2/heartbeat", { status: "unhealthy" });
    await until("exp-2 gone", (x) => instances(x).join() === `127.0.0.1:${peers[0]!.port}`);
    await api(server.url, "PUT", "/v1/services/quiet", { name: "exporter", address: "127.0.0.1", port: peers[2]!.port, tags: ["metrics"], ttl: 60_000 });
    await api(server.url, "PUT", "/v1/services/quiet/heartbeat");
    await until("the new one in", (x) => instances(x).includes(`127.0.0.1:${peers[2]!.port}`) && x.length === 2);
  });
});
