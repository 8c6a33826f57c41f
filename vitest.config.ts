import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Node only: what needs Debian packages, root or a started etcd runs under `npm run test:e2e`.
    // test/cluster starts etcd in these four; the rest of it are the cluster's pure machines, without etcd.
    exclude: ["test/e2e/**", "test/cluster/{cluster,faults,etcd,example}.test.ts", "node_modules/**"],
    testTimeout: 15_000,
  },
});
