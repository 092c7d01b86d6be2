# What the Docker tests (compose_e2e.sh, cluster_compose_e2e.sh,
# cluster_faults_e2e.sh) share: the skip checks, tests/e2e/lib.sh, a project
# of their own, the image build, cleanup of everything they made, bounded
# waits on health checks, chatctl in a container, and peer containers fed
# through named pipes.
#
# Sourced after `set -euo pipefail` and after setting $repo:
#   source "$repo/tests/docker/compose_lib.sh" TEST PROJECT_PREFIX FILE...
# TEST names the test in its SKIP and PASS lines; PROJECT_PREFIX starts the
# compose project name (a random suffix follows, so never a user's
# containers, networks or volumes); FILE... are the compose files, relative
# to $repo. Exits 77 (skipped) when no Docker engine or no compose runs here.
# Sets compose_cmd, work, pids, python (lib.sh), and exports
# COMPOSE_PROJECT_NAME, COMPOSE_FILE, CHAT_IMAGE; changes to $repo.
# The image tag is chat-by-name:e2e for every test, so the first one builds
# it and the others find it in the layer cache.

compose_test=$1
compose_project_prefix=$2
shift 2

if ! timeout 30 docker info >/dev/null 2>&1; then
  echo "SKIP $compose_test: no Docker engine here (docker info failed)"
  exit 77
fi
if docker-compose version >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
else
  echo "SKIP $compose_test: Docker runs here but neither docker-compose nor 'docker compose' is installed"
  exit 77
fi

source "$repo/tests/e2e/lib.sh"

export COMPOSE_PROJECT_NAME="${compose_project_prefix}${RANDOM}$$"
COMPOSE_FILE=$(printf "$repo/%s:" "$@")
export COMPOSE_FILE=${COMPOSE_FILE%:}
export CHAT_IMAGE=chat-by-name:e2e
unset COMPOSE_PROFILES
cd "$repo"

compose() { "${compose_cmd[@]}" "$@"; }

# What compose_down removes besides the project: containers started with
# `docker run` or `compose run --name`, networks made with `docker network
# create`. Add to them as they are made.
extra_containers=()
extra_networks=()

# On failure, the containers' logs join the test's own in the report.
eval "lib_$(declare -f fail)"
fail() {
  compose --profile lab --profile tools logs --no-color >"$work/compose.log" 2>&1 || true
  lib_fail "$@"
}
compose_down() {
  local name
  for name in "${extra_containers[@]}"; do docker rm -f "$name" >/dev/null 2>&1 || true; done
  # Every profile, so that the lab's services go too.
  compose --profile lab --profile tools down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  for name in "${extra_networks[@]}"; do docker network rm "$name" >/dev/null 2>&1 || true; done
}
trap 'compose_down; cleanup' EXIT
trap 'exit 130' INT  # so that the EXIT trap cleans up after Ctrl-C too
trap 'exit 143' TERM

# build_image: the base image (made locally when it cannot be pulled), then
# the project's image, once: every service runs the same tag, so building it
# for one service is enough (and a tree edited meanwhile cannot cause a
# second, different build). Sets build_seconds.
build_image() {
  step "base image (made locally when it cannot be pulled)"
  "$repo/scripts/make-base-image"
  step "build the image once (the layer cache makes reruns fast)"
  local start=$SECONDS
  timeout 1500 "${compose_cmd[@]}" build registry >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; fail "the image build failed"; }
  build_seconds=$((SECONDS - start))
  echo "   built in $build_seconds s"
}

# ctl ARGS...: chatctl in a one-off container on the project network.
# --no-deps: a killed service must stay killed.
ctl() { compose run --rm --no-deps -T chatctl "$@" </dev/null 2>>"$work/chatctl.err"; }

# container SERVICE: its container id.
container() { compose --profile lab ps -q "$1"; }

