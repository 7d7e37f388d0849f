# Sourced by the scripts that run a MapReduce job out of separate processes (quickstart.sh,
# bench/mr_job.sh).
#
# start_coordinator NAME BIN WORKDIR ARGS...: starts `BIN coordinator --listen 127.0.0.1:0 --workdir
# WORKDIR ARGS...` in the background, its stdout on a fifo in WORKDIR and its log in
# WORKDIR/coordinator.log, and reads the line it announces itself with. Sets coordinator_pid,
# coordinator_line and coordinator_url. If no line comes within 10 s, stops it, prints its log and
# exits 1 with NAME in the message.
start_coordinator() {
  local name=$1 bin=$2 dir=$3
  shift 3
  rm -f "$dir/coordinator.out"
  mkfifo "$dir/coordinator.out"
  "$bin" coordinator --listen 127.0.0.1:0 --workdir "$dir" "$@" > "$dir/coordinator.out" 2> "$dir/coordinator.log" &
  coordinator_pid=$!
  exec 3< "$dir/coordinator.out"
  if ! read -r -t 10 coordinator_line <&3; then
    kill "$coordinator_pid" 2>/dev/null || true
    echo "$name: the coordinator did not start; its log:" >&2
    cat "$dir/coordinator.log" >&2
    exit 1
  fi
  coordinator_url=${coordinator_line##* on }
}
