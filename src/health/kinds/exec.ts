// exec: a command run here (no shell), as Consul's script checks: exit 0 healthy, 1 degraded (Consul's warning),
// anything else unhealthy; killed (its process group) at the timeout. Off unless --checks-allow-exec, and never
// from an open API: Consul's enable_script_checks let anyone who reached its API run commands. With the flag, exec
// checks come from --services-dir files, or through the API only when --admin-token is set; never from container
// labels. The command gets PATH only from our environment (ours may hold the admin token).
import { spawn } from "node:child_process";
import { z } from "zod";
import { defineKind } from "../kind.js";
import { capText, MAX_OUTPUT_BYTES } from "./output.js";

export const execKind = defineKind({
  kind: "exec",
  options: z.strictObject({
    command: z
      .array(z.string().min(1, "must not be empty").max(4096, "must be at most 4096 characters"), { error: (i) => (i.input === undefined ? "is required" : "must be an array: the program, then its arguments") })
      .min(1, "must name the program to run")
      .max(64, "at most 64 arguments"),
  }),
  refusal: (_o, ctx) => {
    if (!ctx.allowExec) return { field: "kind", message: "exec checks are off: start the server with --checks-allow-exec to run them" };
    if (ctx.origin === "docker") return { field: "kind", message: "exec checks are never taken from container labels" };
    if (ctx.origin === "api" && !ctx.authenticatedApi) {
      return { field: "kind", message: "exec checks through the API need --admin-token and no --write-token (anyone who reaches an open API, or holds a service's write token, could run commands here); or declare them in a --services-dir file" };
    }
    return undefined;
  },
  probe: (o) => {
    const [program, ...args] = o.command as [string, ...string[]];
    return {
      label: `exec ${program}`,
      run: (signal) =>
        new Promise((resolve, reject) => {
          // Its own process group, so the timeout kills what it started too (a shell's children).
          const child = spawn(program, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
          const chunks: Buffer[] = [];
          let size = 0;
          const take = (b: Buffer) => {
            if (size < MAX_OUTPUT_BYTES) chunks.push(b);
            size += b.length;
          };
          child.stdout.on("data", take);
          child.stderr.on("data", take);
          const kill = () => {
            try {
              process.kill(-child.pid!, "SIGKILL");
            } catch {
              child.kill("SIGKILL");
            }
          };
          signal.addEventListener("abort", kill, { once: true });
          child.once("error", (err) => {
            signal.removeEventListener("abort", kill);
            reject(err);
          });
          child.once("close", (code, sig) => {
            signal.removeEventListener("abort", kill);
            if (signal.aborted) return reject(new Error("killed at the timeout"));
            const text = capText(Buffer.concat(chunks).toString("utf8").trim(), MAX_OUTPUT_BYTES);
            const head = sig !== null ? `killed by ${sig}` : `exit ${code}`;
            resolve({ status: code === 0 ? "healthy" : code === 1 ? "degraded" : "unhealthy", output: text === "" ? head : `${head}: ${text}` });
          });
        }),
    };
  },
});
