import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Node only: what needs Debian packages, root or a started etcd runs under `npm run test:e2e`.
    // test/cluster starts etcd, except its pure unit tests (preservation.test.ts).
    exclude: ["test/e2e/**", "test/cluster/!(preservation).test.ts", "node_modules/**"],
    testTimeout: 15_000,
  },
});
