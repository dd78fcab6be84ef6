# syntax=docker/dockerfile:1
# Targets:
#   consumer (default) — the event consumer for ECS / Kubernetes: one bundled file, production only.
#   dev                — serverless-offline with the handlers (docker-compose's `gateway` service).

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund

FROM deps AS dev
COPY . .
EXPOSE 9997 9998
CMD ["node_modules/.bin/serverless", "offline", "start", "--stage", "local", "--host", "0.0.0.0"]

FROM deps AS build
COPY . .
RUN npm run build:consumer

FROM node:24-bookworm-slim AS consumer
WORKDIR /app
# The consumer's live heap is 20-50 MB whatever the number of connections; left to itself on a host
# with memory to spare, V8 grows its heap to ~200 MB of mostly garbage (young generation 2 × 64 MB).
# These caps keep the process near 150 MB at full load, at no measured cost in events/s
# (docs/BENCHMARKS.md, "The consumer process").
ENV NODE_ENV=production \
    NODE_OPTIONS="--enable-source-maps --max-semi-space-size=16 --max-old-space-size=128" \
    CONSUMER_METRICS_PORT=9996
COPY --from=build /app/dist/consumer.js /app/dist/consumer.js.map ./
USER node
EXPOSE 9996
# Liveness on the metrics port, wherever CONSUMER_METRICS_PORT moves it. (ECS and Kubernetes ignore
# HEALTHCHECK: give the task / pod the same check, and probe /ready for readiness; docs/deploy.md.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.CONSUMER_METRICS_PORT||9996)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM (docker stop, ECS, Kubernetes) stops it cleanly: finish in-flight, commit, disconnect.
CMD ["node", "consumer.js"]
