// A gradual shift of a service's traffic from one version to another (issue 21): the steps a rollout takes
// (percent of traffic to the canary: 10, 25, 50, 100), the pause between them, and the health it must keep to go on.
// Pure: the request's schema, the policy at a step, and the verdict on the canary's health. The schedule, the
// timers and the store are the registry's (registry/rollout.ts).
import { z } from "zod";
import { inService, type ServiceEntry } from "./schema.js";
import { routingPolicySchema, versionMatcher, type RoutingPolicy } from "./routing.js";

export const DEFAULT_ROLLOUT_STEPS = [10, 25, 50, 100] as const;
export const MIN_ROLLOUT_PAUSE_MS = 100;
export const MAX_ROLLOUT_PAUSE_MS = 7 * 24 * 3600_000;

const versionSpec = z.string("must be a version or a semver range").trim().min(1, "must not be empty").max(64, "must be at most 64 characters");

export const rolloutRequestSchema = z
  .strictObject({
    /** The version traffic leaves (the stable one). */
    from: versionSpec,
    /** The canary. */
    to: versionSpec,
    /** Percent of traffic to `to` at each step, rising, ending at 100. */
    steps: z
      .array(z.number("must be a number").int("must be a whole number").min(1, "must be 1-100").max(100, "must be 1-100"), "must be a list of percents")
      .min(1, "must have at least one step")
      .max(20, "must have at most 20 steps")
      .default([...DEFAULT_ROLLOUT_STEPS]),
    /** Milliseconds between steps. */
    pauseMs: z
      .number("must be a number of milliseconds")
      .int("must be a whole number of milliseconds")
      .min(MIN_ROLLOUT_PAUSE_MS, `must be at least ${MIN_ROLLOUT_PAUSE_MS} ms`)
      .max(MAX_ROLLOUT_PAUSE_MS, `must be at most ${MAX_ROLLOUT_PAUSE_MS} ms (7 days)`),
    /** Percent of the canary's instances (those with a verdict) that must be healthy to go on; below it, rollback. */
    minHealthyPercent: z.number("must be a number").min(1, "must be 1-100").max(100, "must be 1-100").default(100),
  })
  .superRefine((r, ctx) => {
    r.steps.forEach((s, i) => {
      if (i > 0 && s <= r.steps[i - 1]!) ctx.addIssue({ code: "custom", path: ["steps", i], message: `must be above the step before it (${r.steps[i - 1]})` });
    });
    if (r.steps.length > 0 && r.steps[r.steps.length - 1] !== 100) ctx.addIssue({ code: "custom", path: ["steps"], message: "must end at 100 (the canary takes all the traffic)" });
    // The two versions as a policy: they must not overlap, as the selectors of any policy.
    const policy = routingPolicySchema.safeParse(splitAt(r, 50));
    if (!policy.success) for (const issue of policy.error.issues) if (issue.message.includes("overlaps")) ctx.addIssue({ code: "custom", path: ["to"], message: `"${r.to}" overlaps "${r.from}": no version may be both` });
  });
export type RolloutRequest = z.output<typeof rolloutRequestSchema>;

export type RolloutState = "running" | "completed" | "rolled-back" | "cancelled";

export interface RolloutRecord extends RolloutRequest {
  readonly state: RolloutState;
  /** Index into steps of the step in force. */
  readonly step: number;
  readonly startedAt: string;
  /** When the next step is due (ms since the epoch), while running. */
  readonly nextAt?: number;
  readonly endedAt?: string;
  /** Why it rolled back, or was cancelled. */
  readonly reason?: string;
}

/** The policy in force at `percent` of traffic to the canary: the rest stays on `from`. */
export function splitAt(r: Pick<RolloutRequest, "from" | "to">, percent: number): RoutingPolicy {
  return { split: [{ version: r.from, weight: 100 - percent }, { version: r.to, weight: percent }] };
}

export interface CanaryHealth {
  /** Instances of the canary version (in service, not in maintenance). */
  readonly instances: number;
  readonly healthy: number;
  /** Those whose checks have not spoken yet (unknown): no verdict either way. */
  readonly unknown: number;
  /** Percent of the instances with a verdict that are healthy; undefined without any verdict. */
  readonly healthyPercent: number | undefined;
}

/** How the canary fares: its instances among `entries` (one service's), counted by health. */
export function canaryHealth(entries: readonly ServiceEntry[], to: string): CanaryHealth {
  const matches = versionMatcher(to);
  let instances = 0;
  let healthy = 0;
  let unknown = 0;
  for (const e of entries) {
    if (!matches(e.version) || !inService(e)) continue;
    instances++;
    if (e.healthStatus === "healthy") healthy++;
    else if (e.healthStatus === "unknown") unknown++;
  }
  const judged = instances - unknown;
  return { instances, healthy, unknown, healthyPercent: judged > 0 ? (healthy * 100) / judged : undefined };
}

/**
 * Whether the rollout may go on ("ok"), must wait for a verdict ("wait": every canary instance is still unknown),
 * or must roll back, with the reason (no canary instance left, or too few healthy).
 */
export function rolloutVerdict(health: CanaryHealth, r: Pick<RolloutRequest, "to" | "minHealthyPercent">): { verdict: "ok" | "wait" } | { verdict: "rollback"; reason: string } {
  if (health.instances === 0) return { verdict: "rollback", reason: `no instance of version "${r.to}" is registered and in service` };
  if (health.healthyPercent === undefined) return { verdict: "wait" };
  if (health.healthyPercent < r.minHealthyPercent) {
    return { verdict: "rollback", reason: `${health.healthy} of ${health.instances - health.unknown} checked instances of "${r.to}" are healthy (${Math.round(health.healthyPercent)}%, below ${r.minHealthyPercent}%)` };
  }
  return { verdict: "ok" };
}
