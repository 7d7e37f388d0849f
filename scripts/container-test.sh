#!/usr/bin/env bash
# The container image, tested with podman on this machine (root, Debian 12, no Docker engine):
#   * installs podman, runc, mmdebstrap, podman-compose, jq and curl when missing;
#   * makes the debian:bookworm base image from Debian's packages with mmdebstrap when no registry
#     answers (the tarball is cached in scripts/work/container/ between runs);
#   * builds the Dockerfile with --network=host (and --format docker, which keeps the HEALTHCHECK), then
#     checks:
#       - the image runs as user mrkv and its HEALTHCHECK uses mrkv probe;
#       - a kvserver container answers curl from the host through a published port, and its
#         HEALTHCHECK passes (podman healthcheck run);
#       - podman stop -t 10 of a kvserver and of a worker container returns in well under 10 s, the
#         process having ended on SIGTERM itself (PID 1), not on the SIGKILL after the timeout;
#       - a word count with a coordinator and three worker containers on one bind mount, each running
#         tasks, gives the output of mrkv sequential;
#       - a worker container killed (podman kill) while it holds a map task: the task is handed to
#         another worker after the task timeout and the job still ends with the right output;
#       - conf/compose.yaml under podman-compose: a job service and three workers that stay up; a wc and
#         an indexer job submitted from the host both give mrkv sequential's output, the kvserver
#         answers, podman-compose stop ends every service on SIGTERM, and the kvserver keeps its keys
#         across down and up (its data lives in the named volume kv).
# Everything it starts (containers, networks, volumes, the job directories) is removed on exit, even when
# a check fails. The base tarball and the image layers (private store under scripts/work/container/) stay
# as a cache; CONTAINER_TEST_COLD=1 deletes both first.
# Podman runs with a private configuration (runc, explicit ulimits, cgroupfs, file events, private storage
# and network config): see ../shared/notes/containers.md for why each setting is needed here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/lib/checks.sh

W=$root/scripts/work/container
P=mrkv-ct                       # prefix of every container, network and volume this script makes
NET=$P-net
IMAGE=localhost/mrkv:latest     # the tag conf/compose.yaml uses by default
LABEL=mrkv-container-test=1
task_timeout=3

mkdir -p "$W"
exec 9> "$W/lock"
flock -n 9 || { echo "container-test: another run holds $W/lock" >&2; exit 1; }
# --- tools and podman configuration -------------------------------------------------------------------
install_missing podman runc conmon netavark aardvark-dns iptables mmdebstrap podman-compose jq curl ca-certificates
HN=$(ulimit -Hn)
HP=$(ulimit -Hu)
[[ $HP == unlimited || $HP -gt 32768 ]] && HP=32768
mkdir -p "$W/run" "$W/networks"
cat > "$W/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$HN:$HN", "nproc=$HP:$HP"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/run/events.log"
tmp_dir = "$W/run/libpod"
[network]
network_config_dir = "$W/networks"
EOF
cat > "$W/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$W/storage"
runroot = "$W/run/storage"
EOF
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf
# Podman's own noise where no syslog and no systemd run: aardvark-dns "failed to connect to syslog", and
# "unable to get systemd connection" for HEALTHCHECK timers (`podman healthcheck run` still works).
podman() {
  command podman "$@" 2> >(grep -v -e 'failed to connect to syslog' -e 'unable to get systemd connection' >&2)
}

