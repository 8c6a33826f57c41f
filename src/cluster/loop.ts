// The publish loop's driver: one pass at a time, another if anything asked for one meanwhile, and after a failed
// pass a wait (on the clock) that a wake cuts short. What a pass does, and how long to wait, is the caller's.
// Timers: the cluster's other timers, on the clock, all cancelled at once on stop.
import type { Clock, Timer } from "../lib/clock.js";

export class PassLoop {
  private running: Promise<void> | undefined;
  private again = false;
  private soon = false;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  /** Told how the next pass went (true: through; false: it failed): what `nextPass` waits for. */
  private waiters: ((ok: boolean) => void)[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly pass: () => Promise<void>,
    /** A pass failed: how long to wait before the next, ms. */
    private readonly failed: (err: unknown) => number,
  ) {}

  /** The loop while it runs (it ends when no pass is asked for). */
  get current(): Promise<void> | undefined {
    return this.running;
  }

  /** Asks for a pass; a loop waiting out a backoff picks it up then (or when woken). */
  kick(): void {
    if (this.stopped) return;
    this.again = true;
    this.running ??= this.run().finally(() => (this.running = undefined));
  }

  /** A kick in the next tick, once however many ask for one in this tick. */
  kickSoon(): void {
    if (this.soon) return;
    this.soon = true;
    setImmediate(() => {
      this.soon = false;
      this.kick();
    });
  }

  /** Ends a backoff now. */
  wake(): void {
    this.wakeUp?.();
  }

  /** A pass that starts after this, now (a loop waiting out its backoff is woken): true if it went through. */
  nextPass(): Promise<boolean> {
    const pass = new Promise<boolean>((resolve) => this.waiters.push(resolve));
    this.kick();
    this.wake();
    return pass;
  }

  stop(): void {
    this.stopped = true;
    for (const tell of this.waiters.splice(0)) tell(false);
    this.wake();
  }

  private async run(): Promise<void> {
    while (this.again && !this.stopped) {
      this.again = false;
      const told = this.waiters;
      this.waiters = [];
      try {
        await this.pass();
        for (const tell of told) tell(true);
      } catch (err) {
        for (const tell of told) tell(false);
        if (this.stopped) return;
        const delayMs = this.failed(err);
        await new Promise<void>((resolve) => {
          let timer: Timer | undefined = this.clock.setTimer(() => {
            timer = undefined;
            resolve();
          }, delayMs);
          this.wakeUp = () => {
            if (timer !== undefined) this.clock.clearTimer(timer);
            resolve();
          };
        });
        this.wakeUp = undefined;
        this.again = true;
      }
    }
  }
}

export class Timers {
  private readonly set = new Set<Timer>();
  private stopped = false;

  constructor(private readonly clock: Clock) {}

  after(ms: number, fn: () => void, opts?: { holdsProcess?: boolean }): Timer {
    const timer = this.clock.setTimer(
      () => {
        this.set.delete(timer);
        fn();
      },
      ms,
      opts,
    );
    this.set.add(timer);
    return timer;
  }

  /** fn every ms, until stop. */
  every(ms: number, fn: () => void): void {
    this.after(ms, () => {
      if (this.stopped) return;
      this.every(ms, fn);
      fn();
    });
  }

  cancel(timer: Timer | undefined): void {
    if (timer === undefined) return;
    this.clock.clearTimer(timer);
    this.set.delete(timer);
  }

  /** Cancels every timer, and ends every `every`. Timers set after this still run (stop's own deadline). */
  stop(): void {
    this.stopped = true;
    for (const timer of [...this.set]) this.cancel(timer);
  }
}
