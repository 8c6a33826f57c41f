// Who is asking. Clients on trusted networks (--dns-trusted-networks: loopback and the networks of the listen
// address by default) may have names outside our domain forwarded (never an open resolver), and get UDP answers
// of up to 4096 bytes. Every other client gets UDP answers of at most 1232 bytes (the size DNS Flag Day 2020
// settled on) and a response rate limit per network (/24 for IPv4, /56 for IPv6: a reflection attack rotates
// through its victim's addresses), --dns-rate-limit responses per second with a burst as large: over it, one
// response in --dns-rate-limit-slip goes out truncated (an honest client retries over TCP, which is never
// limited: its address is proven) and the rest are dropped, as BIND's and NSD's RRL do.
import { isIP, type BlockList } from "node:net";
import { networkInterfaces } from "node:os";
import { blockListOf, networkKey } from "../lib/ip.js";

/** What the answer path needs to know of a client, looked up once per address. */
export interface Client {
  readonly trusted: boolean;
  /** The rate bucket of the client's network; undefined for trusted clients. */
  readonly bucket: Bucket | undefined;
}

interface Bucket {
  tokens: number;
  /** ms of the last refill. */
  at: number;
  /** Responses refused in a row: every slip-th one goes out truncated. */
  limited: number;
}

/** What admit() decides for one UDP response. */
export const enum Verdict {
  Send = 0,
  Slip = 1,
  Drop = 2,
}

/** The UDP payload an untrusted client gets at most (DNS Flag Day 2020). */
export const UNTRUSTED_UDP_PAYLOAD = 1232;
/** Addresses and networks remembered at most; past it the oldest quarter goes (an attacker rotating spoofed
 * sources only resets their own buckets, to a burst that is the limit anyway). */
const MAX_REMEMBERED = 65_536;

const TRUSTED: Client = { trusted: true, bucket: undefined };

export interface ClientPolicyOptions {
  /** CIDR blocks and addresses ("192.168.1.0/24", "::1"). */
  trusted: readonly string[];
  /** Responses per second per network for untrusted clients; 0 turns the limit off. */
  rate: number;
  /** Every slip-th limited response is sent truncated; 0 drops them all. */
  slip: number;
  now?: () => number;
}

export class ClientPolicy {
  private readonly trusted: BlockList;
  private readonly byAddress = new Map<string, Client>();
  private readonly byNetwork = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly opts: ClientPolicyOptions) {
    this.trusted = blockListOf(opts.trusted);
    this.now = opts.now ?? Date.now;
  }

  /** The client at this address (an IP literal, as sockets give it). */
  of(address: string): Client {
    const known = this.byAddress.get(address);
    if (known !== undefined) return known;
    const family = isIP(address);
    let client: Client;
    if (family !== 0 && this.trusted.check(address, family === 6 ? "ipv6" : "ipv4")) client = TRUSTED;
    else client = { trusted: false, bucket: this.opts.rate > 0 ? this.bucketOf(networkKey(address)) : undefined };
    remember(this.byAddress, address, client);
    return client;
  }

  /** Whether one more UDP response may go to this client now. */
  admit(client: Client): Verdict {
    const bucket = client.bucket;
    if (bucket === undefined) return Verdict.Send;
    const now = this.now();
    const rate = this.opts.rate;
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) * rate) / 1000);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      bucket.limited = 0;
      return Verdict.Send;
    }
    bucket.limited += 1;
    return this.opts.slip > 0 && bucket.limited % this.opts.slip === 0 ? Verdict.Slip : Verdict.Drop;
  }

  private bucketOf(network: string): Bucket {
    let bucket = this.byNetwork.get(network);
    if (bucket === undefined) {
      bucket = { tokens: this.opts.rate, at: this.now(), limited: 0 };
      remember(this.byNetwork, network, bucket);
    }
    return bucket;
  }
}

/** The default trusted networks: loopback, and the networks of the interfaces the listen address is on (all of
 * them for a wildcard address). */
export function localNetworks(listenHost: string): string[] {
  const wildcard = listenHost === "0.0.0.0" || listenHost === "::" || listenHost === "";
  const out = new Set(["127.0.0.0/8", "::1/128"]);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.cidr && (wildcard || a.address === listenHost)) out.add(a.cidr);
    }
  }
  return [...out];
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= MAX_REMEMBERED) {
    let drop = MAX_REMEMBERED / 4;
    for (const k of map.keys()) {
      if (drop-- <= 0) break;
      map.delete(k);
    }
  }
  map.set(key, value);
}

export { TRUSTED as TRUSTED_CLIENT };
