# syntax=docker/dockerfile:1
# thanos-sidecar-injector: one bundled JavaScript program (scripts/bundle.ts) on Node 24, running as
# a non-root numeric user on a read-only root filesystem (it writes only to /tmp, an emptyDir in
# the chart). For linux/amd64 and linux/arm64 (`--platform`): the build stage runs on the build
# machine's platform, the final stage only copies. The layer this file adds is 7 MB (2 MB gzipped),
# on top of the Node base (node:24-alpine: about 45 MB compressed).

ARG NODE_IMAGE=node:24-alpine

# The build stage runs on the build machine's platform: what it makes (JavaScript, and packages
# without native code) is the same for every platform, and building for another needs no emulation.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: no install-time scripts (prepare sets up the dev-only test runner).
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY scripts/bundle.ts ./scripts/
COPY src ./src
# What runs is one esbuild bundle of src/ and the production dependencies it uses, split so that
# `serve` loads only its own code (scripts/bundle.ts): no node_modules in the image.
RUN node scripts/bundle.ts /app/dist

# The target's platform named too: a builder that resolves a base once per name (buildah 1.28)
# would otherwise reuse the build stage's.
FROM --platform=$TARGETPLATFORM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/dist ./dist
# A numeric user, so Pod Security "restricted" (runAsNonRoot) can verify it without a passwd lookup.
USER 65532:65532
EXPOSE 8443 8080
# node is PID 1 and handles SIGTERM itself: readiness off, drain, exit 0.
# Memory flags, each measured by `npm run bench` at no throughput cost (BENCHMARKS.md): a 4 MB
# young generation (the default lets RSS grow past 135 MB under load); no Maglev, V8's mid-tier
# compiler, whose compile zones on background threads stay in malloc's arenas (about 20 MB after
# 15 000 admissions; TurboFan still optimizes the hot code); `gc` exposed, for the one
# memory-reducing collection after start and after each quiet spell (src/server/quiet.ts).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--no-maglev", "--expose-gc", "/app/dist/main.js"]
CMD ["serve"]
