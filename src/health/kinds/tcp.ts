// TCP: connecting to the instance's address (at its port, or `port`) is healthy.
import { connect } from "node:net";
import { z } from "zod";
import { defineKind } from "../kind.js";
import { portOption } from "./options.js";

export const tcpKind = defineKind({
  kind: "tcp",
  options: z.strictObject({ port: portOption.optional() }),
  target: (_o, instance) => ({ host: instance.address, field: "address" }),
  probe: (o, ctx) => {
    const host = ctx.address;
    const port = o.port ?? ctx.port;
    const label = `TCP ${host}:${port}`;
    return {
      label,
      run: (signal) =>
        new Promise((resolve, reject) => {
          const socket = connect({ host, port, lookup: ctx.lookup });
          const done = (err?: Error) => {
            signal.removeEventListener("abort", abort);
            socket.destroy();
            if (err) reject(err);
            else resolve({ status: "healthy", output: `${label}: connected` });
          };
          const abort = () => done(new Error("aborted"));
          signal.addEventListener("abort", abort, { once: true });
          socket.once("connect", () => done());
          socket.once("error", (err) => done(err));
        }),
    };
  },
});