# --- cleanup, on every exit ----------------------------------------------------------------------------
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -f $W/compose.env ]]; then
    (cd "$root" && podman-compose -p "$P" -f conf/compose.yaml down -v -t 0 >/dev/null 2>&1)
    rm -f "$W/compose.env"
  fi
  local ids
  ids=$(podman ps -aq --filter "label=$LABEL" 2>/dev/null; podman ps -aq --filter "name=^$P" 2>/dev/null)
  [[ -n $ids ]] && podman rm -f -t 0 $ids >/dev/null 2>&1
  local n
  for n in $(podman network ls -q 2>/dev/null | grep "^$P" || true); do podman network rm -f "$n" >/dev/null 2>&1; done
  for n in $(podman volume ls -q 2>/dev/null | grep "^$P" || true); do podman volume rm -f "$n" >/dev/null 2>&1; done
  rm -rf "$W/jobs"
  local left
  left=$( (podman ps -aq --filter "label=$LABEL"; podman network ls -q | grep "^$P"; podman volume ls -q | grep "^$P") 2>/dev/null || true)
  [[ -n $left ]] && echo "container-test: cleanup left: $left" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cleanup_stale() {  # a run killed with SIGKILL leaves its containers; remove them before starting
  local ids
  ids=$(podman ps -aq --filter "label=$LABEL"; podman ps -aq --filter "name=^$P")
  [[ -n $ids ]] && podman rm -f -t 0 $ids >/dev/null 2>&1 || true
  for n in $(podman network ls -q | grep "^$P" || true); do podman network rm -f "$n" >/dev/null 2>&1 || true; done
  for n in $(podman volume ls -q | grep "^$P" || true); do podman volume rm -f "$n" >/dev/null 2>&1 || true; done
}
cleanup_stale
if [[ ${CONTAINER_TEST_COLD:-0} == 1 ]]; then
  note "cold run: deleting the cached base tarball and every image of the private store"
  podman rmi -a -f >/dev/null 2>&1 || true
  rm -rf "$W/storage" "$W/run" "$W/bookworm.tar"
  mkdir -p "$W/run"
fi

# --- base image ----------------------------------------------------------------------------------------
base=docker.io/library/debian:bookworm
if ! podman image exists "$base"; then
  if curl -s -o /dev/null --max-time 5 https://registry-1.docker.io/v2/ && timeout 120 podman pull -q "$base" >/dev/null 2>&1; then
    note "pulled $base from the registry"
  else
    if [[ ! -s $W/bookworm.tar ]]; then
      mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
      [[ -n $mirror ]] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
      [[ -n $mirror ]] || mirror=http://deb.debian.org/debian
      note "no registry: making $base with mmdebstrap from $mirror"
      # The name must end in .tar: mmdebstrap picks its output format from it (notes, section 1).
      rm -f "$W/bookworm.part.tar"
      mmdebstrap --quiet --format=tar --variant=apt --aptopt='Acquire::Languages "none"' \
        --aptopt='Acquire::Check-Valid-Until "false"' bookworm "$W/bookworm.part.tar" "$mirror"
      mv "$W/bookworm.part.tar" "$W/bookworm.tar"
    fi
    podman import -q --change 'CMD ["/bin/bash"]' "$W/bookworm.tar" "$base" >/dev/null
    note "imported $base from $W/bookworm.tar"
  fi
fi

# --- image ---------------------------------------------------------------------------------------------
note "building $IMAGE"
# --format docker: podman's default OCI format drops HEALTHCHECK ("not supported for OCI image format").
# The build stage is tagged too, so that pruning the images of earlier builds keeps its layers (the
# compiler and libraries) as the cache of the next build.
build=(podman build --format docker --pull=never --network=host)
if "${build[@]}" --target build -t localhost/mrkv-build:cache . > "$W/build.log" 2>&1 &&
   "${build[@]}" -t "$IMAGE" . >> "$W/build.log" 2>&1; then
  podman image prune -f >/dev/null 2>&1 || true
  pass "image: podman build --network=host of the Dockerfile"
else
  fail "image: podman build --network=host of the Dockerfile" "$(tail -30 "$W/build.log")"
  summary container-test
  exit 1
fi
user=$(podman image inspect -f '{{.Config.User}}' "$IMAGE")
health=$(podman image inspect -f '{{if .Healthcheck}}{{.Healthcheck.Test}}{{end}}' "$IMAGE" 2>/dev/null || true)
[[ -n $health ]] || health=$(podman image inspect -f '{{.Config.Healthcheck}}' "$IMAGE" 2>/dev/null || true)
if [[ $user == mrkv && $health == *probe* && $(podman run --rm --network none "$IMAGE" --version) == *mrkv* ]]; then
  pass "image: runs as user mrkv, HEALTHCHECK uses mrkv probe, mrkv --version runs"
