#!/usr/bin/env bash
# Installs the real components the tests run (containerd, CNCF distribution, skopeo, podman, dnsmasq, htpasswd,
# openssl, unzip (to unpack kubectl and helm: test/install-k8s-tools.sh), chromium for the debug page's
# browser test, and iproute2, iptables and python3 for the shaped network of test/harness/netns.ts) when
# missing.
set -euo pipefail
declare -A need=([containerd]=containerd [ctr]=containerd [docker-registry]=docker-registry [skopeo]=skopeo [dnsmasq]=dnsmasq-base [htpasswd]=apache2-utils [podman]=podman [openssl]=openssl [unzip]=unzip [chromium]=chromium [ip]=iproute2 [tc]=iproute2 [iptables]=iptables [python3]=python3)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "shoal tests need the Debian packages: ${packages}(install them, or run the tests as root on Debian)" >&2
  exit 1
fi
echo "installing test dependencies: ${packages}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >/dev/null