# wait_healthy SECONDS [SERVICE...]: until every SERVICE's (default
# registry) health check passes, at most SECONDS in all.
wait_healthy() {
  local deadline=$((SECONDS + $1)) service status
  shift
  [ $# -gt 0 ] || set -- registry
  for service in "$@"; do
    status=""
    until [ "$status" = healthy ]; do
      [ "$SECONDS" -lt "$deadline" ] || fail "$service is not healthy in time (status: $status)"
      sleep 0.2
      status=$(docker inspect -f '{{.State.Health.Status}}' "$(container "$service")" 2>/dev/null || true)
    done
  done
}

# Peers: `compose run -T` with stdin from a named pipe the script holds open,
# as in tests/e2e/peer_e2e.sh. Commands started while a pipe is open must not
# inherit the script's end of it, or that peer would never see end of input.
# $ttl: the peers' lease in seconds (default 3: a killed peer leaves fast).
declare -A peer_pid peer_fd
without_pipes() {
  local fd
  for fd in "${peer_fd[@]}"; do eval "exec $fd>&-"; done
  exec "$@"
}
# start_peer NAME [SERVICE [RUN_OPTION...]]: chat-peer --name NAME --json in
# the container ${COMPOSE_PROJECT_NAME}_NAME of SERVICE (default peer);
# RUN_OPTIONs go to `compose run` (-e CHAT_REGISTRY=registry2:50050).
# --no-deps: a peer started while the registries are down leaves them down.
start_peer() {
  local name=$1 service=${2:-peer} fd
  shift $(($# < 2 ? $# : 2))
  mkfifo "$work/$name.in"
  extra_containers+=("${COMPOSE_PROJECT_NAME}_$name")
  (without_pipes "${compose_cmd[@]}" run --rm -T --no-deps --name "${COMPOSE_PROJECT_NAME}_$name" \
    "$@" "$service" --name "$name" --ttl "${ttl:-3}" --json) \
    <"$work/$name.in" >"$work/$name.out" 2>"$work/$name.err" &
  peer_pid[$name]=$!
  pids+=("$!")
  exec {fd}>"$work/$name.in"
  peer_fd[$name]=$fd
}
say() { echo "$2" >&"${peer_fd[$1]}"; }  # say NAME LINE: NAME types LINE

# end_input NAME SECONDS: closes NAME's input (the peer unregisters and
# exits) and waits at most SECONDS for its container; sets $exit_code.
end_input() {
  eval "exec ${peer_fd[$1]}>&-"
  wait_for_exit "${peer_pid[$1]}" "$2"
}

# wait_event NAME NEEDLE [COUNT] [SECONDS]: until NAME's JSON output holds
# NEEDLE on COUNT lines (default 1), at most SECONDS (default 30); fails at
# once if NAME's container has gone.
wait_event() {
  local name=$1 needle=$2 count=${3:-1} limit=${4:-30}
  local deadline=$((SECONDS + limit))
  until [ "$(grep -cF -- "$needle" "$work/$name.out" || true)" -ge "$count" ]; do
    kill -0 "${peer_pid[$name]}" 2>/dev/null || fail "$name's container ended before '$needle'"
    [ "$SECONDS" -lt "$deadline" ] || fail "'$needle' did not appear in $name's output within ${limit}s"
    sleep 0.05
  done
}

# In a one-line JSON array from `chatctl --json list`: is NAME there?
listed() { grep -qF "\"name\":\"$2\"" <<<"$1"; }

# ---- the cluster (docker-compose.cluster.yml) ----

at() { ctl --registry "$1:50050" "${@:2}"; }  # at REGISTRY ARGS...

# resolves_at REGISTRY NAME ADDRESS [SECONDS]: until chatctl resolve NAME at
# REGISTRY answers ADDRESS (a registry's index follows etcd through its
# watch, so another registry's write shows up a moment later).
resolves_at() {
  local registry=$1 name=$2 want=$3 deadline=$((SECONDS + ${4:-20})) got=""
  until got=$(at "$registry" resolve "$name") && [ "$got" = "$want" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$name does not resolve to $want at $registry (got '$got')"
    sleep 0.5
  done
  echo "   $name -> $got at $registry"
}

# register REGISTRY NAME ADDRESS: a static entry through REGISTRY, retried
# while chatctl exits 3 (UNAVAILABLE), as a client does, for at most 30 s;
# says how many attempts failed. After a member dies, a registry's write may
# go to that member's channel first and fail once (docs/cluster.md, "What
# users see").
register() {
  local attempts=0 deadline=$((SECONDS + 30)) code
  while :; do
    code=0
    at "$1" register "$2" "$3" --static >/dev/null || code=$?
    [ "$code" != 0 ] || break
    [ "$code" = 3 ] || fail "chatctl register $2 --static at $1 exited $code: $(tail -n 3 "$work/chatctl.err")"
    attempts=$((attempts + 1))
    [ "$SECONDS" -lt "$deadline" ] || fail "no registration of $2 at $1 succeeded in 30 s: $(tail -n 3 "$work/chatctl.err")"
    sleep 0.5
  done
  echo "   registered $2 at $1 ($attempts failed attempts first)"
}

# etcdctl_in MEMBER ARGS...: etcdctl inside MEMBER, its settings from the
# compose file's ETCDCTL_* variables.
etcdctl_in() { compose exec -T "$1" etcdctl "${@:2}" </dev/null 2>>"$work/etcdctl.err"; }

# etcd_leader MEMBER: the name of the etcd leader (etcd1..3), as MEMBER sees it.
etcd_leader() {
  local status leader
  status=$(etcdctl_in "$1" endpoint status --cluster) || fail "etcdctl endpoint status failed"
  leader=$(awk -F', ' '$5 == "true" { print $1 }' <<<"$status" | sed -E 's#https://([^:]+):.*#\1#')
  case $leader in etcd1 | etcd2 | etcd3) echo "$leader" ;; *) fail "no leader in: $status" ;; esac
}