else
  fail "image: runs as user mrkv, HEALTHCHECK uses mrkv probe, mrkv --version runs" "user=$user healthcheck=$health"
fi

podman network create "$NET" >/dev/null
run() { podman run -d --label "$LABEL" --network "$NET" "$@"; }
# host_port CONTAINER PORT: the 127.0.0.1 port podman published for PORT.
host_port() { podman port "$1" "$2/tcp" | head -1 | sed 's/.*://'; }
wait_exit() {  # wait_exit CONTAINER SECONDS: prints the exit code, or "timeout" and fails
  timeout "$2" podman wait "$1" 2>/dev/null || { echo timeout; return 1; }
}

# --- key/value server: curl from the host, health check --------------------------------------------
run --name $P-kv -p 127.0.0.1::7800 "$IMAGE" >/dev/null   # the image's CMD: kvserver on 0.0.0.0:7800
kv_port=$(host_port $P-kv 7800)
kv=http://127.0.0.1:$kv_port
kv_ok() {
  wait_until 20 curl -sf --max-time 1 "$kv/healthz" || { echo "no answer on $kv/healthz"; podman logs $P-kv; return 1; }
  local a b b2 c
  a=$(curl -sf --max-time 2 -d '{"key":"greeting","value":"hello"}' "$kv/v1/put")
  b=$(curl -sf --max-time 2 -d '{"key":"greeting","value":", world","client":"ct","seq":1}' "$kv/v1/append")
  b2=$(curl -sf --max-time 2 -d '{"key":"greeting","value":", world","client":"ct","seq":1}' "$kv/v1/append")
  c=$(curl -sf --max-time 2 -d '{"key":"greeting"}' "$kv/v1/get")
  echo "put -> $a; append -> $b; the same append again -> $b2; get -> $c"
  [[ $(jq -r .version <<<"$a") == 1 && $(jq -r .value <<<"$b") == hello && $(jq -r .value <<<"$b2") == hello &&
     $(jq -r .value <<<"$c") == 'hello, world' ]]
}
check "kvserver container answers curl from the host (put, exactly-once append, get on 127.0.0.1:$kv_port)" kv_ok
check "kvserver container HEALTHCHECK (mrkv probe) passes: podman healthcheck run" podman healthcheck run $P-kv

# --- SIGTERM as PID 1 ------------------------------------------------------------------------------------
# stops_fast CONTAINER: podman stop -t 10 returns in under 3 s and the process ended on SIGTERM itself
# (exit code 0 for a server that drains, 143 for a worker that ends on the signal; 137 means SIGKILL).
stops_fast() {
  local t0 t1 code ms
  t0=$(date +%s%N)
  podman stop -t 10 "$1" >/dev/null
  t1=$(date +%s%N)
  code=$(podman inspect -f '{{.State.ExitCode}}' "$1")
  ms=$(( (t1 - t0) / 1000000 ))
  echo "podman stop -t 10 $1 took $ms ms, exit code $code"
  (( ms < 3000 )) && [[ $code == 0 || $code == 143 ]]
}
check "kvserver container exits at once on SIGTERM (podman stop -t 10 < 3 s, no SIGKILL)" stops_fast $P-kv
# A worker whose coordinator does not exist yet: it would retry for a minute.
run --name $P-idle --no-healthcheck "$IMAGE" worker --coordinator http://$P-nowhere:7700 --app wc --give-up-after 60 >/dev/null
wait_until 20 sh -c "podman logs $P-idle 2>&1 | grep -q 'did not answer'" || true
check "worker container exits at once on SIGTERM (podman stop -t 10 < 3 s, no SIGKILL)" stops_fast $P-idle

