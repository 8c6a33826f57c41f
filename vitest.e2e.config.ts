import { defineConfig } from "vitest/config";

// End-to-end tests drive the built server (dist/) with real clients (curl, dig, glibc in a network namespace,
// HAProxy, dnsmasq, unbound) and start etcd for the cluster tests;
// `.ci/run` installs the Debian packages they need.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts", "test/cluster/**/*.test.ts"],
    testTimeout: 60_000,
    fileParallelism: false,
  },
});
