// Raw DNS over UDP and TCP for tests, with dns2's codec as an independent encoder and decoder.
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { connect, type AddressInfo } from "node:net";
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

/** A message as DNS over TCP carries it: a two-byte length first (written here, not by the server's code). */
export function frame(message: Buffer): Buffer {
  const out = Buffer.alloc(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
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
    for (const m of messages) socket.write(frame(m));
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

export interface Upstream {
  port: number;
  /** `name/transport` of every question it got. */
  queries: string[];
  close(): Promise<void>;
}

/** A resolver to forward to, on loopback (a dns2 server, UDP and TCP on one port): it knows example.test (one A)
 * and big.example.test (60 A records), and answers NXDOMAIN for the rest. */
export async function startUpstream(): Promise<Upstream> {
  const queries: string[] = [];
  const handle = (transport: string) => (request: InstanceType<typeof Packet>, send: (r: InstanceType<typeof Packet>) => void) => {
    const response = Packet.createResponseFromRequest(request);
    const q = request.questions[0]!;
    queries.push(`${q.name}/${transport}`);
    response.header.aa = 1; // as an authoritative upstream (NSD, say) answers: AA set, RA clear
    if (q.name.toLowerCase() === "example.test" && q.type === Packet.TYPE.A) {
      response.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 300, address: "192.0.2.10" } as never);
    } else if (q.name.toLowerCase() === "big.example.test") {
      for (let i = 1; i <= 60; i++) response.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 300, address: `192.0.2.${i}` } as never);
    } else {
      response.header.rcode = 3;
    }
    send(response);
  };
  const udpServer = dns2.createUDPServer(handle("udp") as never);
  await udpServer.listen(0, "127.0.0.1");
  const port = (udpServer.address() as AddressInfo).port;
  const tcpServer = dns2.createTCPServer(handle("tcp") as never);
  await new Promise<void>((resolve) => tcpServer.listen(port, "127.0.0.1", resolve));
  return {
    port,
    queries,
    close: async () => {
      udpServer.close();
      await new Promise((resolve) => tcpServer.close(resolve));
    },
  };
}
