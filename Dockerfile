# The AstroLens inference image, served by ECS and by SageMaker from the same digest.
#
# BASE_IMAGE must give Debian 13 with Node.js on PATH. On GitHub it is the official
# Node image; locally (no registry to pull from) `astrolens-release local up` builds
# localhost/astrolens-base:trixie from Debian packages with debootstrap.
ARG BASE_IMAGE=docker.io/library/node:20-trixie-slim
FROM ${BASE_IMAGE}

ENV NODE_ENV=production \
    PORT=8080 \
    ORT_DISABLE_TELEMETRY=1

WORKDIR /opt/astrolens
COPY service/ ./

# SageMaker runs `docker run <image> serve`: a `serve` on PATH makes that work.
RUN ln -s /opt/astrolens/serve.js /usr/local/bin/serve

USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["serve"]
