#!/usr/bin/env bash
# Installs what is missing, builds the release, asan (ASan+UBSan) and tsan configurations,
# and runs the whole suite: every test in release and asan, all but the process-level MapReduce lab
# tests in tsan, the job page in a real browser (scripts/page-test.sh) after the release tests, then a
# repeatable run of each fuzzer (a fixed seed and number of inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh curl procps openssl python3 mawk
for preset in release asan tsan; do
  echo "== $preset: build" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "== $preset: test" >&2
  ctest --preset "$preset"
  if [[ $preset == release ]]; then
    echo "== release: the job service's web page in headless Chromium" >&2
    scripts/page-test.sh release
  fi
done
echo "== fuzz: 50,000 inputs per libFuzzer target from a fixed seed, plus the regression inputs (ASan+UBSan, clang)" >&2
scripts/fuzz.sh --runs 50000
echo "== all tests passed" >&2
