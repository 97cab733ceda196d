# syntax=docker/dockerfile:1
# faceopt CPU image: `faceopt serve` on :5555 with onnxruntime's CPU provider.
#
#   docker build -t faceopt:cpu .
#   docker run --init -p 5555:5555 -v "$PWD/models:/models" faceopt:cpu            # promoted variant (models/manifest.json)
#   docker run --init -p 5555:5555 -v faceopt-models:/models -e FACEOPT_FETCH=buffalo_sc \
#     -e FACEOPT_DETECTOR=buffalo_sc/det_500m -e FACEOPT_RECOGNIZER=buffalo_sc/w600k_mbf faceopt:cpu
#
# Three stages: `build` compiles the TypeScript with the full dependency tree; `deps` installs the
# production dependencies only and prunes them to this platform (scripts/prune-runtime.sh); `runtime`
# copies dist/ and the pruned node_modules onto the slim Node image, with no compiler, no npm cache and
# a non-root user. Sizes and how they were measured: docs/deploy.md.
#
# The base image is pinned by tag. For reproducible builds pin the digest too, e.g.
#   docker buildx imagetools inspect node:24.22.3-bookworm-slim   # -> sha256:...
#   docker build --build-arg NODE_IMAGE=node:24.22.3-bookworm-slim@sha256:<digest> .
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: compile TypeScript -------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json .npmrc ./
# scripts off: `prepare` would compile before the sources are here; onnxruntime-node's CPU binding ships in the package
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY pipeline ./pipeline
COPY server ./server
COPY bench ./bench
COPY test/fixtures ./test/fixtures
RUN npm run build \
 && rm -rf dist/test dist/bench dist/.tsbuildinfo \
 && find dist -name '*.map' -delete

# ---- deps: production dependencies for this platform only ---------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts
COPY scripts/prune-runtime.sh /tmp/prune-runtime.sh
RUN bash /tmp/prune-runtime.sh node_modules

# ---- runtime -------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="faceopt" \
      org.opencontainers.image.description="InsightFace face detection and embeddings over HTTP (CPU)" \
      org.opencontainers.image.licenses="MIT"
# pino writes each JSON log line straight to fd 1 (Node does not block-buffer stdout), so logs reach
# `docker logs` as they happen; there is no PYTHONUNBUFFERED to set.
# jemalloc: with glibc's malloc the freed buffers of large image decodes stay in the process (its mmap
# threshold grows after the first one): RSS 1.47-1.97x up after `npm run bench:hostile` (2,000 hostile
# requests); a fixed MALLOC_MMAP_THRESHOLD_ gave 1.07-1.17x; jemalloc 0.99x (sharp recommends it too)
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc.so.2$')" /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2
ENV NODE_ENV=production \
    FACEOPT_MODELS=/models \
    ORT_DISABLE_TELEMETRY=1
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY models/zoo.json ./models/zoo.json
COPY deploy/docker-entrypoint.sh /usr/local/bin/faceopt-entrypoint
RUN ln -s /app/bin/faceopt.js /usr/local/bin/faceopt \
 && mkdir -p /models \
 && chown node:node /models
USER node
VOLUME ["/models"]
EXPOSE 5555
# /health answers 200 as soon as the port is open; with --workers N nothing on the port answers until a
# worker's models are warm, hence the start period. Node's fetch: no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5555/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["faceopt-entrypoint"]
CMD ["faceopt", "serve", "--host", "0.0.0.0", "--port", "5555"]