# --- MapReduce: a coordinator and three workers sharing a bind mount ---------------------------------
inputs=()
for f in test/data/gutenberg/pg-*.txt; do inputs+=("$(basename "$f")"); done
slow=/usr/local/lib/mrkv/plugins/slow.so
new_job() {  # new_job NAME: a job directory with the inputs, writable by the image's user (uid 7700)
  local d=$W/jobs/$1
  mkdir -p "$d"
  cp test/data/gutenberg/pg-*.txt "$d/"
  chown -R 7700:7700 "$d"
  echo "$d"
}
reference() {  # reference DIR APP: mrkv sequential in a container, to DIR/mr-correct.txt
  command podman run --rm --label "$LABEL" --network none -v "$1:/work" "$IMAGE" \
    sequential --app "$2" --output mr-correct.txt "${inputs[@]}" >/dev/null 2>"$1/sequential.log"
}
same_output() {  # same_output DIR: the job's mr-out-* equal mr-correct.txt once sorted
  local d=$1
  sort "$d"/mr-out-* | grep . > "$d/all.txt" || true
  sort "$d/mr-correct.txt" > "$d/correct.txt"
  if cmp -s "$d/all.txt" "$d/correct.txt"; then
    echo "$(wc -l < "$d/all.txt") lines, identical"
  else
    echo "outputs differ:"; diff "$d/all.txt" "$d/correct.txt" | head -5; return 1
  fi
}

# Word count over the sample texts with the slow plugin (the lab's wc; its map sleeps MRKV_SLOW_MAP_MS
# first): with the built-in wc the whole job takes a fraction of a second and the first worker to reach
# the coordinator does every task.
job=$(new_job wc)
t0=$(date +%s%N)
run --name $P-coord -p 127.0.0.1::7700 -v "$job:/work" "$IMAGE" \
  coordinator --listen 0.0.0.0:7700 --workdir /work --task-timeout 10 "${inputs[@]}" >/dev/null
wait_until 30 curl -sf --max-time 1 "http://127.0.0.1:$(host_port $P-coord 7700)/healthz" || true
for i in 1 2 3; do
  run --name $P-worker$i --no-healthcheck -e MRKV_SLOW_MAP_MS=1000 -v "$job:/work" "$IMAGE" \
    worker --id worker$i --coordinator http://$P-coord:7700 --app $slow --workdir /work --give-up-after 10 >/dev/null
done
coord_rc=$(wait_exit $P-coord 120 || true)
t1=$(date +%s%N)
worker_rcs=$(for i in 1 2 3; do wait_exit $P-worker$i 30 || true; done | tr '\n' ' ')
reference "$job" $slow
wc_job() {
  echo "coordinator exit $coord_rc, workers exit $worker_rcs; $(( (t1 - t0) / 1000000 )) ms from the first podman run"
  [[ $coord_rc == 0 && $worker_rcs == "0 0 0 " ]] || { podman logs --tail 5 $P-coord; return 1; }
  local i tasks busy=0
  for i in 1 2 3; do
    tasks=$(podman logs $P-worker$i 2>&1 | grep -c 'running .* task' || true)
    echo "worker$i ran $tasks tasks"
    ((tasks > 0)) && busy=$((busy + 1))
    ((tasks > 0)) || podman logs --tail 5 $P-worker$i 2>&1 | sed 's/^/    /'
  done
  ((busy == 3)) || { echo "not every worker took part"; return 1; }
  same_output "$job"
}
check "word count: coordinator + 3 worker containers on one bind mount, each runs tasks, output = mrkv sequential" wc_job

# --- MapReduce: a worker container killed while it holds a task ----------------------------------------
# The victim's map sleeps a minute, so it surely holds a map task when killed; the two others run the same
# plugin without the sleep. Backup tasks are off so that only the task timeout can hand the task out again.
job=$(new_job kill)
run --name $P-coord2 -p 127.0.0.1::7700 -v "$job:/work" "$IMAGE" \
  coordinator --listen 0.0.0.0:7700 --workdir /work --task-timeout $task_timeout --no-backup-tasks "${inputs[@]}" >/dev/null
coord=http://127.0.0.1:$(host_port $P-coord2 7700)
run --name $P-victim --no-healthcheck -e MRKV_SLOW_MAP_MS=60000 -v "$job:/work" "$IMAGE" \
  worker --id victim --coordinator http://$P-coord2:7700 --app $slow --workdir /work >/dev/null
