#!/usr/bin/env bash
# The lab's Python greeter client against the real chat-greeter: stubs come
# from the lab's own greet.proto (tests/lab/proto/greet.proto), the client
# is tests/lab/lab_greet_client.py, the greeter listens on a free loopback
# port. Checks the lab's output and that bad names get INVALID_ARGUMENT.
#
# Usage: run_lab_greet.sh BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN" >&2
  exit 2
fi
bin_dir=$1 repo=$2 protoc=$3 plugin=$4
source "$repo/tests/e2e/lib.sh"

step "generate Python stubs from the lab's greet.proto"
mkdir -p "$work/py"
"$protoc" -I "$repo/tests/lab/proto" --python_out="$work/py" --grpc_out="$work/py" \
  --plugin=protoc-gen-grpc="$plugin" greet.proto
export PYTHONPATH="$work/py"

step "start chat-greeter on 127.0.0.1, a free port"
"$bin_dir/chat-greeter" --listen 127.0.0.1:0 2>"$work/greeter.log" &
greeter_pid=$!
pids+=("$greeter_pid")
wait_for_line "$work/greeter.log" "start: serving GreetService" "$greeter_pid" 20
port=$(port_in_log "$work/greeter.log")
[[ -n "$port" ]] || fail "no port in the greeter's log"
echo "greeter on 127.0.0.1:$port"

step "the lab's client greets Anouk"
output=$(echo Anouk | timeout 20 "$python" "$repo/tests/lab/lab_greet_client.py" "127.0.0.1:$port") || fail "the lab client failed"
echo "$output"
grep -qF "Server response: Hello, Anouk!" <<<"$output" || fail "expected 'Server response: Hello, Anouk!'"

step "a name over the limit gets INVALID_ARGUMENT"
long_name=$(printf 'x%.0s' $(seq 1 300))
if echo "$long_name" | timeout 20 "$python" "$repo/tests/lab/lab_greet_client.py" \
    "127.0.0.1:$port" >"$work/long.out" 2>"$work/long.err"; then
  fail "the greeter accepted a 300-byte name"
fi
grep -F "StatusCode.INVALID_ARGUMENT" "$work/long.err" || fail "expected INVALID_ARGUMENT"
grep -qF "256" "$work/long.err" || fail "the error does not name the 256-byte limit"

step "an empty name gets INVALID_ARGUMENT"
if echo "" | timeout 20 "$python" "$repo/tests/lab/lab_greet_client.py" \
    "127.0.0.1:$port" >"$work/empty.out" 2>"$work/empty.err"; then
  fail "the greeter accepted an empty name"
fi
grep -F "StatusCode.INVALID_ARGUMENT" "$work/empty.err" || fail "expected INVALID_ARGUMENT"

step "SIGTERM stops the greeter with exit 0"
stop_cleanly TERM "$greeter_pid" greeter
cat "$work/greeter.log"

echo "PASS"
