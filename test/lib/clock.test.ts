// The system clock's timers: they do not keep the process alive, unless asked to (a graceful stop's deadline).
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const CLOCK = pathToFileURL(resolve(import.meta.dirname, "../../dist/src/lib/clock.js")).href;

/** What a process prints that sets one 50 ms timer and nothing else. */
function run(opts: string): string {
  const script = `import { systemClock } from ${JSON.stringify(CLOCK)}; systemClock.setTimer(() => console.log("fired"), 50${opts});`;
  return execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
}

describe("systemClock", () => {
  it("a timer does not keep the process alive", () => expect(run("")).toBe(""));
  it("one that holds the process is waited out", () => expect(run(", { holdsProcess: true }")).toBe("fired\n"));
});
