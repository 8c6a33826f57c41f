# homelab-discovery: build with the dev dependencies, run with only the runtime ones, as a non-root user.
#   docker build -t homelab-discovery .
#   docker run -d -p 8500:8500 -p 8600:8600/udp -p 8600:8600/tcp -v hd-data:/data -e HD_ADMIN_TOKEN=... homelab-discovery
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; the build runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY examples ./examples
RUN npx tsc -p tsconfig.build.json

FROM node:24-bookworm-slim AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HD_HTTP_LISTEN=0.0.0.0:8500 \
    HD_DNS_LISTEN=0.0.0.0:8600 \
    HD_DATA_DIR=/data \
    HD_ZONES_DIR=/etc/homelab-discovery/zones \
    HD_SERVICES_DIR=/etc/homelab-discovery/services.d
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY zones /etc/homelab-discovery/zones
RUN mkdir -p /data /etc/homelab-discovery/services.d && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8500/tcp 8600/udp 8600/tcp
# The API's address from HD_HTTP_LISTEN (a wildcard is asked on loopback), over HTTPS with HD_TLS_CERT: src/healthcheck.ts.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD ["node", "dist/src/healthcheck.js"]
# SIGTERM (docker stop) drains requests, flushes the store and exits 0; SIGHUP reloads zones and services files.
ENTRYPOINT ["node", "dist/src/main.js"]
