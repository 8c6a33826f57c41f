// TTL: the instance heartbeats (PUT /v1/services/<id>/heartbeat) at least every `ttl` ms; a missed one fails it.
import { z } from "zod";
import { LIMITS } from "../../model/index.js";
import { defineKind } from "../kind.js";

export const ttlKind = defineKind({
  kind: "ttl",
  options: z.strictObject({
    ttl: z.number({ error: (i) => (i.input === undefined ? "is required" : "must be a number of milliseconds") }).int("must be a whole number of milliseconds").min(LIMITS.minIntervalMs, `must be at least ${LIMITS.minIntervalMs} ms`).max(LIMITS.maxIntervalMs, `must be at most ${LIMITS.maxIntervalMs} ms`),
  }),
  heartbeat: true,
});
