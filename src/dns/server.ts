// The DNS adapter: UDP and TCP sockets around one synchronous handle(packet) -> response. Encoded answers are
// cached per (name, type, class, EDNS); a registry change drops the answers it can affect (dependencies.ts), so an
// answer is never stale and the others stay cached. A cached answer costs one copy and a patch of the ID, two
// flags and the question's case.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIP, type Server as TcpServer, type Socket } from "node:net";
import type { Logger } from "pino";
import type { Listen } from "../lib/hostport.js";
import { Zone, type DnsSettings, type DnsView, type RoutingLookup } from "./answer.js";
import { encodeAnswer, encodeRotations, rotatable } from "./encode.js";
import { Forwarder } from "./forward.js";
import { TYPE_NAMES, type SoaRr } from "./records.js";
import type { StaticZones } from "./zonefile/index.js";
import { AnswerTable, type DroppedQuestion } from "./answer-table.js";
import { ANY_CHANGE, entryKeys, questionKey, type KeyedEntry } from "./dependencies.js";
import { classify, type Lookup } from "./names.js";
import { ClientPolicy, TRUSTED_CLIENT, UNTRUSTED_UDP_PAYLOAD, Verdict, type Client } from "./clients.js";
import { serveTcpConnection } from "./tcp.js";
import { bareResponse, CLASS_ANY, CLASS_IN, nameLabels, optRecord, parseQuery, questionOf, RCODE, soaRecord, TYPE, truncated, type Query } from "./wire.js";

/** The largest UDP payload we send and advertise. A LAN carries it; HAProxy, which never retries over TCP, needs it. */
export const MAX_UDP_PAYLOAD = 4096;
const MAX_CACHED_ANSWERS = 50_000;
/** A batch of more changes than this (a load, a replica resync) clears the answers instead of dropping them by key. */
const MAX_KEYED_CHANGES = 256;
const MAX_ROTATIONS = 8;
/** Variants one cached answer holds at most (answer-table.ts). */
const MAX_VARIANTS = 255;
/** A TCP connection must complete a query within this, or it is closed (tcp.ts). */
const TCP_IDLE_MS = 10_000;

export interface DnsStats {
  queries: number;
  udp: number;
  tcp: number;
  dropped: number;
  truncated: number;
  /** UDP responses the rate limit dropped, and sent truncated instead (clients.ts). */
  rateLimited: number;
  slipped: number;
  /** Forwarding asked by a client outside --dns-trusted-networks, answered REFUSED. */
  forwardRefused: number;
  /** TCP connections closed on arrival: --dns-tcp-max-connections were open. */
  tcpRefused: number;
  /** Answers built while a service's routing policy selected no healthy instance (all of them answered instead). */
  routingFallbacks: number;
  forwarded: number;
  cacheHits: number;
  cacheMisses: number;
  /** Answers a change dropped that were built again at once (they had been sent): see DnsServer.refresh. */
  cacheRefreshes: number;
  cachedAnswers: number;
  /** Memory the answer cache holds, bytes. */
  cachedBytes: number;
  byRcode: Record<string, number>;
  /** Questions by type: named types by name, other types below 256 as TYPE<n>, the rest as "other". */
  byType: Record<string, number>;
  errors: number;
}

/** What build() encodes for a question, before the answer table keeps it. */
interface Built {
  /** Empty when `rotations` holds the answer instead. */
  readonly variants: Buffer[];
  /** An A or AAAA set's rotations as one message and where its records start (the table writes each rotation). */
  readonly rotations?: { readonly message: Buffer; readonly starts: readonly number[]; readonly shifts: readonly number[] };
  /** The variant each turn sends, when not each in turn (a routed split: 100 turns over a few answers). */
  readonly order?: readonly number[];
  /** Not a name of ours: forwarded when upstreams are configured and the client asked for recursion. */
  readonly outside: boolean;
  /** What in the registry the answer depends on (dependencies.ts); undefined: nothing. */
  readonly key: string | undefined;
}

/** A registry change as DNS sees it: the entry before and after (undefined: added, removed, or not told). */
export interface DnsChange {
  readonly cause: string;
  readonly before?: KeyedEntry | undefined;
  readonly after?: KeyedEntry | undefined;
}

