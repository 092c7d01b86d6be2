#!/usr/bin/env bash
# A squatter on a dead peer's port cannot fake "delivered" (plaintext):
# carol is kill -9'd with her lease alive; another process (the lab's own
# Python peer, which answers OK to every SendMessage) binds her old port.
# alice's message to carol must not be reported delivered: the OK carries no
# proof from carol's key, so it goes to carol's mailbox, and carol, back,
# shows it once; only then does alice see delivered.
#
# Usage: run_squatter.sh BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN
set -euo pipefail
source "${BASH_SOURCE[0]%/*}/lab_lib.sh" "$@"

lab_chat_stubs
start_registry

carol_port=$(free_port)
start_carol() {
  mkfifo "$work/carol.in.$1"
  "$bin_dir/chat-peer" --name carol --listen "127.0.0.1:$carol_port" --json \
    --data-dir "$work/carol-data" \
    <"$work/carol.in.$1" >"$work/carol.out.$1" 2>"$work/carol.err.$1" &
  carol=$!
  pids+=("$carol")
  exec {carol_fd}>"$work/carol.in.$1"
  wait_for_line "$work/carol.out.$1" '"event":"ready"' "$carol"
}

step "carol starts on 127.0.0.1:$carol_port, then is killed (her lease lives on)"
start_carol 1
kill -9 "$carol"
wait "$carol" 2>/dev/null || true
exec {carol_fd}>&-

step "a squatter binds carol's old port and answers OK to everything"
# It serves while its stdin is open.
mkfifo "$work/squatter.in"
"$python" "$repo/tests/lab/lab_peer.py" squatter "$carol_port" \
  <"$work/squatter.in" >"$work/squatter.out" 2>"$work/squatter.err" &
squatter=$!
pids+=("$squatter")
exec {squatter_fd}>"$work/squatter.in"
wait_for_file "$work/squatter.out" '"listening"'

step "alice writes to carol"
start_json_peer alice
alice=$peer_pid alice_fd=$peer_fd
echo "@carol for carol only" >&"$alice_fd"
wait_for_line "$work/alice.out" '"status":"stored"' "$alice"
grep -q '"received"' "$work/squatter.out" ||
  fail "the squatter was never asked (the test proves nothing)"
grep -F '"status":"stored"' "$work/alice.out" |
  grep -qF 'carol did not confirm it with its key' ||
  fail "alice was not told why it is not delivered"
if grep -F '"status":"delivered"' "$work/alice.out"; then
  fail "alice saw delivered on the squatter's OK"
fi

step "the squatter goes; carol is back and gets it from her mailbox, once"
kill -9 "$squatter"
wait "$squatter" 2>/dev/null || true
exec {squatter_fd}>&-
start_carol 2
wait_for_line "$work/carol.out.2" '"text":"for carol only"' "$carol"
wait_for_line "$work/alice.out" '"status":"delivered"' "$alice"
grep -F '"status":"delivered"' "$work/alice.out" | grep -qF 'from the mailbox' ||
  fail "alice's delivered did not come from carol's receipt"
if grep -F '"status":"delivered"' "$work/alice.out" | grep -qF '"unverified"'; then
  fail "carol's receipt (made by her key) counted as unverified"
fi
[ "$(grep -cF '"text":"for carol only"' "$work/carol.out.2")" = 1 ] ||
  fail "carol did not show it exactly once"

echo "PASS squatter"
