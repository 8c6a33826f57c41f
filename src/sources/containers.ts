// What a container's labels register: one instance per `homelab.service` label (or `homelab.<n>.service` for
// several), parsed into the same inputs the API takes. Pure: the engine's inspect answer in, inputs and problems
// out (docker.ts talks to the engine).
//
//   homelab.service=web          the service name (required)
//   homelab.port=8080            the port: the container's; published, the host's port it maps to
//   homelab.id=web-1             the instance id (default: the container's name, "-<n>" for homelab.<n>.*)
//   homelab.tags=prod,eu         tags
//   homelab.meta.team=platform   metadata (the container's id and name are added as container.id, container.name)
//   homelab.health=/healthz      an HTTP check of that path; homelab.check=tcp for a TCP check
//   homelab.interval=10000       the check interval, ms
//   homelab.version=2.1.0        default: the image's tag
//   homelab.address=10.0.0.5     default: by the rule below
//   homelab.network=backend      the network whose address is taken, when the container is on several
//
// Health: our check when the labels give one; otherwise the engine's own healthcheck status when the container
// has one (starting -> unknown, healthy, unhealthy); otherwise healthy while it runs.
//
// The address: homelab.address when given; with host networking, the host address (--docker-host-address);
// when the port is published, the host address and the published port (or the binding's own address when it is
// one); otherwise the container's address on homelab.network, or on its first network by name, with the port as
// labelled.
import { serviceInputSchema, type ParsedServiceInput } from "../model/index.js";

/** The parts of the engine's `GET /containers/{id}/json` this reads (Docker's and Podman's are alike). */
export interface ContainerInspect {
  readonly Id: string;
  readonly Name: string;
  readonly Config?: { readonly Labels?: Record<string, string> | null; readonly Image?: string } | null;
  readonly HostConfig?: { readonly NetworkMode?: string } | null;
  /** The engine's own healthcheck (HEALTHCHECK, --health-cmd): "starting", "healthy", "unhealthy", or none. */
  readonly State?: { readonly Running?: boolean; readonly Health?: { readonly Status?: string } | null } | null;
  readonly NetworkSettings?: {
    readonly Ports?: Record<string, readonly { readonly HostIp?: string; readonly HostPort?: string }[] | null> | null;
    readonly Networks?: Record<string, { readonly IPAddress?: string; readonly GlobalIPv6Address?: string }> | null;
  } | null;
}

export interface ContainerInstances {
  readonly inputs: ParsedServiceInput[];
  /** The engine's healthcheck status as our health, for the instances that have no check of ours (by id). */
  readonly engineHealth: Map<string, "healthy" | "unhealthy" | "unknown">;
  /** One line per label that could not be used, naming the container and the label. */
  readonly problems: string[];
}

const PREFIX = "homelab.";

