#!/usr/bin/env node
// The container entry. SageMaker starts the image as `docker run <image> serve`, ECS
// with the image's default command; both reach this HTTP server on port 8080.
//
// Models are not served yet (the model build and inference path come with the
// inference-service issue): /ping and /healthz report that honestly, and
// /invocations answers 503 rather than pretending to classify.
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 8080);
const version = process.env.ASTROLENS_MODEL_VERSION ?? "none";

const server = createServer((request, response) => {
  const send = (status, body) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  };
  if (request.method === "GET" && (request.url === "/ping" || request.url === "/healthz")) {
    return send(200, { status: "ok", modelVersion: version, modelsLoaded: false });
  }
  if (request.method === "POST" && request.url === "/invocations") {
    return send(503, { error: "no model is loaded in this build of the service" });
  }
  return send(404, { error: `no route for ${request.method} ${request.url}` });
});

server.listen(port, () => console.log(`astrolens inference listening on :${port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
