# The AstroLens inference image, served by ECS and by SageMaker from the same digest.
#
# BUILD_IMAGE needs Node.js and npm, RUNTIME_IMAGE only Node.js; both Debian 13. On
# GitHub they are the official Node image. Locally nothing can be pulled, so
# scripts/base-image.sh makes localhost/astrolens-build:trixie and
# localhost/astrolens-base:trixie from Debian packages with debootstrap.
ARG BUILD_IMAGE=docker.io/library/node:20-trixie-slim
ARG RUNTIME_IMAGE=docker.io/library/node:20-trixie-slim

FROM ${BUILD_IMAGE} AS dependencies
WORKDIR /opt/astrolens
COPY service/package.json service/package-lock.json ./
# Production dependencies only; onnxruntime-node's install script would fetch CUDA
# libraries we never use. A proxy's CA (the optional ca-bundle build secret) is
# trusted for this one step and is not kept in any layer.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN --mount=type=secret,id=ca-bundle,required=false \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca-bundle \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 ! -path '*/linux/x64' -exec rm -rf {} + \
 && rm -rf /root/.npm

FROM ${RUNTIME_IMAGE}
ARG MODEL_VERSION=v2
ENV NODE_ENV=production \
    PORT=8080 \
    ORT_DISABLE_TELEMETRY=1 \
    ASTROLENS_MODEL_DIR=/opt/astrolens/models
WORKDIR /opt/astrolens
COPY --from=dependencies /opt/astrolens/node_modules ./node_modules
COPY service/package.json service/serve.js ./
COPY service/dist/server.js ./dist/server.js
# The model travels inside the image: one digest names code and model together, and
# promotion moves both (see service/models/README.md).
COPY service/models/${MODEL_VERSION}/ ./models/
# SageMaker runs `docker run <image> serve`: a `serve` on PATH makes that work.
RUN ln -s /opt/astrolens/serve.js /usr/local/bin/serve

USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["serve"]
