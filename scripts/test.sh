#!/usr/bin/env bash
# Installs what is missing, builds the release, asan (ASan+UBSan) and tsan configurations,
# and runs the whole suite: every test in release and asan, all but the process-level MapReduce lab
# tests in tsan, then a short run of each fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh curl procps openssl python3 mawk
for preset in release asan tsan; do
  echo "== $preset: build" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "== $preset: test" >&2
  ctest --preset "$preset"
done
echo "== fuzz: 60 s per libFuzzer target (ASan+UBSan, clang)" >&2
scripts/fuzz.sh --seconds 60
echo "== all tests passed" >&2
