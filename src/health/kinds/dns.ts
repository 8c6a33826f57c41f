// DNS: a name (`query`) resolves (A or AAAA) through a given resolver, by default the instance itself (address:port, a DNS
// server being checked); with `expect`, to one of the expected addresses. No answer, NXDOMAIN, a timeout or only
// other addresses are unhealthy.
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import { z } from "zod";
import { listenSchema, urlHost, withDefaultPort } from "../../lib/hostport.js";
import { normaliseAddress } from "../../model/index.js";
import { defineKind } from "../kind.js";

const address = z.string().refine((a) => isIP(a) !== 0, "must be an IPv4 or IPv6 address");

const options = z.strictObject({
  /** The name to resolve (`name` is every check's own label). */
  query: z
    .string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
    .max(253, "must be at most 253 characters")
    .refine((n) => normaliseAddress(n) !== undefined && isIP(n) === 0, "must be a host name"),
  type: z.enum(["A", "AAAA"]).default("A"),
  /** host[:port] (port 53), an IP address: c-ares asks addresses only. */
  resolver: z
    .string()
    .transform((r, ctx) => {
      const parsed = listenSchema.safeParse(withDefaultPort(r, 53));
      if (!parsed.success || isIP(parsed.data.host) === 0) {
        ctx.addIssue({ code: "custom", message: "must be an IP address with an optional port (192.168.1.2, 127.0.0.1:5353, [::1]:53)" });
        return z.NEVER;
      }
      return parsed.data;
    })
    .optional(),
  expect: z.union([address, z.array(address).min(1).max(16)]).optional(),
});

export const dnsKind = defineKind({
  kind: "dns",
  options,
  target: (o, instance) => (o.resolver === undefined ? { host: instance.address, field: "address" } : { host: o.resolver.host, field: "resolver" }),
  probe: (o, ctx) => {
    const server = o.resolver ?? { host: ctx.address, port: ctx.port };
    const at = `${urlHost(server.host)}:${server.port}`;
    const expected = o.expect === undefined ? undefined : (Array.isArray(o.expect) ? o.expect : [o.expect]).map((a) => normaliseAddress(a)!);
    const label = `DNS ${o.type} ${o.query} at ${at}`;
    return {
      label,
      run: async (signal) => {
        if (isIP(server.host) === 0) throw new Error(`the resolver must be an IP address, not ${server.host}: set resolver`);
        // One try, no client-side cache: each run asks the server. The checker's signal ends it.
        const resolver = new Resolver({ tries: 1, timeout: 60_000 });
        resolver.setServers([at]);
        const cancel = () => resolver.cancel();
        signal.addEventListener("abort", cancel, { once: true });
        try {
          const answer = o.type === "A" ? await resolver.resolve4(o.query) : await resolver.resolve6(o.query);
          const found = answer.map((a) => normaliseAddress(a) ?? a);
          if (expected !== undefined && !found.some((a) => expected.includes(a))) {
            return { status: "unhealthy", output: `${label}: ${found.join(", ")}, none of ${expected.join(", ")}` };
          }
          return { status: "healthy", output: `${label}: ${found.join(", ")}` };
        } finally {
          signal.removeEventListener("abort", cancel);
        }
      },
    };
  },
});