export interface DnsServerOptions {
  settings: DnsSettings;
  view: DnsView & { onChange(listener: (changes: readonly DnsChange[]) => void): () => void };
  logger: Logger;
  /** The SOA serial starts here and grows with the registry generation. */
  serialBase?: number;
  /** Resolvers for names outside the zone; without them those names are REFUSED. */
  upstreams?: readonly Listen[];
  /** One info line per query (--dns-log-queries). */
  logQueries?: boolean;
  /** Who may have names forwarded, gets full-size UDP answers and no rate limit; and the limit for the rest. */
  clients?: { trusted: readonly string[]; rateLimit: number; rateLimitSlip: number };
  /** TCP connections open at once (default 256). */
  tcpMaxConnections?: number;
  /** A TCP connection must complete a query within this, ms (default 10 s). */
  tcpIdleMs?: number;
  /** Version-aware routing policies (issue 21): answers of a service follow its policy; a change drops them. */
  routing?: RoutingLookup & { onChange(listener: (name: string) => void): () => void };
}

/** The SOA handed to the encoder for an answer that sends none (it is only written for NXDOMAIN and NODATA). */
const NO_SOA: SoaRr = { name: "", type: TYPE.SOA, class: 1, ttl: 0, primary: "", admin: "", serial: 0, refresh: 0, retry: 0, expiration: 0, minimum: 0 };

/** Built.variants when the rotations hold the answer. */
const NO_VARIANTS: Buffer[] = [];

/** respond()'s answer for "ask the upstream resolvers". */
const FORWARD = Symbol("forward");

const RCODE_NAMES: Record<number, string> = { 0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 16: "BADVERS" };
/** Question types are counted below this, the rest together: a bounded set of names for metrics. */
const COUNTED_TYPES = 256;
/** Answers refresh() builds again after one change (a batch of them is one): more wait for their next query. */
const MAX_REFRESHES = 256;

export class DnsServer {
  readonly zone: Zone;
  /** Encoded answers by question and EDNS state (none, EDNS, EDNS with DO): see respond. */
  private readonly answers = new AnswerTable();
  /** Responses by rcode (an array: this counts every query); stats() names them. */
  private readonly rcodes: number[] = [];
  /** Questions by type, below COUNTED_TYPES; the last slot counts the rest. */
  private readonly qtypes = new Float64Array(COUNTED_TYPES + 1);
  private readonly unsubscribe: () => void;
  private udp: UdpSocket | undefined;
  private tcp: TcpServer | undefined;
  private readonly connections = new Set<Socket>();
  private readonly forwarder: Forwarder | undefined;
  /** Undefined: every client is trusted (a server built without listen settings, as in tests of handle()). */
  private readonly clients: ClientPolicy | undefined;
  /** The last SOA unprintable() sent, in wire form (soaWire). */
  private lastSoa: { soa: SoaRr; wire: Buffer } | undefined;
  /** No upstream answered the last forwarded query: logged once, until one answers again. */
  private upstreamDown = false;
  /** Questions whose answers the changes being applied dropped after they were sent: refresh() builds them. */
  private refreshing: DroppedQuestion[] | undefined;
  /** Where query lines go, with --dns-log-queries; undefined keeps the hot path free of it. */
  private readonly queryLog: Logger | undefined;
  private readonly counters: DnsStats = {
    queries: 0,
    udp: 0,
    tcp: 0,
    dropped: 0,
    truncated: 0,
    rateLimited: 0,
    slipped: 0,
    forwardRefused: 0,
    tcpRefused: 0,
    routingFallbacks: 0,
    forwarded: 0,
    cacheHits: 0,
    cacheMisses: 0,
    cacheRefreshes: 0,
    cachedAnswers: 0,
    cachedBytes: 0,
    byRcode: {},
    byType: {},
    errors: 0,
  };

  constructor(private readonly opts: DnsServerOptions) {
    this.zone = new Zone(opts.settings, opts.serialBase ?? Math.floor(Date.now() / 1000));
    const unsubscribeView = opts.view.onChange((changes) => this.invalidate(changes));
    const unsubscribeRouting = opts.routing?.onChange((name) => {
      // The service's answers, and those every change may touch (the apex's, the DNS-SD browse list).
      const sent = this.dropped();
      this.answers.invalidate(`s:${name.toLowerCase()}`, sent);
      this.answers.invalidate(ANY_CHANGE, sent);
    });
    this.unsubscribe = () => {
      unsubscribeView();
      unsubscribeRouting?.();
    };
    this.zone.routing = opts.routing;
    this.zone.onRoutingFallback = (name) => {
      this.counters.routingFallbacks += 1;
      opts.logger.warn({ service: name }, "routing policy selects no healthy instance: answering with every healthy instance of the service");
    };
    this.forwarder = opts.upstreams && opts.upstreams.length > 0 ? new Forwarder(opts.upstreams) : undefined;
    this.queryLog = opts.logQueries ? opts.logger : undefined;
    this.clients = opts.clients ? new ClientPolicy({ trusted: opts.clients.trusted, rate: opts.clients.rateLimit, slip: opts.clients.rateLimitSlip }) : undefined;
  }

