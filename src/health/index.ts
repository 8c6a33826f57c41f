// health: the checker that keeps every instance's health current. checker.ts schedules (intervals, jitter,
// concurrency, thresholds, backoff, TTLs, deregistration); probe.ts runs one check (HTTP over undici, TCP). It
// writes results into the registry, which never imports it.
export { DEFAULT_CHECKER_SETTINGS, HealthChecker, type CheckerSettings } from "./checker.js";
