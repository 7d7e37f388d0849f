# Shared by scripts/container-test.sh and scripts/netns-test.sh (sourced, not run):
# PASS/FAIL bookkeeping, bounded waits, and timing. Needs bash 5 (EPOCHREALTIME).

checks_passed=0
checks_failed=0
failed_names=()
checks_started_ns=$(date +%s%N)

# Milliseconds since the script started; for log lines.
elapsed_ms() { echo $(( ($(date +%s%N) - checks_started_ns) / 1000000 )); }

note() { printf '[%6.1fs] %s\n' "$(( $(elapsed_ms) ))e-3" "$*" >&2; }

pass() {
  checks_passed=$((checks_passed + 1))
  printf 'PASS  %s\n' "$1"
}

# fail NAME [DETAIL...]: records a failure and prints the detail lines indented.
fail() {
  local name=$1
  shift
  checks_failed=$((checks_failed + 1))
  failed_names+=("$name")
  printf 'FAIL  %s\n' "$name"
  local arg line
  for arg in "$@"; do
    while IFS= read -r line; do printf '      %s\n' "$line"; done <<< "$arg"
  done
}

# check NAME COMMAND...: PASS if COMMAND succeeds, else FAIL; either way COMMAND's output follows,
# indented (what was measured).
check() {
  local name=$1 out line
  shift
  if out=$("$@" 2>&1); then
    pass "$name"
    [[ -z $out ]] || while IFS= read -r line; do printf '      %s\n' "$line"; done <<< "${out:0:2000}"
  else
    fail "$name" "${out:0:3000}"
  fi
}

# summary SCRIPT: prints the totals and returns non-zero if anything failed.
summary() {
  local secs
  secs=$(( ($(date +%s%N) - checks_started_ns) / 1000000 ))
  printf '%s: %d passed, %d failed, wall time %d.%03d s\n' "$1" "$checks_passed" "$checks_failed" \
    $((secs / 1000)) $((secs % 1000))
  if ((checks_failed)); then
    printf '  failed: %s\n' "${failed_names[@]}"
    return 1
  fi
  return 0
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds; false after SECONDS.
wait_until() {
  local limit_ns=$(( $(date +%s%N) + ${1%.*} * 1000000000 ))
  shift
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s%N) < limit_ns )) || return 1
    sleep 0.1
  done
}

# now_ns: nanoseconds of CLOCK_REALTIME without forking (bash 5).
now_ns() {
  local t=${EPOCHREALTIME/[.,]/}
  echo "${t}000"
}

# Installs the Debian packages among "$@" that are missing, quietly (root or sudo).
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  note "installing ${missing[*]}"
  local sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
