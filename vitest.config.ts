import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      { test: { name: "service", include: ["service/test/**/*.test.ts"], testTimeout: 30_000 } },
      // The CDK app and the smoke-test Lambda (synthesis, IAM, linters, the handler).
      {
        test: {
          name: "infra",
          include: ["infra/**/*.test.ts"],
          exclude: ["**/node_modules/**"],
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // The local AWS is one shared process: files run one after another.
          fileParallelism: false,
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
