import { defineConfig } from "vitest/config";

// End-to-end tests drive the built server (dist/) with real clients (curl, later dig, HAProxy, etcd);
// `.ci/run` installs the Debian packages they need.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts", "test/cluster/**/*.test.ts"],
    testTimeout: 60_000,
    fileParallelism: false,
  },
});
