// Forwarding of names outside our zone to upstream resolvers (--dns-upstream). The client's query goes out as
// it came, under an ID of ours; the reply comes back under the client's ID. Upstreams are tried in order, each
// for a timeout; a truncated UDP reply to a TCP client is asked again over TCP. Nothing is cached here: the
// upstream resolver caches. Each upstream has a connected UDP socket, so the kernel keeps other senders' datagrams
// out and an upstream that is not listening (ICMP port unreachable: ECONNREFUSED) fails at once, not after the
// timeout.
import { randomInt } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, isIP } from "node:net";
import type { Listen } from "../lib/hostport.js";
import { tcpFrame } from "./wire.js";

const TIMEOUT_MS = 2_000;

interface Pending {
  resolve(reply: Buffer | undefined): void;
  timer: NodeJS.Timeout;
  /** The upstream asked: its socket's error ends the wait. */
  socket: UdpSocket;
}

export class Forwarder {
  private readonly sockets = new Map<Listen, Promise<UdpSocket | undefined>>();
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

  private async viaUdp(query: Buffer, upstream: Listen): Promise<Buffer | undefined> {
    const socket = await this.socketFor(upstream);
    if (socket === undefined) return undefined;
    let id = randomInt(0x10000);
    for (let tries = 0; this.pending.has(id) && tries < 16; tries++) id = randomInt(0x10000);
    if (this.pending.has(id)) return undefined;
    const message = Buffer.from(query);
    message.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, TIMEOUT_MS);
      this.pending.set(id, { resolve, timer, socket });
      socket.send(message, (err) => {
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

  /** The upstream's connected socket; undefined when it cannot be connected (a name that does not resolve). */
  private socketFor(upstream: Listen): Promise<UdpSocket | undefined> {
    let socket = this.sockets.get(upstream);
    if (socket === undefined) {
      socket = new Promise((resolve) => {
        const s = createSocket(isIP(upstream.host) === 6 ? "udp6" : "udp4");
        s.on("message", (msg) => {
          if (msg.length < 12 || (msg[2]! & 0x80) === 0) return;
          const id = msg.readUInt16BE(0);
          if (this.pending.get(id)?.socket === s) this.settle(id, msg);
        });
        let connected = false;
        s.on("error", () => {
          if (!connected) {
            // The host did not resolve: try again on the next query.
            s.close();
            this.sockets.delete(upstream);
            return resolve(undefined);
          }
          // ECONNREFUSED: nothing listens there. Every query waiting on this upstream fails now.
          for (const [id, p] of this.pending) if (p.socket === s) this.settle(id, undefined);
        });
        s.unref();
        s.connect(upstream.port, upstream.host, () => {
          connected = true;
          resolve(s);
        });
      });
      this.sockets.set(upstream, socket);
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
    for (const socket of this.sockets.values()) void socket.then((s) => s?.close());
    this.sockets.clear();
  }
}
