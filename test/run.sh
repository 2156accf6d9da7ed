#!/usr/bin/env bash
# The whole test suite: system test dependencies, lint, typecheck, build, then unit, integration and e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/install-system-deps.sh
npx biome check .
npm run build --silent
node --test --test-concurrency=1 dist/test/unit dist/test/integration dist/test/e2e
