#!/usr/bin/env bash
# End to end with the real binaries: chat-registry on a free loopback port,
# chat-greeter registering in it, a client finding the greeter by name, a
# second greeter refused the name, a registry that restarts with its state
# lost and gets the name back, SIGTERM unregistering the greeter.
#
# Usage: greeter_e2e.sh BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN
#   BIN_DIR holds chat-registry, chat-greeter and chatctl.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN" >&2
  exit 2
fi
bin_dir=$1 repo=$2 protoc=$3 plugin=$4
source "$repo/tests/e2e/lib.sh"

# resolve NAME: prints NAME's address; exits 1 if the registry has no NAME.
resolve() {
  timeout 20 "$bin_dir/chatctl" resolve "$1" \
    --registry "127.0.0.1:$registry_port" 2>"$work/resolve.err"
}

step "generate Python stubs (greet)"
mkdir -p "$work/py"
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
  --data-dir "$work/greeter-data" --listen 127.0.0.1:0 --ttl 2 2>"$work/greeter.log" &
greeter_pid=$!
pids+=("$greeter_pid")
wait_for_line "$work/greeter.log" "start: serving GreetService" "$greeter_pid" 20
greeter_port=$(port_in_log "$work/greeter.log")
[[ -n "$greeter_port" ]] || fail "no port in the greeter's log"
echo "greeter on 127.0.0.1:$greeter_port"
wait_for_line "$work/greeter.log" "registered as greeter -> " "$greeter_pid" 20
[[ -f "$work/greeter-data/identity.key" ]] || fail "no identity key in the greeter's data directory"
[[ "$(stat -c %a "$work/greeter-data/identity.key")" == 600 ]] || fail "identity key not 0600"
grep -q "register greeter (key " "$work/registry.log" || fail "the registry did not log the greeter's key"

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
  --data-dir "$work/greeter-data" --listen 127.0.0.1:0 2>"$work/second.log" &
second_pid=$!
pids+=("$second_pid")
wait_for_exit "$second_pid" 20
cat "$work/second.log"
[[ $exit_code -eq 1 ]] || fail "second greeter exited $exit_code, expected 1"
grep -q "not taking over a live name" "$work/second.log" || fail "no clear line about the taken name"
address=$(resolve greeter) || fail "resolve failed"
[[ "$address" == "127.0.0.1:$greeter_port" ]] || fail "the name moved to $address"

step "a greeter with another key cannot take the name: it belongs to another key"
"$bin_dir/chat-greeter" --registry "127.0.0.1:$registry_port" \
  --data-dir "$work/thief-data" --listen 127.0.0.1:0 2>"$work/thief.log" &
thief_pid=$!
pids+=("$thief_pid")
wait_for_exit "$thief_pid" 20
cat "$work/thief.log"
[[ $exit_code -eq 1 ]] || fail "thief greeter exited $exit_code, expected 1"
grep -q "belongs to another key" "$work/thief.log" || fail "no clear line about the other key"
address=$(resolve greeter) || fail "resolve failed"
[[ "$address" == "127.0.0.1:$greeter_port" ]] || fail "the name moved to $address"

step "the registry restarts with a fresh database: the greeter registers again"
stop_cleanly TERM "$registry_pid" registry
# The same port, so the greeter's --registry still points at it.
start_registry "$registry_port" "$work/registry2.db" "$work/registry2.log"
wait_for_line "$work/greeter.log" 'registered "greeter" again' "$greeter_pid" 30
address=$(resolve greeter) || fail "resolve failed"
echo "greeter -> $address"
[[ "$address" == "127.0.0.1:$greeter_port" ]] || fail "expected 127.0.0.1:$greeter_port"

step "SIGTERM: the greeter unregisters and exits 0"
stop_cleanly TERM "$greeter_pid" greeter
cat "$work/greeter.log"
code=0
address=$(resolve greeter) || code=$?
[[ $code -ne 0 ]] || fail "greeter still resolves to $address"
[[ $code -eq 1 ]] || fail "resolve failed (chatctl exited $code)"

step "stop the registry"
stop_cleanly TERM "$registry_pid" registry

echo "PASS"
