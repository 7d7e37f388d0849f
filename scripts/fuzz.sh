#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz (clang 14, ASan+UBSan) in build/fuzz and runs each for a
# bounded time, starting from its seed corpus in test/fuzz/corpus/<target>/ copied to a scratch
# directory (the committed corpus is never written to), after replaying every input kept under
# test/fuzz/regressions/<target>/ (inputs that once crashed or stalled a target). Prints each target's executions per second
# and coverage (cov/ft from libFuzzer's final stats), and exits non-zero if any target crashed, leaked,
# timed out or ran out of memory; the input that did it is kept under build/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                  every target for 60 s
#   scripts/fuzz.sh --seconds 10     every target for 10 s
#   scripts/fuzz.sh --runs 50000     every target for 50,000 inputs from a fixed seed: the same inputs on
#                                    every run and machine, so a loaded machine or a lucky find can't turn
#                                    it red (what scripts/test.sh runs); open-ended search is --long
#   scripts/fuzz.sh --long           every target for 30 min (--seconds still wins), and keep what it
#                                    finds: the corpus grown by each long run is saved in
#                                    build/fuzz/grown/<target>/ and the next long run starts from it too
#   scripts/fuzz.sh http_request_fuzz   only the targets named
#
# A crash is reproduced by running the target on the artifact:
#   build/fuzz/test/fuzz/<target> build/fuzz/artifacts/<target>/crash-...
# and, once fixed, becomes a regression test: copy the artifact to test/fuzz/regressions/<target>/
# (the comment at the top of each test/fuzz/*_fuzz.cpp says what it drives and checks).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
runs=0
long=0
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; seconds_given=1; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; seconds_given=1; shift ;;
    --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --long) long=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((long)) && [[ -z "${seconds_given:-}" ]]; then seconds=1800; fi
[[ "$seconds" =~ ^[0-9]+$ ]] && ((seconds > 0)) || { echo "fuzz.sh: --seconds wants a positive integer" >&2; exit 2; }
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --runs wants a positive integer" >&2; exit 2; }
((runs && long)) && { echo "fuzz.sh: --runs and --long exclude each other" >&2; exit 2; }
if ((${#targets[@]} == 0)); then
  for main in test/fuzz/*_fuzz.cpp; do targets+=("$(basename "$main" .cpp)"); done
fi

scripts/deps.sh clang-14 libclang-rt-14-dev

echo "== fuzz: build (clang 14, ASan+UBSan, libFuzzer)" >&2
cmake --preset fuzz >/dev/null
cmake --build build/fuzz --target "${targets[@]}"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/mrkv-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
summary=()
for target in "${targets[@]}"; do
  binary="build/fuzz/test/fuzz/$target"
  seeds="test/fuzz/corpus/$target"
  [[ -x "$binary" ]] || { echo "fuzz.sh: no such target $target" >&2; exit 2; }
  corpus="$scratch/$target"
  artifacts="build/fuzz/artifacts/$target"
  grown="build/fuzz/grown/$target"
  mkdir -p "$corpus" "$artifacts"
  [[ -d "$seeds" ]] && cp -- "$seeds"/* "$corpus"/
  ((long)) && [[ -d "$grown" ]] && cp -- "$grown"/* "$corpus"/ 2>/dev/null || true
  common=(-rss_limit_mb=2048 -artifact_prefix="$artifacts/")
  if ((runs)); then
    # A per-input limit far above any input's real cost (well under 0.1 s): only a hang trips it.
    options=(-seed=1 -runs="$runs" -timeout=30 -print_final_stats=1 "${common[@]}")
    budget="$runs inputs from seed 1"
  else
    options=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${common[@]}")
    budget="$seconds s"
  fi
  [[ -f "test/fuzz/${target%_fuzz}.dict" ]] && options+=(-dict="test/fuzz/${target%_fuzz}.dict")
  log="build/fuzz/$target.log"
  status=0
  regressions=(test/fuzz/regressions/"$target"/*)
  if [[ -e "${regressions[0]}" ]]; then
    echo "== fuzz: $target: ${#regressions[@]} regression inputs (log: $log.regressions)" >&2
    # One pass over the files, each run once; a stall counts as a failure as in the search below.
    "$binary" -timeout=10 "${common[@]}" "${regressions[@]}" >"$log.regressions" 2>&1 || status=$?
    if ((status)); then
      echo "fuzz.sh: $target failed on a regression input (exit $status):" >&2
      grep -E 'ERROR|Running:|SUMMARY' "$log.regressions" | tail -n 5 >&2 || true
    fi
  fi
  echo "== fuzz: $target for $budget (log: $log)" >&2
  ((status)) || "$binary" "${options[@]}" "$corpus" >"$log" 2>&1 || status=$?
  # libFuzzer's last "#N DONE cov: ... ft: ... corp: ..." line (or its last progress line after a
  # crash) holds the coverage; the final stats give the executions per second.
  last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
  units="$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")"
  executed="$(sed -nE 's/^stat::number_of_executed_units:[[:space:]]*([0-9]+)/\1/p' "$log")"
  rate="$(sed -nE 's/^stat::average_exec_per_sec:[[:space:]]*([0-9]+)/\1/p' "$log")"
  if ((status == 0)) && grep -qE '^(==[0-9]+==ERROR|SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer)' "$log"; then
    status=1
  fi
  if ((status == 0)); then
    verdict="ok"
    if ((long)); then mkdir -p "$grown" && cp -- "$corpus"/* "$grown"/; fi
  else
    verdict="FAILED (exit $status)"
    failed+=("$target")
    grep -E 'ERROR: libFuzzer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error|^\*\*\*|Test unit written|SUMMARY' \
      "$log" | head -n 20 >&2 || true
  fi
  line="$(printf '%-20s %10s exec/s %8s runs   cov %6s   ft %6s   corpus %5s   %s' "$target" "${rate:-?}" \
          "${executed:-?}" "${cov:-?}" "${ft:-?}" "${units:-?}" "$verdict")"
  echo "$line" >&2
  summary+=("$line")
done

echo "== fuzz: summary (${budget})" >&2
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "== fuzz: FAILED: ${failed[*]}; inputs in build/fuzz/artifacts/<target>/" >&2
  exit 1
fi
echo "== fuzz: all targets ran clean" >&2
