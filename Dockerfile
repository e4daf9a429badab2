# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed apart so no dev tool reaches the runtime image.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The base image's unprivileged node user, by number: the kubelet can only check runAsNonRoot against a numeric
# user. The Deployment also sets runAsNonRoot and a read-only root filesystem.
USER 1000:1000
EXPOSE 8443 9090
# node as PID 1 directly (not npm) so SIGTERM reaches the server and in-flight admissions drain.
ENTRYPOINT ["node", "dist/cli.js"]
# Where deploy/ mounts the config; the directory holds only the ConfigMap, the TLS Secret has its own.
CMD ["serve", "--config", "/etc/regroute/config/config.yaml"]
