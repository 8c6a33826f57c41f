// The floor for bench/cluster.ts: the same hops as a cluster registration with none of our code in them.
// Role "a" answers PUT /v1/services/<id> (node:http): it parses the JSON body, sends the same txn our node sends
// (id claim compare-and-create, the instance and the claim on a lease) and, meanwhile, appends the body to a
// journal and fdatasyncs it, as our node's durable store does; it answers 201 once both are done. Role "b"
// watches the services prefix from the next revision and answers A queries over UDP for the names it holds
// (NOERROR with no answer until then). No validation, no registry, no cache: what is left is Node, grpc-js,
// etcd and the machine, so the gap between ours and this is what our code costs.
// Usage (started by bench/cluster.ts --relay): node dist/bench/relay.js a|b <etcd endpoint> <prefix> [journal]
import { createSocket } from "node:dgram";
import { open } from "node:fs/promises";
import { createServer } from "node:http";
import { Etcd3 } from "etcd3";

const [role, endpoint, prefix, journalPath] = process.argv.slice(2);
if ((role !== "a" && role !== "b") || !endpoint || !prefix) throw new Error("usage: relay.js a|b <etcd endpoint> <prefix> [journal]");
const client = new Etcd3({ hosts: [endpoint] });
const say = (msg: object) => process.stdout.write(`${JSON.stringify(msg)}\n`);

if (role === "a") {
  const lease = client.lease(10);
  const leaseId = await lease.grant();
  const journal = await open(journalPath ?? "/dev/null", "a");
  const self = Buffer.from("relay-a");
  const server = createServer((req, res) => {
    const id = decodeURIComponent(req.url!.slice("/v1/services/".length));
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const entry = JSON.parse(body.toString()) as object;
      const claim = Buffer.from(`${prefix}/ids/${id}`);
      const published = client.kv.txn({
        compare: [{ key: claim, target: "Create", result: "Equal", create_revision: 0 }],
        success: [
          { request_put: { key: Buffer.from(`${prefix}/services/relay-a/${id}`), value: Buffer.from(JSON.stringify({ v: 1, entry })), lease: leaseId } },
          { request_put: { key: claim, value: self, lease: leaseId } },
        ],
      });
      const written = journal.write(body).then(() => journal.datasync());
      Promise.all([published, written]).then(
        () => res.writeHead(201, { "content-type": "application/json" }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number };
    say({ msg: "relay listening", url: `http://127.0.0.1:${port}` });
  });
} else {
  const names = new Map<string, Buffer>();
  const watcher = await client.watch().prefix(`${prefix}/services/`).create();
  watcher.on("put", (kv) => {
    const { entry } = JSON.parse(kv.value.toString()) as { entry: { name: string; address: string } };
    names.set(entry.name, Buffer.from(entry.address.split(".").map(Number)));
  });
  const socket = createSocket("udp4");
  socket.on("message", (msg, from) => {
    // The question's first label is the name (<name>.service.home.arpa): all the driver asks.
    const label = msg.subarray(13, 13 + msg[12]!).toString();
    const question = msg.subarray(12);
    const address = names.get(label);
    const header = Buffer.from(msg.subarray(0, 12));
    header[2] = 0x84 | (msg[2]! & 0x01); // QR, AA, RD copied
    header[3] = 0x00;
    header.writeUInt16BE(address ? 1 : 0, 6);
    const parts: Buffer[] = [header, question];
    if (address) parts.push(Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]), address);
    socket.send(Buffer.concat(parts), from.port, from.address);
  });
  socket.bind(0, "127.0.0.1", () => say({ msg: "relay listening", dnsPort: socket.address().port }));
}