  /** RA is set on every response when we forward, never otherwise. */
  private get ra(): boolean {
    return this.forwarder !== undefined;
  }

  /**
   * Answers one DNS message; undefined means send nothing. Never throws: a bug answers SERVFAIL and is logged.
   * The size limit is the transport's: the UDP payload size (at most 1232 bytes for untrusted clients), or
   * 65535 over TCP. UDP answers to untrusted clients pass the rate limit.
   */
  handle(packet: Buffer, transport: "udp" | "tcp", client: Client = TRUSTED_CLIENT): Buffer | undefined | Promise<Buffer | undefined> {
    this.counters.queries += 1;
    this.counters[transport] += 1;
    const q = parseQuery(packet);
    if (!q.ok) {
      if (q.drop) {
        this.counters.dropped += 1;
        return undefined;
      }
      this.count(q.rcode);
      return this.admitted(client, transport, bareResponse(q, q.rcode, false, this.ra, q.question, optSize(q), dnssecOk(q)), undefined);
    }
    this.qtypes[Math.min(q.qtype, COUNTED_TYPES)]! += 1;
    try {
      const response = this.respond(q, client.trusted);
      if (response === FORWARD) return this.forward(packet, q, transport);
      if (transport === "tcp") return response;
      const limit = q.edns ? Math.min(Math.max(512, q.edns.udpSize), client.trusted ? MAX_UDP_PAYLOAD : UNTRUSTED_UDP_PAYLOAD) : 512;
      let out = response;
      if (response.length > limit) {
        this.counters.truncated += 1;
        out = truncated(response, q.questionEnd - 12, q.edns ? optRecord(MAX_UDP_PAYLOAD, 0, q.edns.dnssecOk) : undefined);
      }
      return this.admitted(client, "udp", out, q.questionEnd - 12);
    } catch (err) {
      this.counters.errors += 1;
      this.opts.logger.error({ err }, "DNS handler failed; answered SERVFAIL");
      this.count(RCODE.SERVFAIL);
      return bareResponse(q, RCODE.SERVFAIL, false, this.ra, questionOf(q), 0, false);
    }
  }

  /**
   * Drops the cached answers these changes can affect: those under the keys of each entry before and after the
   * change, and those every change affects. A check that changed nothing DNS shows (only lastHealthCheck) drops
   * none. A change that does not say what changed, or a batch too big to be worth sorting, clears them all.
   */
  private invalidate(changes: readonly DnsChange[]): void {
    let keys: Set<string> | undefined;
    for (const c of changes) {
      if (c.cause === "checked") continue;
      if (changes.length > MAX_KEYED_CHANGES || (c.before === undefined && c.after === undefined)) {
        this.answers.clear();
        return;
      }
      keys ??= new Set([ANY_CHANGE]);
      if (c.before !== undefined) for (const k of entryKeys(c.before)) keys.add(k);
      if (c.after !== undefined) for (const k of entryKeys(c.after)) keys.add(k);
    }
    if (keys === undefined) return;
    const sent = this.dropped();
    for (const k of keys) this.answers.invalidate(k, sent);
  }

  /** The list invalidate() adds the sent answers' questions to, with the refresh that builds them scheduled. */
  private dropped(): DroppedQuestion[] {
    if (this.refreshing === undefined) {
      this.refreshing = [];
      queueMicrotask(() => this.refresh());
    }
    return this.refreshing;
  }

