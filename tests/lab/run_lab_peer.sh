#!/usr/bin/env bash
# A peer generated from the lab's own chat.proto (Python, python3-grpcio)
# chats with a real chat-peer in both directions. The lab peer cannot
# register itself, so an operator makes it reachable by name with
# `chatctl register davide ADDRESS --static`.
#
# Usage: run_lab_peer.sh BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN
set -euo pipefail
source "${BASH_SOURCE[0]%/*}/lab_lib.sh" "$@"

lab_chat_stubs
start_registry

step "the lab peer 'Davide' listens; chatctl registers it by name"
lab_port=$(free_port)
mkfifo "$work/lab.in"
"$python" "$repo/tests/lab/lab_peer.py" Davide "$lab_port" \
  <"$work/lab.in" >"$work/lab.out" 2>"$work/lab.err" &
pids+=("$!")
exec {lab_fd}>"$work/lab.in"
wait_for_file "$work/lab.out" '"listening"'
timeout 20 "$bin_dir/chatctl" --admin-token-file "$work/admin.token" \
  register davide "127.0.0.1:$lab_port" --static ||
  fail "chatctl register --static failed"

step "chat-peer alice starts"
start_json_peer alice
alice_fd=$peer_fd

step "alice -> the lab peer, by name"
echo "@davide ciao Davide, from a C++ peer" >&"$alice_fd"
wait_for_file "$work/lab.out" '"received": "ciao Davide, from a C++ peer"'
grep -F '"received"' "$work/lab.out" | grep -qF '"sender": "alice"' ||
  fail "the lab peer did not see alice as the sender"
wait_for_file "$work/alice.out" '"status":"delivered"'
# The lab peer holds no key: nothing but its word says it has the message.
grep -F '"status":"delivered"' "$work/alice.out" | grep -qF '"unverified":true' ||
  fail "a delivery to a lab peer (no key) is not marked unverified"

step "the lab peer -> alice: GetInformation, then SendMessage, lab style"
alice_address=$(timeout 20 "$bin_dir/chatctl" resolve alice)
echo "info $alice_address" >&"$lab_fd"
wait_for_file "$work/lab.out" '"info": "alice"'
echo "send $alice_address ciao alice, from the lab" >&"$lab_fd"
wait_for_file "$work/lab.out" '"sent": "ciao alice, from the lab"'
wait_for_file "$work/alice.out" '"text":"ciao alice, from the lab"'
grep -F '"text":"ciao alice, from the lab"' "$work/alice.out" |
  grep -qF '"from":"Davide"' || fail "alice did not see Davide as the sender"
grep -F '"text":"ciao alice, from the lab"' "$work/alice.out" |
  grep -qF '"unverified":true' || fail "a lab peer's message is not marked unverified"
grep -F '"text":"ciao alice, from the lab"' "$work/alice.out" |
  grep -qE '"id":"[0-9a-f-]{36}"' || fail "the lab message got no id on arrival"

echo "PASS lab_peer"
