# shoal's image: `docker build -t <registry>/shoal:<version> .` from the repository root (k8s/README.md).
# Node 20 exactly: shoal's uWebSockets.js build ships a native binary for Node 20 only (package.json
# engines), and shoal refuses to start on any other line.

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY native-bench ./native-bench
RUN npm run build && npm prune --omit=dev

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
ENTRYPOINT ["node", "/app/dist/src/main/cli.js"]
CMD ["registry"]