  /**
   * Builds again, at the change, the answers it dropped that had been sent since they were built (issue 18): the
   * first query after a change then finds its answer built, as the ones after it do, instead of paying the build.
   * A microtask: after the change's synchronous work (a batch of changes is one), before the event loop reads the
   * next packet. The cost moves to the write, once per change and asked answer, which the query would have paid
   * anyway; an answer built here and not sent before the next change is not built again, so a name nobody asks
   * costs nothing, and at most MAX_REFRESHES are built per change.
   */
  private refresh(): void {
    const list = this.refreshing ?? [];
    this.refreshing = undefined;
    for (let i = 0; i < list.length && i < MAX_REFRESHES; i++) {
      const { question, state } = list[i]!;
      const q = parseQuery(questionPacket(question, state));
      if (!q.ok || this.answers.find(q.packet, q.questionEnd, q.hash, state) >= 0) continue;
      try {
        this.cache(q, state);
        this.counters.cacheRefreshes += 1;
      } catch (err) {
        // cache() answers SERVFAIL for a build that throws; this is anything else: the next query builds it.
        this.opts.logger.error({ err }, "DNS answer not rebuilt after a change; its next query builds it");
      }
    }
  }

  /**
   * The response as the rate limit lets it go to this client: whole, truncated to its question (a slip: the
   * client retries over TCP), or not at all. Only UDP to untrusted clients is limited; a response whose
   * question could not be read is dropped rather than slipped.
   */
  private admitted(client: Client, transport: "udp" | "tcp", response: Buffer, questionLength: number | undefined): Buffer | undefined {
    if (client.bucket === undefined || transport !== "udp") return response;
    const verdict = this.clients!.admit(client);
    if (verdict === Verdict.Send) return response;
    if (verdict === Verdict.Slip && questionLength !== undefined) {
      this.counters.slipped += 1;
      return truncated(response, questionLength, undefined);
    }
    this.counters.rateLimited += 1;
    return undefined;
  }

  /** handle(), then one log line once the answer is ready: who asked what, what went back, how long it took. */
  private handleLogged(packet: Buffer, transport: "udp" | "tcp", from: Client, client: string): ReturnType<DnsServer["handle"]> {
    const started = performance.now();
    const log = (response: Buffer | undefined) => {
      this.queryLog!.info({ client, transport, ...queryLine(packet, response), ms: Math.round((performance.now() - started) * 1000) / 1000 }, "dns query");
      return response;
    };
    const response = this.handle(packet, transport, from);
    return response instanceof Promise ? response.then(log) : log(response);
  }

  private async forward(packet: Buffer, q: Query, transport: "udp" | "tcp"): Promise<Buffer> {
    this.counters.forwarded += 1;
    let reply: Buffer | undefined;
    try {
      reply = await this.forwarder!.forward(packet, transport);
    } catch (err) {
      this.opts.logger.error({ err }, "forwarding failed; answered SERVFAIL");
    }
    if (reply !== undefined) {
      this.upstreamDown = false;
      // Our answer now, as a recursive resolver's: recursion available, and not authoritative (it is not ours).
      reply[2] = reply[2]! & ~0x04;
      reply[3] = reply[3]! | 0x80;
      this.count(reply[3]! & 0x0f);
      return reply;
    }
    if (!this.upstreamDown) this.opts.logger.warn({ upstreams: this.forwarder!.upstreams }, "no upstream resolver answered; answering SERVFAIL (logged once until one answers)");
    this.upstreamDown = true;
    this.counters.errors += 1; // once per query, as the metric says: failed in the forwarder or upstream, answered SERVFAIL
    this.count(RCODE.SERVFAIL);
    return bareResponse(q, RCODE.SERVFAIL, false, true, questionOf(q), optSize(q), dnssecOk(q));
  }

  /** A header-only answer (plus question and OPT) with this rcode. */
  private bare(q: Query, rcode: number): Buffer {
    this.count(rcode);
    return bareResponse(q, rcode, false, this.ra, questionOf(q), optSize(q), dnssecOk(q));
  }

