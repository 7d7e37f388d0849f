#!/usr/bin/env bash
# Installs what is missing, builds the release, asan (ASan+UBSan) and tsan configurations,
# and runs the whole suite: every test in release and asan, the concurrency tests in tsan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh curl procps openssl
for preset in release asan tsan; do
  echo "== $preset: build" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "== $preset: test" >&2
  ctest --preset "$preset"
done
echo "== all tests passed" >&2
