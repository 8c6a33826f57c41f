// gRPC health (grpc.health.v1.Health/Check): SERVING is healthy; NOT_SERVING, SERVICE_UNKNOWN, an error or no
// answer unhealthy. Plaintext (h2c) to the instance's address, at its port or `port`; `service` names the service
// asked about ("" is the server as a whole). The two one-field messages are encoded here, so no .proto is loaded;
// @grpc/grpc-js (there for etcd3 already) is loaded on the first gRPC check.
import { isIP } from "node:net";
import { promisify } from "node:util";
import { z } from "zod";
import { defineKind } from "../kind.js";
import { portOption } from "./options.js";

type Grpc = typeof import("@grpc/grpc-js");
let grpc: Promise<Grpc> | undefined;
const loadGrpc = (): Promise<Grpc> => (grpc ??= import("@grpc/grpc-js"));

/** HealthCheckRequest { string service = 1; }: the field's tag, its length (a varint), its bytes. */
export function encodeHealthRequest(service: string): Buffer {
  const bytes = Buffer.from(service, "utf8");
  if (bytes.length === 0) return Buffer.alloc(0);
  const length: number[] = [];
  for (let n = bytes.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...length]), bytes]);
}

/** HealthCheckResponse { ServingStatus status = 1; }: the status (0 when absent, as proto3 leaves a default out). */
export function decodeHealthResponse(buf: Buffer): number {
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; at < buf.length; shift += 7) {
      const b = buf[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    throw new Error("a truncated HealthCheckResponse");
  };
  let status = 0;
  while (at < buf.length) {
    const tag = varint();
    const wire = tag & 7;
    if (tag >>> 3 === 1 && wire === 0) status = varint();
    else if (wire === 0) varint();
    else if (wire === 2) at += varint();
    else throw new Error(`a HealthCheckResponse with wire type ${wire}`);
  }
  return status;
}

const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

export const grpcKind = defineKind({
  kind: "grpc",
  options: z.strictObject({
    port: portOption.optional(),
    service: z.string().max(256, "must be at most 256 characters").default(""),
  }),
  target: (_o, instance) => ({ host: instance.address, field: "address" }),
  probe: (o, ctx) => {
    const port = o.port ?? ctx.port;
    const label = `gRPC ${ctx.address}:${port} ${o.service === "" ? "(server)" : o.service}`;
    const request = encodeHealthRequest(o.service);
    const lookup = promisify(ctx.lookup) as unknown as (host: string, options: object) => Promise<{ address: string; family: number }>;
    let client: import("@grpc/grpc-js").Client | undefined;
    let connectedTo: string | undefined;
    return {
      label,
      run: async (signal) => {
        const g = await loadGrpc();
        // The address resolved through the checks' lookup (which refuses metadata addresses), not by grpc-js itself.
        const { address, family } = isIP(ctx.address) !== 0 ? { address: ctx.address, family: isIP(ctx.address) } : await lookup(ctx.address, {});
        const target = family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
        if (client === undefined || connectedTo !== target) {
          client?.close();
          // Reconnect soon after a restart of the instance (grpc-js backs off up to 120 s by default).
          client = new g.Client(target, g.credentials.createInsecure(), { "grpc.initial_reconnect_backoff_ms": 500, "grpc.max_reconnect_backoff_ms": 5_000, "grpc.enable_retries": 0, "grpc.max_receive_message_length": 4096 });
          connectedTo = target;
        }
        const status = await new Promise<number>((resolve, reject) => {
          const call = client!.makeUnaryRequest("/grpc.health.v1.Health/Check", (b: Buffer) => b, decodeHealthResponse, request, new g.Metadata(), {}, (err, value) => {
            signal.removeEventListener("abort", cancel);
            if (err) reject(Object.assign(new Error(err.details || err.message), { code: g.status[err.code] ?? err.code }));
            else resolve(value!);
          });
          const cancel = () => call.cancel();
          signal.addEventListener("abort", cancel, { once: true });
        });
        const name = SERVING_STATUS[status] ?? `status ${status}`;
        return { status: status === 1 ? "healthy" : "unhealthy", output: `${label}: ${name}` };
      },
      close: () => {
        client?.close();
        client = undefined;
      },
    };
  },
});
