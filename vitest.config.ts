import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Node only: what needs Debian packages, root or a started etcd runs under `npm run test:e2e`.
    exclude: ["test/e2e/**", "test/cluster/**", "node_modules/**"],
    testTimeout: 15_000,
  },
});
