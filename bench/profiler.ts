// A CPU profile of the serving phase only (started after setup, written at stop), via the inspector protocol,
// so registration at startup does not crowd the profile. Used by the servers' --profile option.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

export async function startProfiler(file: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}
