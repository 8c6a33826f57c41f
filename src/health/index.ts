// health: the checker that keeps every instance's health current. checker.ts schedules (intervals, jitter,
// concurrency, thresholds, backoff, TTLs, deregistration); kind.ts is what a check kind is (a name, a zod schema
// for its options, a probe whose run(signal) returns status and output), kinds/ holds them (http, tcp, ttl, ...),
// specs.ts reads an entry's checks into them. It writes results into the registry, which never imports it.
export { DEFAULT_CHECKER_SETTINGS, HealthChecker, type CheckerSettings } from "./checker.js";
