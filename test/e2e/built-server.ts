// Starts the built server exactly as the README does (`npm start`), on free ports, and reads the ports back
// from its JSON startup log lines.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../..", import.meta.url));

export interface BuiltServer {
  url: string;
  dnsPort: number;
  /** The node process itself (npm and the shell run above it). */
  pid: number;
  log: () => string;
  stop(): Promise<void>;
}

export async function startBuiltServer(env: Record<string, string> = {}, args: string[] = ["--in-memory"]): Promise<BuiltServer> {
  const child: ChildProcess = spawn("npm", ["start", "--silent", "--", ...args], {
    cwd: root,
    // Self-registration off unless a test asks: the tests count and compare listings.
    env: { ...process.env, HD_HTTP_LISTEN: "127.0.0.1:0", HD_DNS_LISTEN: "127.0.0.1:0", HD_SELF_REGISTER: "false", ...env },
    stdio: ["ignore", "pipe", "inherit"],
    detached: true, // its own process group: npm, the shell and node stop together
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 15_000;
  while (!out.includes("HTTP API listening")) {
    if (Date.now() > end || child.exitCode !== null) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      throw new Error(`server did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const lines = out.trim().split("\n").map((l) => JSON.parse(l) as { msg: string; url?: string; address?: string; pid: number });
  const http = lines.find((l) => l.msg === "HTTP API listening")!;
  const dns = lines.find((l) => l.msg === "DNS listening")!;
  return {
    url: http.url!,
    dnsPort: Number(dns.address!.split(":").pop()),
    pid: http.pid,
    log: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      process.kill(-child.pid!, "SIGTERM");
      await exited;
    },
  };
}
