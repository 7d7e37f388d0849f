#!/usr/bin/env bash
# Installs the Debian 12 packages mrkv builds with, and only those that are missing.
# Quiet and idempotent: with everything present it changes nothing and prints nothing.
# Extra package names given as arguments are installed the same way (tests ask for curl, procps).
set -euo pipefail
packages=(g++ cmake ninja-build libboost1.81-dev libboost-program-options1.81-dev
          nlohmann-json3-dev doctest-dev libssl-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=(); [[ $(id -u) == 0 ]] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
