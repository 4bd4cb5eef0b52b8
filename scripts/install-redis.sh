#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is missing: the membership store (and plan
# store) of an OServe cluster (Microsoft.Orleans.Clustering.Redis). Used by the cluster tests and
# scripts/fault-drill.sh, so a fresh machine and CI get it by themselves. Prints the binary's path.
# Exit 0 when redis-server is (now) on PATH; 1 when it could not be installed (no root, no apt).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  command -v redis-server
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "install-redis: redis-server is missing and this user cannot apt-get install it (not root, no sudo)" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-redis: redis-server is missing and there is no apt-get here; install Redis 6+ by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package list may be absent on a fresh machine; update only when the candidate is unknown.
if ! apt-cache policy redis-server 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  $sudo apt-get update -qq >/dev/null
fi
# --no-install-recommends: the server binary only; the package's systemd unit is not started here
# (there is no systemd in containers), every user starts its own server on its own port.
$sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server
