// Version-aware routing (issue 21): a policy per service name splits its traffic between versions, by weighted
// selectors ({"split": [{"version": "^2", "weight": 90}, {"version": "^3", "weight": 10}]}). Pure: the policy's
// schema and validation, which selector an instance's version falls under, and how a set of instances divides
// into weighted groups. Every answer that routes (DNS, the API with ?routed=true, the providers) uses route().
import semver from "semver";
import { z } from "zod";

export const MAX_SELECTORS = 8;

export interface RoutingSelector {
  /** A semver range ("^2", ">=1.2 <2"), an exact version, or any other version string, matched exactly. */
  readonly version: string;
  /** Percent of the service's traffic, 0-100; the selectors' weights sum to 100. */
  readonly weight: number;
}

export interface RoutingPolicy {
  readonly split: readonly RoutingSelector[];
}

/** Matches a version spec as queries do: the exact string, an equal semver version, or a semver range. */
export function versionMatcher(spec: string): (version: string) => boolean {
  const exact = semver.valid(spec);
  if (exact !== null) return (v) => v === spec || (semver.valid(v) !== null && semver.eq(v, exact));
  const range = semver.validRange(spec);
  if (range !== null) return (v) => v === spec || (semver.valid(v) !== null && semver.satisfies(v, range));
  return (v) => v === spec;
}

/**
 * The versions a DNS version label pins (`_v<pin>`, names.ts): digits joined by '-' are a semver prefix (`2` major 2,
 * `2-1` 2.1.x, `2-1-3` exactly 2.1.3; pre-releases excluded, as in ranges); any other label matches the versions
 * whose text, lowercased with '.' as '-', is the label (`blue`, `2-1-3-rc-1` for 2.1.3-rc.1).
 */
export function pinMatcher(pin: string): (version: string) => boolean {
  if (/^\d+(-\d+){0,2}$/.test(pin)) {
    const range = pin.split("-").map((n) => String(Number(n))).join(".");
    return (v) => semver.valid(v) !== null && semver.satisfies(v, range);
  }
  return (v) => v.toLowerCase().replace(/\./g, "-") === pin;
}

/** Whether some version would match both specs (so which selector it falls under would be ambiguous). */
function overlap(a: string, b: string): boolean {
  if (a === b) return true;
  const ra = semver.validRange(a);
  const rb = semver.validRange(b);
  if (ra !== null && rb !== null) {
    try {
      return semver.intersects(ra, rb);
    } catch {
      return false;
    }
  }
  // A spec that is not semver matches only itself: the other overlaps it when it matches that string.
  return versionMatcher(a)(b) || versionMatcher(b)(a);
}

const selectorSchema = z.strictObject({
  version: z.string("must be a version or a semver range").trim().min(1, "must not be empty").max(64, "must be at most 64 characters"),
  weight: z.number("must be a number").int("must be a whole number").min(0, "must be 0-100").max(100, "must be 0-100"),
});

export const routingPolicySchema = z
  .strictObject({
    split: z.array(selectorSchema, "must be a list of {version, weight}").min(1, "must have at least one selector").max(MAX_SELECTORS, `must have at most ${MAX_SELECTORS} selectors`),
  })
  .superRefine((policy, ctx) => {
    if (policy.split.length === 0) return;
    const total = policy.split.reduce((sum, s) => sum + s.weight, 0);
    if (total !== 100) ctx.addIssue({ code: "custom", path: ["split"], message: `weights must sum to 100 (they sum to ${total})` });
    policy.split.forEach((s, i) => {
      for (let j = 0; j < i; j++) {
        if (overlap(policy.split[j]!.version, s.version)) {
          ctx.addIssue({ code: "custom", path: ["split", i, "version"], message: `"${s.version}" overlaps "${policy.split[j]!.version}" (selector ${j}): a version may fall under one selector only` });
        }
      }
    });
  });

/** The index of the selector a version falls under, or -1 (the policy sends it no traffic). */
export function selectorOf(policy: RoutingPolicy, version: string): number {
  for (let i = 0; i < policy.split.length; i++) if (versionMatcher(policy.split[i]!.version)(version)) return i;
  return -1;
}

/** Selectors that match none of these versions: a warning, since a deployment may set the policy first. */
export function unmatchedSelectors(policy: RoutingPolicy, versions: Iterable<string>): string[] {
  const seen = [...versions];
  return policy.split.filter((s) => !seen.some((v) => versionMatcher(s.version)(v))).map((s) => s.version);
}

export interface RoutedGroup<T> {
  /** The selector's version spec; undefined for the fallback group. */
  readonly version: string | undefined;
  /** Percent of the traffic, over the groups that have instances: they sum to 100. */
  readonly weight: number;
  readonly instances: readonly T[];
}

export interface Routed<T> {
  readonly groups: readonly RoutedGroup<T>[];
  /**
   * No instance of any selector with weight: every instance is answered instead (one group), so a rollout never
   * black-holes traffic; callers say so (a log line, a metric).
   */
  readonly fellBack: boolean;
}

/**
 * The instances (already filtered for health, in their answer order) divided by the policy: one group per
 * selector with a weight and instances, its weight rescaled so the groups sum to 100 (a selector with no
 * instance gives its share to the others, in proportion). Instances under no selector, or one of weight 0, get
 * no traffic, unless no group has an instance: then all of them, as one group.
 */
export function route<T extends { readonly version: string }>(policy: RoutingPolicy, instances: readonly T[]): Routed<T> {
  const buckets: T[][] = policy.split.map(() => []);
  for (const e of instances) {
    const i = selectorOf(policy, e.version);
    if (i >= 0 && policy.split[i]!.weight > 0) buckets[i]!.push(e);
  }
  const live = policy.split.map((s, i) => ({ version: s.version, weight: s.weight, instances: buckets[i]! })).filter((g) => g.instances.length > 0);
  if (live.length === 0) return { groups: instances.length > 0 ? [{ version: undefined, weight: 100, instances }] : [], fellBack: instances.length > 0 };
  const total = live.reduce((sum, g) => sum + g.weight, 0);
  return { groups: live.map((g) => ({ ...g, weight: (g.weight * 100) / total })), fellBack: false };
}

/**
 * Which group answers each of `slots` queries in turn, in proportion to the weights and spread out (smooth
 * weighted round robin, as nginx balances): over any `slots` consecutive queries, each group's count is its
 * weight rounded, so A and AAAA answers, which carry no weight, split traffic per query.
 */
export function weightedSequence(weights: readonly number[], slots: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let s = 0; s < slots; s++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    out.push(best);
  }
  return out;
}
