# syntax=docker/dockerfile:1
# The webhook on Node.js 26, the current LTS line, on Debian slim. BASE is any image with node and npm on PATH and
# an unprivileged user 1000; a release build pins it by digest (--build-arg BASE=node:26-trixie-slim@sha256:…).
# The image test builds its own BASE from Debian packages and the npm registry's Node binary of the same major.
ARG BASE=node:26-trixie-slim

# Build stage: compile TypeScript with the dev dependencies.
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed apart so no dev tool reaches the runtime image.
FROM ${BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

FROM ${BASE}
ARG BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="regroute" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that routes pod images to the first healthy registry holding the exact digest" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE}"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The base image's unprivileged node user, by number: the kubelet can only check runAsNonRoot against a numeric
# user. The Deployment also sets runAsNonRoot and a read-only root filesystem.
USER 1000:1000
EXPOSE 10250 8081 9090
# node as PID 1 directly (not npm) so SIGTERM reaches the server and in-flight admissions drain.
ENTRYPOINT ["node", "dist/cli.js"]
# Where deploy/ mounts the config; the directory holds only the ConfigMap, the TLS Secret has its own.
CMD ["serve", "--config", "/etc/regroute/config/config.yaml"]