  private respond(q: Query, trusted: boolean): Buffer | typeof FORWARD {
    // No closure or object per query on the way to a cached answer: this runs for every query.
    const forwardable = this.forwarder !== undefined && (q.copiedFlags & 0x0100) !== 0;
    if (q.edns && q.edns.version !== 0) return this.bare(q, RCODE.BADVERS);
    if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return this.bare(q, RCODE.REFUSED);
    if (q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) return this.bare(q, RCODE.REFUSED);
    if (q.qtype === TYPE.OPT) return this.bare(q, RCODE.FORMERR);
    if (!q.printable) return this.unprintable(q, forwardable, trusted);

    // Found by the question's own bytes, where they sit in the packet (see answer-table.ts).
    const state = q.edns ? (q.edns.dnssecOk ? 2 : 1) : 0;
    let entry = this.answers.find(q.packet, q.questionEnd, q.hash, state);
    if (entry < 0) {
      this.counters.cacheMisses += 1;
      entry = this.cache(q, state);
    } else {
      this.counters.cacheHits += 1;
    }
    if (forwardable && this.answers.outside(entry)) {
      if (trusted) return FORWARD;
      // Never an open resolver: the cached answer for a name outside ours is REFUSED, as without upstreams.
      this.counters.forwardRefused += 1;
    }
    const out = this.answers.next(entry);
    out[0] = q.id >> 8;
    out[1] = q.id & 0xff;
    out[2] = out[2]! | ((q.copiedFlags >> 8) & 0x01); // RD
    out[3] = out[3]! | (q.copiedFlags & 0x10); // CD
    // The cached answer holds the question in lowercase: the packet's bytes already, unless the name was folded.
    if (q.folded) q.packet.copy(out, 12, 12, q.questionEnd);
    this.count(out[3]! & 0x0f);
    return out;
  }

  /** Builds the answer of a question the table does not hold, and keeps it there; its entry. Apart from respond()
   * so that the hit path stays small enough for V8 to inline what it calls. */
  private cache(q: Query, state: number): number {
    const built = this.buildOrFail(q, nameLabels(q));
    if (this.answers.size >= MAX_CACHED_ANSWERS) this.answers.clear();
    const r = built.rotations;
    return r !== undefined
      ? this.answers.insertRotations(q.packet, q.questionEnd, q.hash, state, r.message, r.starts, r.shifts, built.key)
      : this.answers.insert(q.packet, q.questionEnd, q.hash, state, built.variants, built.outside, built.key, built.order);
  }

  /**
   * A name with bytes none of our names can hold (a space, a '.', UTF-8 inside a label): inside our zones it
   * does not exist, and is answered so. Forwarding it would loop through any resolver that sends our domain
   * back to us. Outside them it goes upstream like any other name. Not cached: no name of ours looks like this.
   * (A wildcard in a zone file would match such a label too; it is answered NXDOMAIN all the same.)
   */
  private unprintable(q: Query, forwardable: boolean, trusted: boolean): Buffer | typeof FORWARD {
    const soa = this.zone.negativeSoaOf(nameLabels(q), this.opts.view);
    if (soa === undefined) {
      if (forwardable && !trusted) this.counters.forwardRefused += 1;
      return forwardable && trusted ? FORWARD : this.bare(q, RCODE.REFUSED);
    }
    this.count(RCODE.NXDOMAIN);
    return bareResponse(q, RCODE.NXDOMAIN, true, this.ra, questionOf(q), optSize(q), dnssecOk(q), this.soaWire(soa));
  }

  /** The negative answer's SOA in wire form, kept while it stays the same (it changes with the serial). */
  private soaWire(soa: SoaRr): Buffer {
    const last = this.lastSoa;
    if (last !== undefined && last.soa.serial === soa.serial && last.soa.ttl === soa.ttl && last.soa.name === soa.name && last.soa.minimum === soa.minimum && last.soa.primary === soa.primary && last.soa.admin === soa.admin) return last.wire;
    const wire = soaRecord(soa);
    this.lastSoa = { soa, wire };
    return wire;
  }

  /**
   * build(), or a SERVFAIL when it throws (a bug): logged and cached like any answer, so the failure is not
   * paid again on every query for that name until the registry changes (any change: it is keyed ANY_CHANGE).
   */
  private buildOrFail(q: Query, labels: readonly string[]): Built {
    try {
      // The key from the question's form alone: a zone file answering the name instead changes only on a reload.
      const lookup = classify(labels, this.zone.names);
      return this.build(q, labels.join("."), labels, lookup, questionKey(lookup));
    } catch (err) {
      this.counters.errors += 1;
      this.opts.logger.error({ err, name: labels.join("."), type: typeName(q.qtype) }, "DNS answer failed to build; answering SERVFAIL until the registry changes");
      // Cached: the ID and the RD and CD bits are patched in per query, so none of this query's go in.
      // The cached question is in lowercase, as in every cached answer (respond() copies a folded one in).
      const question = Buffer.from(questionOf(q));
      for (let i = 0; i < question.length - 4; i++) if (question[i]! >= 0x41 && question[i]! <= 0x5a) question[i] = question[i]! | 0x20;
      return { variants: [bareResponse({ id: 0, opcode: q.opcode, copiedFlags: 0 }, RCODE.SERVFAIL, false, this.ra, question, optSize(q), dnssecOk(q))], outside: false, key: ANY_CHANGE };
    }
  }

