// The publish loop's driver on a manual clock: passes one at a time, a failed pass's backoff on the clock, a wake
// (the keepalive's first success) that cuts it short, and what sync() waits for.
import { describe, expect, it } from "vitest";
import { PassLoop, Timers } from "../../src/cluster/loop.js";
import { ManualClock } from "../../src/lib/clock.js";

/** Lets the promises that are ready run (no time passes on any clock). */
const settle = () => new Promise<void>((r) => setImmediate(r));

function setup() {
  const clock = new ManualClock();
  const passes: number[] = [];
  let failures = 0;
  const delays: number[] = [];
  let gate: Promise<void> | undefined;
  const loop = new PassLoop(
    clock,
    async () => {
      passes.push(clock.now());
      if (gate) await gate;
      if (failures > 0) {
        failures -= 1;
        throw new Error("etcd gone");
      }
    },
    () => {
      const d = [250, 500, 1_000][delays.length] ?? 1_000;
      delays.push(d);
      return d;
    },
  );
  const t0 = clock.now();
  return { clock, loop, passes: () => passes.map((t) => t - t0), delays, fail: (n: number) => (failures = n), hold: (p: Promise<void> | undefined) => (gate = p) };
}

describe("the pass loop", () => {
  it("runs a pass when kicked and ends; kicks during a pass make one more pass, not one each", async () => {
    const { loop, passes, hold } = setup();
    let open!: () => void;
    hold(new Promise((r) => (open = r)));
    loop.kick();
    loop.kick();
    await settle();
    expect(passes()).toEqual([0]);
    loop.kick();
    loop.kick();
    hold(undefined);
    open();
    await loop.current;
    expect(passes()).toEqual([0, 0]);
    expect(loop.current).toBeUndefined();
  });

  it("after a failed pass waits its backoff on the clock, then tries again", async () => {
    const { clock, loop, passes, delays, fail } = setup();
    fail(2);
    loop.kick();
    await settle();
    expect(passes()).toEqual([0]);
    clock.advance(249);
    await settle();
    expect(passes()).toEqual([0]);
    clock.advance(1);
    await settle();
    expect(passes()).toEqual([0, 250]);
    clock.advance(500);
    await loop.current;
    expect(passes()).toEqual([0, 250, 750]);
    expect(delays).toEqual([250, 500]);
    expect(clock.pending).toBe(0);
  });

  it("a wake ends the backoff at once (etcd answers again)", async () => {
    const { clock, loop, passes, fail } = setup();
    fail(1);
    loop.kick();
    await settle();
    clock.advance(100);
    loop.wake();
    await loop.current;
    expect(passes()).toEqual([0, 100]);
    expect(clock.pending).toBe(0); // the backoff's timer is gone
  });

  it("nextPass: true when a pass that starts after it goes through, false when it fails", async () => {
    const { clock, loop, fail } = setup();
    fail(1);
    expect(await loop.nextPass()).toBe(false);
    const next = loop.nextPass(); // wakes the backoff
    expect(await next).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it("stop: waiters are told no, the loop ends, kicks do nothing", async () => {
    const { clock, loop, passes, fail } = setup();
    fail(5);
    await loop.nextPass();
    const waiting = loop.nextPass();
    loop.stop();
    expect(await waiting).toBe(false);
    await loop.current;
    loop.kick();
    clock.advance(10_000);
    await settle();
    expect(loop.current).toBeUndefined();
    expect(passes()).toEqual([0]); // the woken loop saw the stop before a second pass
  });
});

describe("the cluster's timers", () => {
  it("every: repeats on the clock until stop; stop cancels what is set", () => {
    const clock = new ManualClock();
    const timers = new Timers(clock);
    let ticks = 0;
    let once = 0;
    timers.every(250, () => ticks++);
    timers.after(2_000, () => once++);
    clock.advance(1_000);
    expect(ticks).toBe(4);
    timers.stop();
    clock.advance(5_000);
    expect([ticks, once, clock.pending]).toEqual([4, 0, 0]);
    timers.after(10, () => once++); // stop's own deadline, set after
    clock.advance(10);
    expect(once).toBe(1);
  });
});
