import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { query, resolverFor, tcp, udp } from "../dns/helpers.js";
import { api, metricSamples, startTestServer } from "../helpers.js";

let server: ServerHandle;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

interface Scrape {
  contentType: string | null;
  text: string;
  /** Sample value by `name{labels}` (see metricSamples). */
  value(sample: string): number | undefined;
}

async function scrape(): Promise<Scrape> {
  const res = await fetch(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const samples = metricSamples(text);
  return { contentType: res.headers.get("content-type"), text, value: (sample) => samples.get(sample) };
}

const delta = (before: Scrape, after: Scrape, sample: string) => (after.value(sample) ?? 0) - (before.value(sample) ?? 0);

describe("GET /metrics (Prometheus text format)", () => {
  it("is well-formed: one HELP and TYPE per family, every sample under its family, process metrics included", async () => {
    const s = await scrape();
    expect(s.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    const types = new Map<string, string>();
    for (const line of s.text.split("\n")) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary)$/.exec(line);
      if (type) {
        expect(types.has(type[1]!), `${type[1]} declared twice`).toBe(false);
        types.set(type[1]!, type[2]!);
        continue;
      }
      if (line === "" || line.startsWith("#")) continue;
      const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|nan|[+-]inf)$/i.exec(line); // Prometheus reads NaN and Inf in any case
      expect(name, `malformed sample line: ${line}`).not.toBeNull();
      const family = name![1]!.replace(/_(bucket|sum|count)$/, "");
      expect(types.has(name![1]!) || types.has(family), `sample without a TYPE: ${line}`).toBe(true);
    }
    expect(types.get("homelab_discovery_dns_requests_total")).toBe("counter");
    expect(types.get("homelab_discovery_instances")).toBe("gauge");
    expect(types.has("process_cpu_user_seconds_total")).toBe(true);
    expect(types.has("nodejs_eventloop_lag_seconds")).toBe(true);
    expect(s.value(`homelab_discovery_build_info{version="${(await api(server.url, "GET", "/v1/status")).body.version}",node_id="test-node",cluster="test"}`)).toBe(1);
    // Embedded mode: no cluster families.
    expect(s.text).not.toMatch(/^homelab_discovery_cluster_/m);
  });

  it("counts the registry's instances by health", async () => {
    for (const id of ["m-1", "m-2"]) expect((await api(server.url, "PUT", `/v1/services/${id}`, { name: "metered", address: "10.0.0.1", port: 80 })).status).toBe(201);
    const ttl = await api(server.url, "PUT", "/v1/services/m-3", { name: "metered-ttl", address: "10.0.0.2", port: 80, ttl: 30_000 });
    expect(ttl.status).toBe(201);
    const s = await scrape();
    const status = (await api(server.url, "GET", "/v1/services/m-3")).body.healthStatus as string;
    expect(status).not.toBe("healthy");
    expect(s.value('homelab_discovery_instances{health="healthy"}')).toBe(2);
    expect(s.value(`homelab_discovery_instances{health="${status}"}`)).toBe(1);
    expect(s.value("homelab_discovery_local_instances")).toBe(3);
    expect(s.value("homelab_discovery_services")).toBe(2);
    expect(s.value("homelab_discovery_registry_generation")).toBeGreaterThanOrEqual(3);
  });

  it("counts DNS queries by transport, type and rcode, as c-ares and raw packets send them", async () => {
    await api(server.url, "PUT", "/v1/services/dns-m-1", { name: "dnsmetered", address: "10.0.0.7", port: 80 });
    const port = server.dnsAddress.port;
    const before = await scrape();
    const resolver = resolverFor(port);
    expect(await resolver.resolve4("dnsmetered.service.home.arpa")).toEqual(["10.0.0.7"]);
    expect(await resolver.resolveSrv("dnsmetered.service.home.arpa")).toHaveLength(1);
    await expect(resolver.resolve4("absent.service.home.arpa")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(await udp(port, query("dnsmetered.service.home.arpa", 65))).toBeDefined();
    expect(await tcp(port, [query("dnsmetered.service.home.arpa", 28)])).toHaveLength(1);
    expect(await udp(port, query("dnsmetered.service.home.arpa", 65_280))).toBeDefined(); // a private-use type
    const after = await scrape();

    expect(delta(before, after, 'homelab_discovery_dns_requests_total{proto="udp"}')).toBe(5);
    expect(delta(before, after, 'homelab_discovery_dns_requests_total{proto="tcp"}')).toBe(1);
    expect(delta(before, after, 'homelab_discovery_dns_request_types_total{type="A"}')).toBe(2);
    expect(delta(before, after, 'homelab_discovery_dns_request_types_total{type="SRV"}')).toBe(1);
    expect(delta(before, after, 'homelab_discovery_dns_request_types_total{type="AAAA"}')).toBe(1);
    expect(delta(before, after, 'homelab_discovery_dns_request_types_total{type="TYPE65"}')).toBe(1);
    expect(delta(before, after, 'homelab_discovery_dns_request_types_total{type="other"}')).toBe(1);
    expect(delta(before, after, 'homelab_discovery_dns_responses_total{rcode="NXDOMAIN"}')).toBe(1);
    expect(delta(before, after, 'homelab_discovery_dns_responses_total{rcode="NOERROR"}')).toBe(5);
    expect(after.value("homelab_discovery_dns_cache_entries")).toBeGreaterThan(0);
  });

  it("reads at scrape time: a registration shows in the next scrape", async () => {
    const before = (await scrape()).value('homelab_discovery_instances{health="healthy"}')!;
    await api(server.url, "PUT", "/v1/services/late-1", { name: "late", address: "10.0.0.9", port: 80 });
    expect((await scrape()).value('homelab_discovery_instances{health="healthy"}')).toBe(before + 1);
  });
});
