// Time is injected: the registry, cache and health checker read it and set their timers here, so tests
// control it exactly instead of sleeping.
export interface Timer {
  readonly dueAt: number;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Runs fn after ms. Timers do not keep the process alive, unless `holdsProcess`: a deadline the process must
   * wait out (a graceful stop's, when nothing else may be left to keep it running).
   */
  setTimer(fn: () => void, ms: number, opts?: { holdsProcess?: boolean }): Timer;
  clearTimer(timer: Timer): void;
}

class SystemTimer implements Timer {
  constructor(
    readonly dueAt: number,
    readonly handle: NodeJS.Timeout,
  ) {}
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms, opts) {
    const handle = setTimeout(fn, ms);
    if (!opts?.holdsProcess) handle.unref();
    return new SystemTimer(Date.now() + ms, handle);
  },
  clearTimer(timer) {
    if (timer instanceof SystemTimer) clearTimeout(timer.handle);
  },
};

interface ManualTimer extends Timer {
  readonly fn: () => void;
  readonly seq: number;
}

/** A clock tests move by hand: advance() fires due timers in order, each at its own time. */
export class ManualClock implements Clock {
  private timers: ManualTimer[] = [];
  private seq = 0;

  constructor(private current = Date.parse("2026-01-01T00:00:00.000Z")) {}

  now(): number {
    return this.current;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const timer: ManualTimer = { dueAt: this.current + Math.max(0, ms), fn, seq: this.seq++ };
    this.timers.push(timer);
    return timer;
  }

  clearTimer(timer: Timer): void {
    this.timers = this.timers.filter((t) => t !== timer);
  }

  /** Moves time forward by ms, running every timer that falls due on the way (and any they set). */
  advance(ms: number): void {
    const end = this.current + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.dueAt <= end).sort((a, b) => a.dueAt - b.dueAt || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.dueAt);
      next.fn();
    }
    this.current = end;
  }

  /** How many timers are waiting. */
  get pending(): number {
    return this.timers.length;
  }
}
