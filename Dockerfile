# Fulcrum: compiled with the dev toolchain, run with production dependencies only.
#
#   docker build -t fulcrum .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/fulcrum.yaml:/etc/fulcrum/fulcrum.yaml:ro" fulcrum
#
# In the container, listeners must bind 0.0.0.0 (not 127.0.0.1) to be reachable
# through -p; so must admin.listen, which then needs admin.token.
# Fulcrum handles SIGTERM itself: it drains and exits 0 within shutdownTimeout
# (default 30s). Give `docker stop` longer than that: docker stop -t 35.

# The Node.js line (README, "Supported Node.js": 20, 22, 24, 26):
#   docker build --build-arg NODE_VERSION=24 -t fulcrum .
ARG NODE_VERSION=26
ARG NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim

# ---- build: TypeScript to dist/ --------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `npm ci` would otherwise run the "prepare" script (a full
# build) before the sources are here; the build runs once, below.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
# The server, and the dashboard page's files in dist/admin/dashboard/.
RUN npm run build

# ---- runtime: dist/ and production dependencies ----------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no "prepare" build here (no compiler, no sources).
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# The examples ship in the package ("files"); `fulcrum demo` reads quickstart.yaml.
COPY examples ./examples
# The official image's unprivileged user (uid 1000). Fulcrum writes no files.
USER node
EXPOSE 8080 9901
# Liveness on the admin API's /healthz (never needs admin.token), with node
# itself: the image has no curl. 127.0.0.1:9901 reaches the default
# admin.listen (127.0.0.1:9901) and the 0.0.0.0:9901 a container config uses
# (examples/compose-fulcrum.yaml, examples/kubernetes); set
# FULCRUM_HEALTHCHECK_URL (docker run -e) if admin.listen has another port.
ENV FULCRUM_HEALTHCHECK_URL=http://127.0.0.1:9901/healthz
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('http').get(process.env.FULCRUM_HEALTHCHECK_URL, { timeout: 2000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM directly. Fulcrum starts no
# child processes, so there are no zombies to reap (add `docker run --init` if
# you want a reaper anyway).
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--config", "/etc/fulcrum/fulcrum.yaml"]
