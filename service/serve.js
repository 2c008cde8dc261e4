#!/usr/bin/env node
// The container entry. SageMaker starts the image as `docker run <image> serve`, ECS
// with the image's default command (also `serve`); both reach the bundled server.
const { main } = await import(new URL("./dist/server.js", import.meta.url).href);
await main();
