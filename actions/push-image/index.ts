// The entrypoint the runner executes (bundled to dist/); the logic is in main.ts.
import { run } from "./main.js";

await run();