  private build(q: Query, qname: string, labels: readonly string[], lookup: Lookup, key: string | undefined): Built {
    const view = this.opts.view;
    const answer = this.zone.answer(qname, labels, q.qtype, view, lookup);
    const negative = answer.kind === "nxdomain" || answer.kind === "nodata";
    // Only a negative answer sends the SOA (the encoder's authority section); the others skip making one.
    const soa = answer.soa ?? (negative ? this.zone.soa(view, this.opts.settings.negativeTtl) : NO_SOA);
    const options = { qname, qtype: q.qtype, qclass: q.qclass, answer, soa, edns: ourEdns(q), recursionAvailable: this.ra };
    const outside = answer.kind === "refused";
    if (answer.variants !== undefined) {
      // A routed split: the turns repeat a few record lists (one per version and rotation), each encoded and
      // kept once, with the order of the turns.
      const index = new Map<readonly unknown[], number>();
      const variants: Buffer[] = [];
      const order = answer.variants.map((records) => {
        let i = index.get(records);
        if (i === undefined) {
          index.set(records, (i = variants.length));
          variants.push(encodeAnswer({ ...options, answer: { ...answer, answers: records } }));
        }
        return i;
      });
      return { variants, order, outside, key };
    }
    if (!answer.rotate) return { variants: [encodeAnswer(options)], outside, key };
    // A and AAAA sets rotate between queries: a few precomputed rotations spread clients over the instances.
    // A set over the answer limit gets enough windows of it to cover every instance (up to 255 of them).
    const n = answer.answers.length;
    const windows = answer.limit === undefined ? 0 : Math.ceil(n / answer.limit);
    const k = Math.min(n, Math.max(MAX_ROTATIONS, Math.min(windows, MAX_VARIANTS)));
    const shifts: number[] = [];
    for (let i = 0; i < k; i++) shifts.push(windows > MAX_ROTATIONS ? (i * answer.limit!) % n : Math.floor((i * n) / k));
    // Encoded once and each rotation written by the answer table, when they are reorderings of its records.
    const one = rotatable(options);
    if (one !== undefined && !outside) return { variants: NO_VARIANTS, rotations: { message: one.message, starts: one.starts, shifts }, outside, key };
    return { variants: encodeRotations(options, shifts), outside, key };
  }

  private count(rcode: number): void {
    this.rcodes[rcode] = (this.rcodes[rcode] ?? 0) + 1;
  }

  /** Serves these zones from files from now on (after a reload, say). */
  setStaticZones(zones: StaticZones | undefined): void {
    this.zone.statics = zones;
    this.answers.clear();
  }

  stats(): DnsStats {
    const byRcode: Record<string, number> = {};
    this.rcodes.forEach((n, rcode) => (byRcode[RCODE_NAMES[rcode] ?? String(rcode)] = n));
    const byType: Record<string, number> = {};
    this.qtypes.forEach((n, type) => n > 0 && (byType[type === COUNTED_TYPES ? "other" : typeName(type)] = n));
    return { ...this.counters, byRcode, byType, cachedAnswers: this.answers.size, cachedBytes: this.answers.bytes };
  }

