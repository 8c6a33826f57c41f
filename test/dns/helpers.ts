// Raw DNS over UDP and TCP for tests, with dns2's codec as an independent encoder and decoder.
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { connect } from "node:net";
import dns2 from "dns2";

export const { Packet } = dns2;

export function query(name: string, type: number, opts: { id?: number; rd?: boolean; edns?: { udpSize?: number; version?: number; do?: boolean } } = {}): Buffer {
  const p = new Packet();
  p.header.id = opts.id ?? 0x1234;
  p.header.rd = opts.rd === false ? 0 : 1;
  p.questions.push(new Packet.Question(name, type, Packet.CLASS.IN));
  if (opts.edns) {
    const e = opts.edns;
    const ttl = ((e.version ?? 0) << 16) | (e.do ? 0x8000 : 0);
    p.additionals.push({ name: "", type: Packet.TYPE.EDNS, class: e.udpSize ?? 4096, ttl, rdata: [] } as never);
  }
  return p.toBuffer();
}

/** Sends one datagram; resolves with the reply, or undefined when none comes within `waitMs`. */
export function udp(port: number, message: Buffer, waitMs = 500): Promise<Buffer | undefined> {
  const socket = createSocket("udp4");
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, waitMs);
    socket.on("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.send(message, port, "127.0.0.1");
  });
}

/** Sends length-prefixed messages on one TCP connection; resolves with that many replies. */
export function tcp(port: number, messages: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const replies: Buffer[] = [];
    let pending = Buffer.alloc(0);
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (replies.length === messages.length) {
        socket.end();
        resolve(replies);
      }
    });
    for (const m of messages) {
      const frame = Buffer.alloc(2 + m.length);
      frame.writeUInt16BE(m.length, 0);
      m.copy(frame, 2);
      socket.write(frame);
    }
  });
}

export function decode(buf: Buffer) {
  return Packet.parse(buf);
}

/** c-ares, through Node's dns module: the resolver most Node apps use. */
export function resolverFor(port: number): Resolver {
  const r = new Resolver({ timeout: 1000, tries: 2 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}