job_json() { curl -sf --max-time 2 "$coord/v1/job"; }
victim_holds_task() { job_json | jq -e '.workers[] | select(.id == "victim") | .tasks_assigned > .tasks_completed'; }
held=no
wait_until 30 victim_holds_task && held=yes
for i in 1 2; do
  run --name $P-survivor$i --no-healthcheck -v "$job:/work" "$IMAGE" \
    worker --id survivor$i --coordinator http://$P-coord2:7700 --app $slow --workdir /work >/dev/null
done
podman kill $P-victim >/dev/null
killed_at=$(date +%s%N)
reassigned_json=
reassigned() { reassigned_json=$(job_json) && jq -e '.stats.reassignments >= 1' <<< "$reassigned_json"; }
wait_until 30 reassigned || true
coord_rc=$(wait_exit $P-coord2 120 || true)
done_ms=$(( ($(date +%s%N) - killed_at) / 1000000 ))
handed_again=$(podman logs $P-coord2 2>&1 | grep -E 'previous attempt timed out\) -> worker' | sed 's/.*\] //' || true)
final=$(podman logs $P-coord2 2>&1 | grep 'job done in' | sed 's/.*\] //' || true)
reference "$job" $slow
kill_job() {
  echo "victim held a task when killed: $held; its exit code $(podman inspect -f '{{.State.ExitCode}}' $P-victim)"
  echo "GET /v1/job after the kill: $(jq -c '{map, stats}' <<< "$reassigned_json" 2>/dev/null)"
  echo "handed out again: ${handed_again:-nothing}"
  echo "coordinator exit $coord_rc, $done_ms ms after the kill: $final"
  [[ $held == yes && $coord_rc == 0 ]] || { podman logs --tail 8 $P-coord2; return 1; }
  [[ -n $handed_again && $handed_again != *victim* ]] || { echo "the victim's task was not handed to a survivor"; return 1; }
  same_output "$job"
}
check "worker container killed holding a map task: reassigned after the ${task_timeout} s timeout, output = mrkv sequential" kill_job
for c in idle coord coord2 victim survivor1 survivor2 worker1 worker2 worker3; do podman rm -f -t 0 $P-$c >/dev/null 2>&1 || true; done

