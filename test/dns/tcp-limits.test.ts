// DNS over TCP against hostile clients (issue 16, item 1): one that pipelines queries and never reads its
// answers, one that sends a byte at a time, too many connections, and too many forwarded queries in flight.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../../src/app/config.js";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { frame, Packet, query, tcp } from "./helpers.js";

let server: ServerHandle | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.stop();
  server = undefined;
});

async function start(overrides: Partial<Config> = {}): Promise<number> {
  server = await startTestServer(overrides);
  return server.dnsAddress.port;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.on("error", reject);
    sockets.push(socket);
  });
}

const closed = (socket: Socket) => new Promise<number>((resolve) => {
  const started = Date.now();
  if (socket.destroyed) resolve(0);
  socket.on("close", () => resolve(Date.now() - started));
});

describe("DNS over TCP, bounded", () => {
  it("stops reading a client that never reads its answers, and closes it: the answers it gets are bounded", async () => {
    const port = await start({ dnsTcpIdleTimeout: 1_000 });
    // 60 instances: each SRV answer is ~4.5 KB, so 40,000 answers (180 MB) are far more than the kernel's
    // buffers on loopback hold (tens of MB here): the rest would wait in the server's memory.
    const register = Array.from({ length: 60 }, (_, i) => ({ id: `big-${i}`, name: "big", address: `10.1.0.${i + 1}`, port: 9000 + i }));
    await api(server!.url, "POST", "/v1/services/bulk", { register });
    const socket = await open(port);
    socket.pause(); // never read
    const one = frame(query("_big._tcp.service.home.arpa", Packet.TYPE.SRV));
    const sent = 40_000;
    const batch = Buffer.concat(Array.from({ length: 1_000 }, () => one));
    for (let i = 0; i < sent / 1_000 && !socket.destroyed; i++) {
      if (!socket.write(batch)) await new Promise((resolve) => { socket.once("drain", resolve); socket.once("close", resolve); setTimeout(resolve, 100); });
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the idle timeout, with nothing processed
    const answered = server!.dns.stats().tcp;
    // Reading paused at 64 KiB of unread answers: the server handled what fits the buffers, not what was sent;
    // before, it answered all 40,000 and kept what the client did not read in its own memory.
    expect(answered).toBeLessThan(sent / 2);
    expect(answered).toBeGreaterThan(0);
    // Closed once no query completed for the idle timeout: the server let the connection go.
    expect((server!.dns as unknown as { connections: Set<unknown> }).connections.size).toBe(0);
    // And it still answers everyone else.
    const [reply] = await tcp(port, [query("home.arpa", Packet.TYPE.SOA)]);
    expect(Packet.parse(reply!).answers[0]!.type).toBe(Packet.TYPE.SOA);
  });

  it("closes a connection that sends a byte at a time: a byte does not restart the idle timer, a whole query does", async () => {
    const port = await start({ dnsTcpIdleTimeout: 500 });
    const slow = await open(port);
    const bytes = frame(query("home.arpa", Packet.TYPE.SOA));
    let i = 0;
    const drip = setInterval(() => !slow.destroyed && i < bytes.length && slow.write(bytes.subarray(i, ++i)), 100);
    const after = await closed(slow);
    clearInterval(drip);
    expect(after).toBeLessThan(1_500);
    expect(i).toBeLessThan(bytes.length); // closed before its query was complete

    // A client that sends whole queries more often than the timeout stays open past it.
    const busy = await open(port);
    busy.on("data", () => undefined);
    let stillOpen = true;
    busy.on("close", () => (stillOpen = false));
    for (let k = 0; k < 8; k++) {
      busy.write(bytes);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(stillOpen).toBe(true);
  });

  it("takes --dns-tcp-max-connections at once and closes the next as it arrives", async () => {
    const port = await start({ dnsTcpMaxConnections: 2 });
    const a = await open(port);
    const b = await open(port);
    const c = await open(port).catch(() => undefined);
    if (c) await closed(c);
    expect(server!.dns.stats().tcpRefused).toBe(1);
    // The two open ones still answer.
    for (const s of [a, b]) {
      const reply = new Promise<Buffer>((resolve) => s.once("data", resolve));
      s.write(frame(query("home.arpa", Packet.TYPE.SOA)));
      expect((await reply).length).toBeGreaterThan(12);
    }
  });

  it("lets at most 32 forwarded queries wait on one connection, and answers them as the upstream does", async () => {
    // An upstream that reads and never answers: every forwarded query waits its 2 s.
    const upstream: UdpSocket = createSocket("udp4");
    const seen: Buffer[] = [];
    upstream.on("message", (m) => seen.push(m));
    await new Promise<void>((resolve) => upstream.bind(0, "127.0.0.1", resolve));
    try {
      const port = await start({ dnsUpstream: [{ host: "127.0.0.1", port: (upstream.address() as AddressInfo).port }] });
      const socket = await open(port);
      socket.on("data", () => undefined);
      socket.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(query(`n${i}.example.test`, Packet.TYPE.A, { id: i })))));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(seen.length).toBe(32);
      expect(server!.dns.stats().forwarded).toBe(32);
    } finally {
      upstream.close();
    }
  });
});
