#!/usr/bin/env bash
# Servers outlive fd exhaustion. Each server (chat-registry, chat-greeter, a
# chat-peer's listener) runs under a small hard open-file limit (the binaries
# raise the soft limit to the hard one, so nothing is left to raise to);
# more idle TCP connections than that are opened to its port until accept4
# fails with EMFILE, which ends gRPC 1.51's accept loop for good. The
# connections are closed, and a real client must be served again within a
# bounded wait: chatctl against the registry, a health check against the
# greeter, a message delivered directly to the peer. Asserted on outcomes,
# with generous bounds (the supervisor acts within seconds).
#
# Usage: fd_exhaustion_e2e.sh BIN_DIR   (the build's bin/)
set -euo pipefail

bin_dir=${1:?usage: fd_exhaustion_e2e.sh BIN_DIR}
source "$(dirname "$0")/lib.sh"
"$python" -c 'import grpc' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 0; }

# Under the sanitizers gRPC 1.51's own accept4 error path trips UBSan's vptr
# check inside libgrpc (see log_flood_e2e.sh); the g++ pass runs this.
if [ -n "${UBSAN_OPTIONS:-}${ASAN_OPTIONS:-}" ]; then
  echo "SKIP: gRPC's accept4 error path under the sanitizers (see log_flood_e2e.sh)"
  exit 0
fi

limit=128   # hard RLIMIT_NOFILE of the server under attack
flood=400   # idle connections opened to it, well above $limit

# limited DIR BINARY: a wrapper DIR/BINARY that runs the real one under the
# hard open-file limit $limit.
limited() {
  mkdir -p "$1"
  printf '#!/usr/bin/env bash\nulimit -n %s\nexec "%s/%s" "$@"\n' \
    "$limit" "$bin_dir" "$2" >"$1/$2"
  chmod +x "$1/$2"
}

# exhaust PORT LOG: opens $flood idle connections to PORT (they land in the
# listen queue once the server is out of fds), waits until LOG says accept
# stopped for want of fds, then closes them all.
exhaust() {
  local port=$1 log=$2
  local episodes
  episodes=$(grep -c "descriptors ran out" "$log" || true)
  rm -f "$work/hold"
  mkfifo "$work/hold"
  "$python" - "$port" "$flood" "$work/hold" <<'PY' &
import socket, sys
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        break
    socks.append(s)
print(len(socks), "idle connections open", flush=True)
open(sys.argv[3]).read()  # until the script closes its end of the pipe
for s in socks:
    s.close()
PY
  local holder=$!
  pids+=("$holder")
  local hold_fd
  exec {hold_fd}>"$work/hold"
  wait_for_file "$log" "descriptors ran out" $((episodes + 1)) 60
  exec {hold_fd}>&-
  wait "$holder" || true
}

# within SECONDS COMMAND...: runs COMMAND until it succeeds, at most SECONDS.
within() {
  local limit=$1 deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

resolves() {  # resolves REGISTRY: chatctl resolve of a missing name exits 1 (NOT_FOUND)
  local code=0
  timeout 20 "$bin_dir/chatctl" --registry "$1" --timeout 2 resolve nobody \
    >/dev/null 2>&1 || code=$?
  [ "$code" = 1 ]
}

healthy() {  # healthy PORT: a gRPC server on 127.0.0.1:PORT answers a call
  "$python" - "$1" <<'PY' >/dev/null 2>&1
import sys, grpc
channel = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
check = channel.unary_unary("/grpc.health.v1.Health/Check")
try:
    check(b"", timeout=2)
except grpc.RpcError as e:  # Any answer but these means it was served.
    if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        sys.exit(1)
PY
}

step "chat-registry under a hard limit of $limit open files"
limited "$work/limited" chat-registry
registry_port=$(free_port)
registry=127.0.0.1:$registry_port
"$work/limited/chat-registry" --listen "$registry" --db "$work/registry.db" \
  >"$work/registry.log" 2>&1 &
registry_pid=$!
pids+=("$registry_pid")
wait_for_line "$work/registry.log" "start: listening" "$registry_pid"
resolves "$registry" || fail "the registry does not answer before the flood"

step "$flood idle connections to the registry, then closed"
exhaust "$registry_port" "$work/registry.log"
kill -0 "$registry_pid" || fail "the registry died"
within 30 resolves "$registry" ||
  fail "the registry did not serve chatctl again within 30 s after the flood"
grep -q "listening again" "$work/registry.log" ||
  fail "the registry served again without saying it listens again"

step "a second flood: it recovers every time"
exhaust "$registry_port" "$work/registry.log"
within 30 resolves "$registry" ||
  fail "the registry did not serve again after the second flood"
[ "$(grep -c "listening again" "$work/registry.log")" -ge 2 ] ||
  fail "no second 'listening again' line"

step "chat-greeter (no registry) under the same limit"
limited "$work/limited" chat-greeter
greeter_port=$(free_port)
"$work/limited/chat-greeter" --listen "127.0.0.1:$greeter_port" \
  --data-dir "$work/greeter" >"$work/greeter.log" 2>&1 &
greeter_pid=$!
pids+=("$greeter_pid")
wait_for_line "$work/greeter.log" "start: serving" "$greeter_pid"
healthy "$greeter_port" || fail "the greeter does not answer before the flood"
exhaust "$greeter_port" "$work/greeter.log"
within 30 healthy "$greeter_port" ||
  fail "the greeter did not answer a health check within 30 s after the flood"

step "a chat-peer's listener under the same limit"
kill -TERM "$registry_pid"
wait_for_exit "$registry_pid" 20
registry=127.0.0.1:$(free_port)
peer_ttl=4
source "$(dirname "$0")/peers.sh"
start_registry 1
limited "$work/limited" chat-peer
real_bin_dir=$bin_dir
bin_dir=$work/limited start_peer alice
bin_dir=$real_bin_dir
start_peer bob
wait_for_file "$work/alice.out" '"event":"ready","name":"alice"'
wait_for_file "$work/bob.out" '"event":"ready","name":"bob"'
alice_port=$(timeout 20 "$bin_dir/chatctl" --registry "$registry" resolve alice |
  grep -o '127\.0\.0\.1:[0-9]*' | head -1 | cut -d: -f2)
[ -n "$alice_port" ] || fail "cannot resolve alice's port"
say bob "@alice before the flood"
wait_for_file "$work/alice.out" '"text":"before the flood"'
wait_for_file "$work/bob.out" '"status":"delivered"' 1
# A peer writes its log lines, the supervisor's included, to NAME.log in
# its data directory, not to the terminal.
exhaust "$alice_port" "$work/data/alice.log"
kill -0 "${peer_pid[alice]}" || fail "alice's peer died"
within 30 healthy "$alice_port" ||
  fail "alice's listener did not answer within 30 s after the flood"
say bob "@alice after the flood"
wait_for_file "$work/alice.out" '"text":"after the flood"' 1 30
wait_for_file "$work/bob.out" '"status":"delivered"' 2 30
grep -h "accept4\|gRPC stopped\|listening again" "$work"/*.log "$work"/*.err || true
echo "PASS"
