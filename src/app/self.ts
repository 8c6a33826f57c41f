// The server's own registration (--self-register): service `discovery`, one instance for its API and one for its
// DNS server on each node, so a client that knows one of its DNS servers finds the API (and, in cluster mode,
// every node) by name. Each instance is checked by this server over loopback, whatever address it advertises.
//
//   discovery.service.<domain>              A/AAAA: the nodes' addresses
//   _discovery._api.service.<domain>        SRV: each node's API port (api.discovery.service.<domain> too)
//   _discovery._dns.service.<domain>        SRV: each node's DNS port (_discovery._udp.service.<domain> too)
//
// A listener on loopback only is left out when the other one is advertised beyond it (the systemd unit: DNS on
// 0.0.0.0:53, the API on 127.0.0.1): every client but this machine's would be sent to itself, by the A answer and
// by the SRV alike. On loopback both (the defaults), every client is on this machine: both are advertised.
import { isIP } from "node:net";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { isLoopback, isWildcard, ownHost, urlHost } from "../lib/hostport.js";
import { ipHex } from "../lib/ip.js";
import type { ParsedServiceInput } from "../model/index.js";
import { serviceInputSchema } from "../model/index.js";

export const SELF_SERVICE = "discovery";
/** How often the server checks its own instances, ms. */
export const SELF_CHECK_INTERVAL_MS = 10_000;

export interface SelfRegistration {
  nodeId: string;
  clusterName: string;
  domain: string;
  version: string;
  /** Where the API and DNS listen, as bound (port 0 resolved). */
  http: { host: string; port: number; scheme?: "http" | "https" };
  dns: { host: string; port: number };
  /** --tls-client-ca: the API refuses a client without a certificate, which this server's own check has not. */
  clientCertificates?: boolean;
  /** --advertise-address: the address of a wildcard listener. */
  advertiseAddress?: string | undefined;
  /** The machine's interfaces (os.networkInterfaces()); tests give their own. */
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** The id of a node's instance: discovery-<node>-api, discovery-<node>-dns (node ids are labels: 63 at most, ids 128). */
export function selfId(nodeId: string, role: "api" | "dns"): string {
  return `${SELF_SERVICE}-${nodeId}-${role}`;
}

/**
 * The address an instance listening on `bound` is advertised at: the bound address itself when it is one (it
 * answers there only; "localhost" is 127.0.0.1); for a wildcard, --advertise-address, else the machine's first
 * address that is neither loopback nor link-local (IPv4 first), else 127.0.0.1.
 */
export function advertisedAddress(bound: string, advertise: string | undefined, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string {
  if (!isWildcard(bound)) return bound === "localhost" ? "127.0.0.1" : bound;
  if (advertise !== undefined) return advertise;
  const usable = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((i) => !i.internal && !/^169\.254\./.test(i.address) && !/^fe80:/i.test(i.address));
  return usable.find((i) => i.family === "IPv4")?.address ?? usable.find((i) => i.family === "IPv6")?.address ?? "127.0.0.1";
}

/** The server's own instances, parsed as a registration is: both, or the one not on loopback only (see above). */
export function selfInstances(s: SelfRegistration): ParsedServiceInput[] {
  const apiAddress = advertisedAddress(s.http.host, s.advertiseAddress, s.interfaces);
  const dnsAddress = advertisedAddress(s.dns.host, s.advertiseAddress, s.interfaces);
  const metadata = { node: s.nodeId, cluster: s.clusterName, version: s.version };
  const scheme = s.http.scheme ?? "http";
  const apiTarget = `${urlHost(ownHost(s.http.host))}:${s.http.port}`;
  const over = isLoopback(ownHost(s.http.host)) ? "loopback" : "its address";
  // Over HTTPS the check does not verify the certificate: it reaches its own listener, by an address the
  // certificate need not name, to see it answer. A listener that asks for client certificates would refuse it: a
  // TCP connect to the advertised address then (a wildcard listener's is this machine's own).
  const apiCheck =
    scheme === "http"
      ? { id: "api", name: `GET /v1/status over ${over}`, kind: "http", url: `http://${apiTarget}/v1/status`, interval: SELF_CHECK_INTERVAL_MS }
      : s.clientCertificates
        ? { id: "api", name: "TCP connect (the API asks for client certificates)", kind: "tcp", interval: SELF_CHECK_INTERVAL_MS }
        : { id: "api", name: `GET /v1/status over ${over}, HTTPS`, kind: "http", url: `https://${apiTarget}/v1/status`, tlsSkipVerify: true, interval: SELF_CHECK_INTERVAL_MS };
  const dnsResolver = `${urlHost(ownHost(s.dns.host))}:${s.dns.port}`;
  // A name this DNS server answers from the registry alone, and to a known address: <hex>.addr.<domain> is the
  // instance's own address (the SRV target). A host name has no such form: the node's name then.
  const hex = isIP(dnsAddress) !== 0 ? ipHex(dnsAddress) : undefined;
  const dnsCheck =
    hex !== undefined
      ? { query: `${hex}.addr.${s.domain}`, type: isIP(dnsAddress) === 6 ? "AAAA" : "A", expect: dnsAddress }
      : { query: `${s.nodeId}.node.${s.domain}` };
  const inputs = [
    {
      id: selfId(s.nodeId, "api"),
      name: SELF_SERVICE,
      version: s.version,
      nodeId: s.nodeId,
      address: apiAddress,
      port: s.http.port,
      tags: ["api", scheme],
      metadata: { ...metadata, role: "api", scheme },
      checks: [apiCheck],
    },
    {
      id: selfId(s.nodeId, "dns"),
      name: SELF_SERVICE,
      version: s.version,
      nodeId: s.nodeId,
      address: dnsAddress,
      port: s.dns.port,
      tags: ["dns", "udp"],
      metadata: { ...metadata, role: "dns" },
      checks: [{ id: "dns", name: `DNS ${dnsCheck.query}`, kind: "dns", resolver: dnsResolver, ...dnsCheck, interval: SELF_CHECK_INTERVAL_MS }],
    },
  ];
  const local = [isLoopback(apiAddress), isLoopback(dnsAddress)];
  const advertised = local[0] === local[1] ? inputs : inputs.filter((_, i) => !local[i]);
  return advertised.map((input) => serviceInputSchema.parse(input));
}
