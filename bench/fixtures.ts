// The data set and queries every benchmark shares: varied names, tags and metadata, addresses in 10/8 only and
// no healthEndpoint or ttl, so no check ever runs and nothing contacts a non-loopback address.
import type { Discovery } from "../src/registry/discovery.js";
import type { ServiceInput } from "../src/model/schema.js";
import pino from "pino";
import { defaultConfig, type Config } from "../src/app/config.js";
import { startServer, type ServerHandle } from "../src/app/server.js";

/** 100k instances = 10k service names x 10 instances; smaller sets scale the number of names down. */
export const INSTANCES_PER_SERVICE = 10;

const TEAMS = [
  "platform", "payments", "search", "identity", "data", "ml", "infra", "web", "mobile", "billing",
  "growth", "ads", "security", "storage", "network", "observability", "media", "messaging", "maps", "support",
] as const;

/** Deterministic registration inputs. Instance k of service s: prod when k < 7, staging otherwise; team by s. */
export function instanceInputs(count: number): ServiceInput[] {
  const out: ServiceInput[] = [];
  for (let i = 0; i < count; i++) {
    const s = Math.floor(i / INSTANCES_PER_SERVICE);
    const k = i % INSTANCES_PER_SERVICE;
    out.push({
      id: `svc-${s}-${k}`,
      name: `svc-${s}`,
      version: `1.${s % 10}.${k}`,
      nodeId: `node-${i % 50}`,
      address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      port: 8000 + k,
      tags: [k < 7 ? "prod" : "staging", `zone-${k % 3}`, s % 2 === 0 ? "http" : "grpc"],
      metadata: { team: TEAMS[s % TEAMS.length]!, slot: String(k), region: `eu-${s % 4}`, commit: ((s * 2654435761) >>> 0).toString(16) },
    });
  }
  return out;
}

/**
 * The two queries, as raw query strings (what the HTTP route caches on).
 * selective: exactly one instance at any size; broad: 7 x (services / 20) instances (35 at 1k, 350 at 10k, 3500 at 100k).
 */
export const QUERIES = {
  selective: "name=svc-42&tag=prod&meta.slot=3",
  broad: "tag=prod&meta.team=platform",
} as const;
export type QueryName = keyof typeof QUERIES;
export const QUERY_NAMES = Object.keys(QUERIES) as QueryName[];

export function expectedCount(query: QueryName, instances: number): number {
  if (query === "selective") return 1;
  const services = Math.ceil(instances / INSTANCES_PER_SERVICE);
  let platform = 0;
  for (let s = 0; s < services; s += TEAMS.length) platform += 1;
  return platform * 7;
}

/** Registers through the public bulk API, in chunks of its 10k limit. Returns the wall time in ms. */
export async function registerAll(discovery: Discovery, inputs: readonly ServiceInput[]): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < inputs.length; i += 10_000) {
    await discovery.bulk({ register: inputs.slice(i, i + 10_000) });
  }
  return performance.now() - started;
}

/** A server as the in-process benchmarks run it: loopback port 0, in memory, silent unless `logLevel`. */
export async function startBenchServer(overrides: Partial<Config> = {}, logLevel: "silent" | "warn" = "silent"): Promise<ServerHandle> {
  const logger = logLevel === "silent" ? pino({ level: "silent" }) : pino({ level: logLevel }, pino.destination(2));
  return startServer(defaultConfig({ httpListen: { host: "127.0.0.1", port: 0 }, dnsListen: { host: "127.0.0.1", port: 0 }, inMemory: true, logLevel, ...overrides }), { logger });
}