  /** Binds UDP and TCP on the same port (with port 0, TCP takes the port UDP got). */
  async listen(listen: Listen): Promise<{ host: string; port: number }> {
    const family = isIP(listen.host) === 6 ? "udp6" : "udp4";
    for (let attempt = 0; ; attempt++) {
      // Replies go to the IP a query came from: a lookup that answers at once saves a tick per reply.
      // Replies only ever go to rinfo.address, an IP literal of the socket's own family: no isIP per reply either.
      const ipFamily = family === "udp6" ? 6 : 4;
      const udp = createSocket({ type: family, lookup: (address, _opts, callback) => callback(null, address, ipFamily) });
      const port = await new Promise<number>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(listen.port, listen.host, () => {
          udp.off("error", reject);
          resolve(udp.address().port);
        });
      });
      try {
        this.tcp = await this.listenTcp(listen.host, port);
      } catch (err) {
        udp.close();
        // Port 0: the port UDP got may be taken for TCP; try another.
        if (listen.port === 0 && attempt < 5) continue;
        throw err;
      }
      udp.on("message", (msg, rinfo) => {
        const client = this.clients?.of(rinfo.address) ?? TRUSTED_CLIENT;
        const response = this.queryLog ? this.handleLogged(msg, "udp", client, `${rinfo.address}:${rinfo.port}`) : this.handle(msg, "udp", client);
        if (response instanceof Promise) {
          void response.then((r) => r !== undefined && udp.send(r, rinfo.port, rinfo.address));
        } else if (response !== undefined) {
          udp.send(response, rinfo.port, rinfo.address);
        }
      });
      udp.on("error", (err) => this.opts.logger.warn({ err }, "DNS UDP socket error"));
      this.udp = udp;
      return { host: listen.host, port };
    }
  }

  private listenTcp(host: string, port: number): Promise<TcpServer> {
    const server = createServer((socket) => this.serveTcp(socket));
    server.maxConnections = this.opts.tcpMaxConnections ?? 256;
    server.on("drop", () => (this.counters.tcpRefused += 1));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve(server);
      });
    });
  }

  /** One TCP connection (tcp.ts): its client is trusted or not for forwarding; TCP is never rate limited. */
  private serveTcp(socket: Socket): void {
    this.connections.add(socket);
    socket.on("close", () => this.connections.delete(socket));
    const client = socket.remoteAddress && this.clients ? this.clients.of(socket.remoteAddress) : TRUSTED_CLIENT;
    const tcpClient: Client = client.trusted ? client : { trusted: false, bucket: undefined };
    const name = `${socket.remoteAddress}:${socket.remotePort}`;
    serveTcpConnection(socket, (message) => (this.queryLog ? this.handleLogged(message, "tcp", tcpClient, name) : this.handle(message, "tcp", tcpClient)), this.opts.tcpIdleMs ?? TCP_IDLE_MS);
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.forwarder?.close();
    const udp = this.udp;
    const tcp = this.tcp;
    for (const socket of this.connections) socket.destroy();
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
  }
}

/**
 * A question's type in the query log and the metrics: named below COUNTED_TYPES, the set the metrics count one
 * by one; above it TYPE<n> (CAA, named in zone file errors, is TYPE257 here).
 */
function typeName(type: number): string {
  return (type < COUNTED_TYPES ? TYPE_NAMES[type] : undefined) ?? `TYPE${type}`;
}

/** The OPT our bare responses carry when the query had EDNS: our payload size (0: no OPT), and the query's DO bit. */
function optSize(q: { edns: Query["edns"] }): number {
  return q.edns ? MAX_UDP_PAYLOAD : 0;
}
function dnssecOk(q: { edns: Query["edns"] }): boolean {
  return q.edns?.dnssecOk ?? false;
}

/** The OPT our response carries: our payload size and the query's DO bit, when the query had EDNS. */
function ourEdns(q: { edns: Query["edns"] }): { udpSize: number; dnssecOk: boolean } | undefined {
  return q.edns ? { udpSize: MAX_UDP_PAYLOAD, dnssecOk: q.edns.dnssecOk } : undefined;
}

/** A query log line's fields: the question as asked (id, name, type) and the answer's rcode, flags and size. */
function queryLine(packet: Buffer, response: Buffer | undefined): Record<string, unknown> {
  const q = parseQuery(packet);
  const question = q.ok
    ? { id: q.id, name: `${nameLabels(q, true).join(".")}.`, type: typeName(q.qtype) }
    : q.drop
      ? {}
      : { id: q.id };
  if (response === undefined) return { ...question, rcode: "dropped" };
  const rcode = response[3]! & 0x0f;
  return { ...question, rcode: RCODE_NAMES[rcode] ?? String(rcode), answers: (response[6]! << 8) | response[7]!, tc: (response[2]! & 0x02) !== 0, size: response.length };
}

/** A query for a cached question (its key: name folded, type, class) in this EDNS state, as refresh() builds it. */
function questionPacket(question: Buffer, state: number): Buffer {
  const header = Buffer.alloc(12);
  header[5] = 1; // QDCOUNT
  if (state === 0) return Buffer.concat([header, question]);
  header[11] = 1; // ARCOUNT: the OPT record
  return Buffer.concat([header, question, optRecord(MAX_UDP_PAYLOAD, 0, state === 2)]);
}
