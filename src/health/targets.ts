// Where a check may go. A check is a request the server makes and whose answer it shows (POST .../check returns
// 4 KB of it), so it goes to the instance's own address only, unless the operator allows more hosts
// (--check-allow-hosts); link-local and cloud metadata addresses are refused even there, unless named in the list.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { BlockList, isIP } from "node:net";
import { blockListOf } from "../lib/ip.js";
import { normaliseAddress } from "../model/index.js";

/** 169.254/16 and fe80::/10 reach the machine's own link (cloud metadata, a router's admin page), plus the
 * metadata addresses outside them (AWS's IPv6 one, Alibaba's). */
const FORBIDDEN = new BlockList();
FORBIDDEN.addSubnet("169.254.0.0", 16, "ipv4");
FORBIDDEN.addSubnet("fe80::", 10, "ipv6");
FORBIDDEN.addAddress("fd00:ec2::254", "ipv6");
FORBIDDEN.addAddress("100.100.100.200", "ipv4");

/** What --check-allow-hosts lists: host names, addresses and CIDR blocks ("192.168.1.0/24"). */
export class CheckTargets {
  private readonly names = new Set<string>();
  private readonly blocks: BlockList;

  constructor(readonly allowed: readonly string[] = []) {
    this.blocks = blockListOf(allowed);
    for (const item of allowed) if (isIP(item.split("/")[0] ?? "") === 0) this.names.add(item.toLowerCase().replace(/\.$/, ""));
  }

  /** Whether an address or name is on the operator's list. */
  listed(host: string): boolean {
    const family = isIP(host);
    if (family === 0) return this.names.has(host.toLowerCase());
    return this.blocks.check(host, family === 6 ? "ipv6" : "ipv4");
  }

  /**
   * Why a check connecting to `host` may not run for an instance at `own`, or undefined when it may: another host
   * than the instance's own needs --check-allow-hosts, and a link-local or metadata address needs naming there.
   */
  refusal(host: string, own: string): string | undefined {
    const target = normaliseAddress(host) ?? host.toLowerCase();
    if (target !== own && !this.listed(target)) {
      return `a check goes to the instance's own address (${own}), not ${target}: add ${target} to --check-allow-hosts to check another host`;
    }
    if (isIP(target) !== 0 && this.forbidden(target)) {
      return `${target} is a link-local or cloud metadata address: checks go there only when --check-allow-hosts names it`;
    }
    return undefined;
  }

  /** Whether a check of an instance at `own` may connect to `host` (a redirect's, say). */
  reachable(host: string, own: string): boolean {
    return this.refusal(host, own) === undefined;
  }

  /** A link-local or metadata address the list does not name. */
  forbidden(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && FORBIDDEN.check(address, family === 6 ? "ipv6" : "ipv4") && !this.listed(address);
  }

  /**
   * dns.lookup for the probes' sockets, refusing what a name resolves to when it is forbidden: a host name that
   * passed at registration may later point at a metadata address (DNS rebinding).
   */
  readonly lookup = (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const usable = addresses.filter((a) => !this.forbidden(a.address));
      if (usable.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves to ${addresses.map((a) => a.address).join(", ")}: link-local or cloud metadata, refused (name it in --check-allow-hosts)`), { code: "EREFUSED_TARGET" });
        return callback(refused, []);
      }
      if (options.all) return callback(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
}