# --- conf/compose.yaml under podman-compose ------------------------------------------------------------
free_ports() {  # two free loopback ports for the compose file's published ports
  python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))'
}
read -r MRKV_COORDINATOR_PORT MRKV_KV_PORT < <(free_ports)
export MRKV_COORDINATOR_PORT MRKV_KV_PORT MRKV_IMAGE=$IMAGE
touch "$W/compose.env"   # tells cleanup to run podman-compose down
compose_names() { command podman ps -a --format '{{.Names}}' | grep "^${P}_" | sort; }
compose_job() {
  podman-compose -p "$P" -f conf/compose.yaml up -d > "$W/compose.log" 2>&1 || { tail -20 "$W/compose.log"; return 1; }
  echo "services: $(compose_names | tr '\n' ' ')"
  local coordinator=http://127.0.0.1:$MRKV_COORDINATOR_PORT
  wait_until 30 curl -sf --max-time 1 "$coordinator/healthz" ||
    { echo "the compose coordinator does not answer on $coordinator"; podman logs --tail 10 ${P}_coordinator_1; return 1; }
  # Two jobs from the host, as a user would submit them: the job service runs one after the other with
  # the workers that stay up, each job's output in jobs/ID/ of the volume.
  local d app id ids=()
  d=$(podman volume inspect -f '{{.Mountpoint}}' "${P}_job")
  for app in wc indexer; do
    id=$(from_host submit --coordinator "$coordinator" --app "$app" --name "compose $app" "${inputs[@]}") ||
      { echo "submit of a $app job failed"; return 1; }
    ids+=("$id")
  done
  echo "submitted jobs ${ids[*]} (wc, indexer)"
  local i=0
  for app in wc indexer; do
    id=${ids[$i]}; i=$((i + 1))
    wait_until 120 job_over "$coordinator" "$id" || { echo "job $id ($app) did not end"; return 1; }
    [[ $(curl -sf --max-time 2 "$coordinator/v1/jobs/$id" | jq -r .state) == done ]] ||
      { echo "job $id ($app): $(curl -s --max-time 2 "$coordinator/v1/jobs/$id" | jq -c '{state, error}')"; return 1; }
    command podman run --rm --label "$LABEL" --network none -v "${P}_job:/work" "$IMAGE" \
      sequential --app "$app" --output "jobs/$id/mr-correct.txt" "${inputs[@]}" >/dev/null 2>&1
    echo -n "job $id ($app): "
    same_output "$d/jobs/$id" || return 1
  done
  local c states=
  for c in worker1 worker2 worker3; do
    states+="$c: ran $(command podman logs ${P}_${c}_1 2>&1 | grep -c 'running .* task') tasks, $(command podman inspect -f '{{.State.Status}}' ${P}_${c}_1); "
  done
  echo "$states"
  [[ $(grep -o 'running' <<< "$states" | wc -l) == 3 ]] || { echo "a worker did not stay up between jobs"; return 1; }
  local kv=http://127.0.0.1:$MRKV_KV_PORT
  wait_until 20 curl -sf --max-time 1 "$kv/healthz" || { echo "compose kvserver does not answer on $kv"; return 1; }
  [[ $(curl -sf --max-time 2 -d '{"key":"k","value":"v"}' "$kv/v1/put" | jq -r .version) == 1 &&
     $(curl -sf --max-time 2 -d '{"key":"k"}' "$kv/v1/get" | jq -r .value) == v ]] || { echo "kv put/get failed"; return 1; }
  echo "kvserver answers put/get on $kv"
  [[ $(command podman inspect -f '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}' ${P}_worker1_1) != *probe* ]] ||
    { echo "the workers kept the image's kvserver HEALTHCHECK"; return 1; }
}
from_host() {  # mrkv from the image, on the host's network (so 127.0.0.1 is the host's published ports)
  command podman run --rm --label "$LABEL" --network host "$IMAGE" "$@"
}
job_over() {  # job_over URL ID: the job has ended (done, failed or cancelled)
  [[ $(curl -sf --max-time 2 "$1/v1/jobs/$2" | jq -r .state) =~ ^(done|failed|cancelled)$ ]]
}
check "compose: podman-compose up -d of conf/compose.yaml as a job service: two jobs submitted from the host (wc, indexer) = mrkv sequential, workers stay up, kvserver answers" compose_job
compose_down() {
  local t0 t1 c codes=
  t0=$(date +%s%N)
  podman-compose -p "$P" -f conf/compose.yaml stop -t 10 >> "$W/compose.log" 2>&1
  t1=$(date +%s%N)
  for c in $(compose_names); do codes+="$c=$(command podman inspect -f '{{.State.ExitCode}}' "$c") "; done
  # down without -v keeps the named volumes, as `docker compose down` does.
  podman-compose -p "$P" -f conf/compose.yaml down -t 0 >> "$W/compose.log" 2>&1
  echo "podman-compose stop -t 10 took $(( (t1 - t0) / 1000000 )) ms; exit codes: $codes"
  [[ -z $(compose_names) ]] || { echo "left after down: $(compose_names)"; return 1; }
  [[ $codes != *=137* ]]
}
check "compose: podman-compose stop ends every service on SIGTERM (no exit 137), down removes them" compose_down
compose_keeps_keys() {
  local kv=http://127.0.0.1:$MRKV_KV_PORT value
  podman-compose -p "$P" -f conf/compose.yaml up -d kvserver >> "$W/compose.log" 2>&1 || { tail -5 "$W/compose.log"; return 1; }
  wait_until 20 curl -sf --max-time 1 "$kv/healthz" || { echo "the kvserver does not answer after up"; return 1; }
  value=$(curl -sf --max-time 2 -d '{"key":"k"}' "$kv/v1/get" | jq -r .value)
  echo "get k after down and up -> '$value' (put 'v' before)"
  podman-compose -p "$P" -f conf/compose.yaml down -v -t 0 >> "$W/compose.log" 2>&1
  rm -f "$W/compose.env"
  [[ $value == v ]]
}
check "compose: the kvserver keeps its keys across down and up (the kv volume)" compose_keeps_keys

summary container-test
