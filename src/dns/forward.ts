// Forwarding of names outside our zone to upstream resolvers (--dns-upstream). The client's query goes out as
// it came, under an ID of ours; the reply comes back under the client's ID. Upstreams are tried in order, each
// for a timeout; a truncated UDP reply to a TCP client is asked again over TCP. Nothing is cached here: the
// upstream resolver caches.
import { randomInt } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, isIP } from "node:net";
import type { Listen } from "../lib/hostport.js";
import { tcpFrame } from "./wire.js";

const TIMEOUT_MS = 2_000;

interface Pending {
  resolve(reply: Buffer | undefined): void;
  timer: NodeJS.Timeout;
  /** Where the reply must come from: anything else with the same ID is spoofed or stray. */
  from: Listen;
}

export class Forwarder {
  private readonly sockets = new Map<4 | 6, UdpSocket>();
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(readonly upstreams: readonly Listen[]) {}

  /** The upstream's reply with the client's ID, or undefined when every upstream failed. */
  async forward(query: Buffer, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    if (this.closed) return undefined;
    const clientId = query.readUInt16BE(0);
    for (const upstream of this.upstreams) {
      let reply = await this.viaUdp(query, upstream);
      if (reply !== undefined && transport === "tcp" && (reply[2]! & 0x02) !== 0) reply = await this.viaTcp(query, upstream);
      if (reply !== undefined) {
        const out = Buffer.from(reply);
        out.writeUInt16BE(clientId, 0);
        return out;
      }
    }
    return undefined;
  }

  private viaUdp(query: Buffer, upstream: Listen): Promise<Buffer | undefined> {
    const socket = this.socketFor(isIP(upstream.host) === 6 ? 6 : 4);
    let id = randomInt(0x10000);
    for (let tries = 0; this.pending.has(id) && tries < 16; tries++) id = randomInt(0x10000);
    if (this.pending.has(id)) return Promise.resolve(undefined);
    const message = Buffer.from(query);
    message.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, TIMEOUT_MS);
      this.pending.set(id, { resolve, timer, from: upstream });
      socket.send(message, upstream.port, upstream.host, (err) => {
        if (err) this.settle(id, undefined);
      });
    });
  }

  private viaTcp(query: Buffer, upstream: Listen): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const socket = connect(upstream.port, upstream.host);
      let data = Buffer.alloc(0);
      const done = (reply: Buffer | undefined) => {
        socket.destroy();
        resolve(reply);
      };
      socket.setTimeout(TIMEOUT_MS, () => done(undefined));
      socket.on("error", () => done(undefined));
      socket.on("data", (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        if (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) done(data.subarray(2, 2 + data.readUInt16BE(0)));
      });
      socket.write(tcpFrame(query));
    });
  }

  private socketFor(family: 4 | 6): UdpSocket {
    let socket = this.sockets.get(family);
    if (socket === undefined) {
      socket = createSocket(family === 6 ? "udp6" : "udp4");
      socket.on("message", (msg, rinfo) => {
        if (msg.length < 12 || (msg[2]! & 0x80) === 0) return;
        const id = msg.readUInt16BE(0);
        const p = this.pending.get(id);
        if (p !== undefined && p.from.port === rinfo.port && sameHost(p.from.host, rinfo.address)) this.settle(id, msg);
      });
      socket.on("error", () => undefined);
      socket.unref();
      this.sockets.set(family, socket);
    }
    return socket;
  }

  private settle(id: number, reply: Buffer | undefined): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(reply);
  }

  close(): void {
    this.closed = true;
    for (const [id] of this.pending) this.settle(id, undefined);
    for (const socket of this.sockets.values()) socket.close();
    this.sockets.clear();
  }
}

function sameHost(configured: string, seen: string): boolean {
  return configured === seen || (configured === "localhost" && (seen === "127.0.0.1" || seen === "::1"));
}
