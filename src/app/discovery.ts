// The embedded registry as a library user starts it: the registry's facade with src/health's checker wired in.
import { DEFAULT_CHECKER_SETTINGS, HealthChecker, type CheckerSettings } from "../health/index.js";
import { Discovery, type DiscoveryOptions } from "../registry/index.js";

export interface EmbeddedOptions extends Omit<DiscoveryOptions, "checker"> {
  /** Health checking: timeouts, thresholds, concurrency (defaults in DEFAULT_CHECKER_SETTINGS). */
  checks?: Partial<CheckerSettings>;
}

/** The seed's `start_link`: an embedded registry with the seed's API, its health checker running. */
export function startDiscovery(opts: EmbeddedOptions = {}): Promise<Discovery> {
  const { checks, ...rest } = opts;
  const settings = { ...DEFAULT_CHECKER_SETTINGS, ...checks };
  return Discovery.start({ ...rest, checker: (registry, clock, logger) => new HealthChecker(registry, clock, logger, settings) });
}
