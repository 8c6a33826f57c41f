// A container's labels as instances (src/sources/containers.ts): the label scheme, the address rule, problems.
import { describe, expect, it } from "vitest";
import { instancesOfContainer, type ContainerInspect } from "../../src/sources/containers.js";

const container = (over: Partial<ContainerInspect> & { labels?: Record<string, string> }): ContainerInspect => ({
  Id: "0123456789abcdef0123",
  Name: "/web-1",
  Config: { Labels: over.labels ?? {}, Image: "ghcr.io/acme/web:2.1.0" },
  HostConfig: over.HostConfig ?? { NetworkMode: "bridge" },
  NetworkSettings: over.NetworkSettings ?? { Networks: { bridge: { IPAddress: "10.88.0.5" } } },
});

describe("instancesOfContainer", () => {
  it("makes one instance from homelab.* labels, version from the image tag, container id and name in metadata", () => {
    const { inputs, problems } = instancesOfContainer(container({ labels: { "homelab.service": "web", "homelab.port": "8080", "homelab.tags": "prod, eu", "homelab.meta.team": "platform", "homelab.health": "/healthz", other: "x" } }), "192.168.1.10");
    expect(problems).toEqual([]);
    expect(inputs).toEqual([
      expect.objectContaining({ id: "web-1", name: "web", version: "2.1.0", address: "10.88.0.5", port: 8080, tags: ["prod", "eu"], healthEndpoint: "/healthz", metadata: { "container.id": "0123456789ab", "container.name": "web-1", team: "platform" } }),
    ]);
  });

  it("takes the address by the documented rule: label, host networking, published port, first network", () => {
    const labels = { "homelab.service": "web", "homelab.port": "80" };
    expect(instancesOfContainer(container({ labels: { ...labels, "homelab.address": "nas.lan" } }), "192.168.1.10").inputs[0]).toMatchObject({ address: "nas.lan", port: 80 });
    expect(instancesOfContainer(container({ labels, HostConfig: { NetworkMode: "host" } }), "192.168.1.10").inputs[0]).toMatchObject({ address: "192.168.1.10", port: 80 });
    const published = { Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8081" }] }, Networks: { bridge: { IPAddress: "10.88.0.5" } } };
    expect(instancesOfContainer(container({ labels, NetworkSettings: published }), "192.168.1.10").inputs[0]).toMatchObject({ address: "192.168.1.10", port: 8081 });
    const boundToOne = { Ports: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "8082" }] } };
    expect(instancesOfContainer(container({ labels, NetworkSettings: boundToOne }), "192.168.1.10").inputs[0]).toMatchObject({ address: "127.0.0.1", port: 8082 });
    const twoNetworks = { Networks: { zeta: { IPAddress: "10.99.0.2" }, alpha: { IPAddress: "10.77.0.2" } } };
    expect(instancesOfContainer(container({ labels, NetworkSettings: twoNetworks }), "192.168.1.10").inputs[0]).toMatchObject({ address: "10.77.0.2", port: 80 });
    expect(instancesOfContainer(container({ labels: { ...labels, "homelab.network": "zeta" }, NetworkSettings: twoNetworks }), "h").inputs[0]).toMatchObject({ address: "10.99.0.2" });
    expect(instancesOfContainer(container({ labels: { ...labels, "homelab.network": "beta" }, NetworkSettings: twoNetworks }), "h").problems).toEqual(['container web-1: homelab.network: not on network "beta" (it is on zeta, alpha)']);
  });

  it("makes several instances from homelab.<n>.* groups, ids suffixed", () => {
    const labels = { "homelab.1.service": "web", "homelab.1.port": "80", "homelab.2.service": "metrics", "homelab.2.port": "9100", "homelab.2.tags": "metrics", "homelab.2.check": "tcp" };
    const { inputs, problems } = instancesOfContainer(container({ labels }), "192.168.1.10");
    expect(problems).toEqual([]);
    expect(inputs.map((i) => [i.id, i.name, i.port, i.tcpCheck ?? false])).toEqual([
      ["web-1-1", "web", 80, false],
      ["web-1-2", "metrics", 9100, true],
    ]);
  });

  it("reports each unusable label by container and label, and skips only that instance", () => {
    const labels = { "homelab.1.service": "Bad_Name", "homelab.1.port": "80", "homelab.2.service": "ok", "homelab.2.port": "99999", "homelab.3.service": "fine", "homelab.3.port": "81", "homelab.3.check": "ping", "homelab.4.port": "82", "homelab.5.service": "last", "homelab.5.port": "83" };
    const { inputs, problems } = instancesOfContainer(container({ labels }), "192.168.1.10");
    expect(inputs.map((i) => i.name)).toEqual(["last"]);
    expect(problems).toEqual([
      expect.stringMatching(/^container web-1: homelab\.1\.service: .*DNS label/),
      'container web-1: homelab.2.port: "99999" is not a port (1-65535)',
      'container web-1: homelab.3.check: "ping" is not a check kind (tcp, or homelab.health=/path for HTTP)',
      "container web-1: homelab.4.service: missing (every homelab.<n>.* group needs one)",
    ]);
  });

  it("takes the engine's healthcheck status for instances without a check of ours", () => {
    const labels = { "homelab.1.service": "web", "homelab.1.port": "80", "homelab.2.service": "api", "homelab.2.port": "81", "homelab.2.health": "/h" };
    const at = (status: string) => instancesOfContainer({ ...container({ labels }), State: { Health: { Status: status } } }, "h").engineHealth;
    expect([...at("starting")]).toEqual([["web-1-1", "unknown"]]); // web-1-2 has a check of ours
    expect([...at("healthy")]).toEqual([["web-1-1", "healthy"]]);
    expect([...at("unhealthy")]).toEqual([["web-1-1", "unhealthy"]]);
    expect([...at("")]).toEqual([]); // no healthcheck
  });

  it("needs a port, and an address it can tell", () => {
    expect(instancesOfContainer(container({ labels: { "homelab.service": "web" } }), "h").problems).toEqual(["container web-1: homelab.port: missing: the port the service listens on"]);
    const { problems } = instancesOfContainer(container({ labels: { "homelab.service": "web", "homelab.port": "80" }, NetworkSettings: { Networks: {} } }), "h");
    expect(problems[0]).toMatch(/^container web-1: homelab\.address: no address/);
  });
});
