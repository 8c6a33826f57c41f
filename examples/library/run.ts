// Runs an example against a server when HD_URL is set (e.g. HD_URL=http://127.0.0.1:8500), else embedded.
// In your own code, import from "homelab-discovery" instead of "../../src/index.js".
import { DiscoveryClient, startDiscovery, type DiscoveryApi } from "../../src/index.js";

export async function runExample(example: (api: DiscoveryApi) => Promise<unknown>): Promise<void> {
  const url = process.env.HD_URL;
  const api: DiscoveryApi = url
    ? new DiscoveryClient({ url, ...(process.env.HD_ADMIN_TOKEN ? { adminToken: process.env.HD_ADMIN_TOKEN } : {}) })
    : await startDiscovery({ nodeId: "example-node", clusterName: "example" });
  try {
    console.log(JSON.stringify(await example(api), null, 2));
  } finally {
    await api.stop();
  }
}

/** True when this module is the program being run (not imported by a test). */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && new URL(moduleUrl).pathname === process.argv[1];
}
