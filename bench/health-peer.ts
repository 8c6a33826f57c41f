// The health endpoints the health benchmark checks: plain node:http servers on loopback only (127.0.0.1 ..
// 127.0.0.<addresses>, <ports> ports each), in their own process so their CPU is not counted as the server's.
// GET /health/<id> answers 200 "ok", or 500 while <id> is failing. With --mix, also a DNS responder on each
// address and port over UDP (every A question answered with the address asked) and a grpc-js server with
// grpc.health.v1.Health/Check (always SERVING) on each address at one more port. Forked with IPC: sends {ready,
// ports, grpcPort} once listening; takes {fail: id}, {pass: id} (answered {ack}) and {count: true} (answered
// {requests}, HTTP, DNS and gRPC together).
import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:http";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import dns2 from "dns2";

const { values } = parseArgs({ options: { addresses: { type: "string", default: "10" }, ports: { type: "string", default: "4" }, mix: { type: "boolean", default: false } } });
const addresses = Number(values.addresses);
const portCount = Number(values.ports);
if (!(addresses >= 1 && addresses <= 254)) throw new Error("--addresses must be 1-254 (127.0.0.1 .. 127.0.0.<n>)");

const failing = new Set<string>();
let requests = 0;
const ok = Buffer.from("ok");
const bad = Buffer.from("failing on purpose");

function handler(req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse): void {
  requests += 1;
  const url = req.url ?? "";
  const id = url.startsWith("/health/") ? url.slice(8) : "";
  const body = failing.has(id) ? bad : ok;
  res.writeHead(body === bad ? 500 : 200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
}

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ keepAliveTimeout: 60_000 }, handler);
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

// Ports are picked on 127.0.0.1 and reused on the other loopback addresses; a clash there retries with new ones.
async function listenAll(): Promise<{ servers: Server[]; ports: number[] }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const servers: Server[] = [];
    try {
      const ports: number[] = [];
      for (let p = 0; p < portCount; p++) {
        const s = await listen("127.0.0.1", 0);
        servers.push(s);
        ports.push((s.address() as import("node:net").AddressInfo).port);
      }
      for (let a = 2; a <= addresses; a++) for (const port of ports) servers.push(await listen(`127.0.0.${a}`, port));
      return { servers, ports };
    } catch {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error("could not bind the health servers");
}

const { servers, ports } = await listenAll();

/** UDP DNS on every address and port: A questions answered with 127.0.0.<a>. */
async function listenDns(): Promise<() => void> {
  const { Packet } = dns2;
  const sockets: ReturnType<typeof createSocket>[] = [];
  for (let a = 1; a <= addresses; a++) {
    for (const port of ports) {
      const socket = createSocket("udp4");
      socket.on("message", (msg, rinfo) => {
        requests += 1;
        const req = Packet.parse(msg);
        const res = Packet.createResponseFromRequest(req);
        const q = req.questions[0];
        if (q !== undefined && q.type === Packet.TYPE.A) res.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 5, address: `127.0.0.${a}` } as never);
        socket.send(res.toBuffer(), rinfo.port, rinfo.address);
      });
      await new Promise<void>((resolve) => socket.bind(port, `127.0.0.${a}`, resolve));
      sockets.push(socket);
    }
  }
  return () => sockets.forEach((s) => s.close());
}

/** gRPC health on every address at one port (picked on 127.0.0.1): SERVING (08 01) to every Check. */
async function listenGrpc(): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  const bytes = (b: Buffer) => b;
  const serving = Buffer.from([0x08, 0x01]);
  server.addService(
    { Check: { path: "/grpc.health.v1.Health/Check", requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes } },
    {
      Check: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => {
        requests += 1;
        callback(null, serving);
      },
    },
  );
  const bind = (address: string) => new Promise<number>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const port = await bind("127.0.0.1:0");
  for (let a = 2; a <= addresses; a++) await bind(`127.0.0.${a}:${port}`);
  return { port, server };
}

const closeDns = values.mix ? await listenDns() : undefined;
const grpcServer = values.mix ? await listenGrpc() : undefined;
process.on("message", (msg: { fail?: string; pass?: string; count?: boolean }) => {
  if (msg.fail !== undefined) failing.add(msg.fail);
  if (msg.pass !== undefined) failing.delete(msg.pass);
  if (msg.count) process.send!({ requests });
  else process.send!({ ack: true });
});
process.on("disconnect", () => {
  for (const s of servers) s.close();
  closeDns?.();
  grpcServer?.server.forceShutdown();
  process.exit(0);
});
process.on("SIGTERM", () => process.exit(0));
process.send!({ ready: true, ports, listeners: servers.length, grpcPort: grpcServer?.port });
