#!/usr/bin/env bash
# End to end with the real binaries: chat-registry on a free loopback port,
# chat-greeter registering in it, a client finding the greeter by name, a
# second greeter refused the name, a registry that restarts with its state
# lost and gets the name back, SIGTERM unregistering the greeter.
#
# Usage: greeter_e2e.sh BIN_DIR REPO_ROOT WORK_DIR PROTOC GRPC_PYTHON_PLUGIN PYTHON3
set -euo pipefail

if [[ $# -ne 6 ]]; then
  echo "usage: $0 BIN_DIR REPO_ROOT WORK_DIR PROTOC GRPC_PYTHON_PLUGIN PYTHON3" >&2
  exit 2
fi
bin_dir=$1 repo=$2 work_parent=$3 protoc=$4 plugin=$5 python=$6

step() { echo "== $*"; }
fail() {
  echo "FAIL: $*"
  for log in "$work"/*.log; do echo "--- $log"; cat "$log"; done
  exit 1
}

mkdir -p "$work_parent"
work=$(mktemp -d "$work_parent/run.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until FILE contains PATTERN, while PID lives, for at most SECONDS.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3 seconds=$4
  local deadline=$((SECONDS + seconds))
  until grep -q -- "$pattern" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "process $pid died before logging '$pattern'"
    ((SECONDS < deadline)) || fail "no '$pattern' in $file within ${seconds}s"
    sleep 0.05
  done
}

# Waits for PID to exit, for at most SECONDS; sets exit_code.
wait_for_exit() {
  local pid=$1 seconds=$2
  local deadline=$((SECONDS + seconds))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "process $pid still running after ${seconds}s"
    sleep 0.05
  done
  exit_code=0
  wait "$pid" || exit_code=$?
}

port_in_log() {
  sed -n 's/.*start: .* (port \([0-9]*\)).*/\1/p' "$1" | head -n 1
}

resolve() {
  "$python" "$repo/tests/greeter/registry_resolve.py" "127.0.0.1:$registry_port" "$1"
}

step "generate Python stubs (registry, greet)"
mkdir -p "$work/py"
"$protoc" -I "$repo" --python_out="$work/py" --grpc_out="$work/py" \
  --plugin=protoc-gen-grpc="$plugin" proto/registry.proto
"$protoc" -I "$repo/proto" --python_out="$work/py" --grpc_out="$work/py" \
  --plugin=protoc-gen-grpc="$plugin" greet.proto
export PYTHONPATH="$work/py"

# Starts chat-registry on 127.0.0.1:PORT with database DB, logging to LOG.
start_registry() {
  local port=$1 db=$2 log=$3
  "$bin_dir/chat-registry" --listen "127.0.0.1:$port" --db "$db" 2>"$log" &
  registry_pid=$!
  pids+=("$registry_pid")
  wait_for_line "$log" "start: listening" "$registry_pid" 20
}

step "start chat-registry on 127.0.0.1, a free port"
start_registry 0 "$work/registry.db" "$work/registry.log"
registry_port=$(port_in_log "$work/registry.log")
[[ -n "$registry_port" ]] || fail "no port in the registry's log"
echo "registry on 127.0.0.1:$registry_port"

step "start chat-greeter with --registry (2 s lease, so renewals come fast)"
"$bin_dir/chat-greeter" --registry "127.0.0.1:$registry_port" \
  --listen 127.0.0.1:0 --ttl 2 2>"$work/greeter.log" &
greeter_pid=$!
pids+=("$greeter_pid")
wait_for_line "$work/greeter.log" "start: serving GreetService" "$greeter_pid" 20
greeter_port=$(port_in_log "$work/greeter.log")
[[ -n "$greeter_port" ]] || fail "no port in the greeter's log"
echo "greeter on 127.0.0.1:$greeter_port"
wait_for_line "$work/greeter.log" "registered as greeter -> " "$greeter_pid" 20

step "the registry resolves greeter to the greeter"
address=$(resolve greeter) || fail "resolve failed"
echo "greeter -> $address"
[[ "$address" == "127.0.0.1:$greeter_port" ]] || fail "expected 127.0.0.1:$greeter_port"

step "the lab's client greets through the resolved address"
output=$(echo Anouk | timeout 20 "$python" "$repo/tests/lab/lab_greet_client.py" "$address") ||
  fail "the lab client failed"
echo "$output"
grep -qF "Server response: Hello, Anouk!" <<<"$output" || fail "wrong greeting"

step "a second greeter with the same name exits 1 and does not take it"
"$bin_dir/chat-greeter" --registry "127.0.0.1:$registry_port" \
  --listen 127.0.0.1:0 2>"$work/second.log" &
second_pid=$!
pids+=("$second_pid")
wait_for_exit "$second_pid" 20
cat "$work/second.log"
[[ $exit_code -eq 1 ]] || fail "second greeter exited $exit_code, expected 1"
grep -q "not taking over a live name" "$work/second.log" || fail "no clear line about the taken name"
address=$(resolve greeter) || fail "resolve failed"
[[ "$address" == "127.0.0.1:$greeter_port" ]] || fail "the name moved to $address"

step "the registry restarts with a fresh database: the greeter registers again"
kill -TERM "$registry_pid"
wait_for_exit "$registry_pid" 20
[[ $exit_code -eq 0 ]] || fail "registry exited $exit_code after SIGTERM"
# The same port, so the greeter's --registry still points at it.
start_registry "$registry_port" "$work/registry2.db" "$work/registry2.log"
wait_for_line "$work/greeter.log" 'registered "greeter" again' "$greeter_pid" 30
address=$(resolve greeter) || fail "resolve failed"
echo "greeter -> $address"
[[ "$address" == "127.0.0.1:$greeter_port" ]] || fail "expected 127.0.0.1:$greeter_port"

step "SIGTERM: the greeter unregisters and exits 0"
kill -TERM "$greeter_pid"
wait_for_exit "$greeter_pid" 20
cat "$work/greeter.log"
[[ $exit_code -eq 0 ]] || fail "greeter exited $exit_code after SIGTERM"
address=$(resolve greeter) || fail "resolve failed"
[[ "$address" == "NOT_FOUND" ]] || fail "greeter still resolves to $address"

step "stop the registry"
kill -TERM "$registry_pid"
wait_for_exit "$registry_pid" 20
[[ $exit_code -eq 0 ]] || fail "registry exited $exit_code after SIGTERM"

echo "PASS"