export function instancesOfContainer(c: ContainerInspect, hostAddress: string): ContainerInstances {
  const labels = c.Config?.Labels ?? {};
  const name = c.Name.replace(/^\//, "");
  const groups = new Map<string, Map<string, string>>();
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(PREFIX)) continue;
    const rest = key.slice(PREFIX.length);
    const indexed = /^(\d+)\.(.+)$/.exec(rest);
    const group = indexed ? indexed[1]! : "";
    const field = indexed ? indexed[2]! : rest;
    if (!groups.has(group)) groups.set(group, new Map());
    groups.get(group)!.set(field, value);
  }
  const inputs: ParsedServiceInput[] = [];
  const problems: string[] = [];
  const engineHealth = new Map<string, "healthy" | "unhealthy" | "unknown">();
  const engine = ENGINE_HEALTH[c.State?.Health?.Status ?? ""];
  for (const [group, fields] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const label = (field: string) => `${PREFIX}${group === "" ? "" : `${group}.`}${field}`;
    const problem = (field: string, why: string) => problems.push(`container ${name}: ${label(field)}: ${why}`);
    if (!fields.has("service")) {
      if (group !== "") problem("service", "missing (every homelab.<n>.* group needs one)");
      continue;
    }
    const target = addressOf(c, fields.get("port"), fields.get("address"), fields.get("network"), hostAddress);
    if (typeof target === "string") {
      problem(target.startsWith("no address") ? "address" : target.startsWith("not on") ? "network" : "port", target);
      continue;
    }
    const metadata: Record<string, string> = { "container.id": c.Id.slice(0, 12), "container.name": name };
    for (const [field, value] of fields) if (field.startsWith("meta.")) metadata[field.slice(5)] = value;
    const check = fields.get("check");
    const candidate = {
      id: fields.get("id") ?? (group === "" ? name : `${name}-${group}`),
      name: fields.get("service"),
      ...(fields.has("version") || imageTag(c.Config?.Image) ? { version: fields.get("version") ?? imageTag(c.Config?.Image) } : {}),
      address: target.address,
      port: target.port,
      tags: fields.has("tags") ? fields.get("tags")!.split(",").map((t) => t.trim()).filter((t) => t !== "") : [],
      metadata,
      ...(fields.has("health") ? { healthEndpoint: fields.get("health") } : {}),
      ...(check === "tcp" ? { tcpCheck: true } : {}),
      ...(fields.has("interval") ? { healthCheckInterval: Number(fields.get("interval")) } : {}),
    };
    if (check !== undefined && check !== "tcp") {
      problem("check", `"${check}" is not a check kind (tcp, or homelab.health=/path for HTTP)`);
      continue;
    }
    const parsed = serviceInputSchema.safeParse(candidate);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = String(issue.path[0] ?? "service");
      problem(LABEL_OF_FIELD[field] ?? field, issue.message);
      continue;
    }
    inputs.push(parsed.data);
    const own = parsed.data.healthEndpoint !== undefined || parsed.data.tcpCheck === true || parsed.data.ttl !== undefined;
    if (engine !== undefined && !own) engineHealth.set(parsed.data.id, engine);
  }
  return { inputs, problems, engineHealth };
}

/** The engine's healthcheck status as our health: "starting" is unknown, as a new check of ours starts. */
const ENGINE_HEALTH: Record<string, "healthy" | "unhealthy" | "unknown" | undefined> = { healthy: "healthy", unhealthy: "unhealthy", starting: "unknown" };

/** Which label a field of the input comes from, to name it in a problem. */
const LABEL_OF_FIELD: Record<string, string> = {
  id: "id",
  name: "service",
  version: "version",
  address: "address",
  port: "port",
  tags: "tags",
  metadata: "meta.*",
  healthEndpoint: "health",
  healthCheckInterval: "interval",
};

/** Where the instance is reached, or why that cannot be told. */
function addressOf(c: ContainerInspect, portLabel: string | undefined, addressLabel: string | undefined, network: string | undefined, hostAddress: string): { address: string; port: number } | string {
  if (portLabel === undefined) return "missing: the port the service listens on";
  const port = Number(portLabel);
  if (!/^\d{1,5}$/.test(portLabel) || port < 1 || port > 65535) return `"${portLabel}" is not a port (1-65535)`;
  if (addressLabel !== undefined) return { address: addressLabel, port };
  if (c.HostConfig?.NetworkMode === "host") return { address: hostAddress, port };
  const bindings = c.NetworkSettings?.Ports?.[`${port}/tcp`] ?? c.NetworkSettings?.Ports?.[`${port}/udp`];
  const binding = bindings?.find((b) => b.HostPort !== undefined && b.HostPort !== "");
  if (binding !== undefined) {
    const own = binding.HostIp && binding.HostIp !== "0.0.0.0" && binding.HostIp !== "::" ? binding.HostIp : hostAddress;
    return { address: own, port: Number(binding.HostPort) };
  }
  const all = Object.entries(c.NetworkSettings?.Networks ?? {});
  if (network !== undefined && !all.some(([name]) => name === network)) return `not on network "${network}" (it is on ${all.map(([name]) => name).join(", ") || "none"})`;
  const networks = all.filter(([name]) => network === undefined || name === network).sort(([a], [b]) => a.localeCompare(b));
  for (const [, n] of networks) {
    const address = n.IPAddress || n.GlobalIPv6Address;
    if (address) return { address, port };
  }
  return "no address: the container has no network address and the port is not published (use host networking, publish it, or set homelab.address)";
}

/** The tag of an image reference ("nginx:1.27" -> "1.27"); undefined for none or a digest. */
function imageTag(image: string | undefined): string | undefined {
  if (image === undefined || image.includes("@")) return undefined;
  const last = image.slice(image.lastIndexOf("/") + 1);
  const colon = last.lastIndexOf(":");
  return colon < 0 ? undefined : last.slice(colon + 1);
}
