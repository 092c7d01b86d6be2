#!/usr/bin/env bash
# Two registries on one etcd (--store etcd), end to end with the real
# binaries: a real etcd on loopback (temporary data directory, free ports);
# registries A and B on it with one admin token; a static entry made at A
# and a peer registered at A are resolved at B; a message for an offline
# peer deposited in the mailbox through A is received by that peer at B, and
# its delivery receipt reaches the sender at A; after kill -9 of A, B still
# serves both names; a registry whose admin token differs refuses to start.
# The registries are given no --db and write no file.
#
# Usage: cluster_e2e.sh BIN_DIR [ETCD_BINARY]   (exit 77: no etcd, skipped)
set -euo pipefail

bin_dir=${1:?usage: cluster_e2e.sh BIN_DIR [ETCD_BINARY]}
etcd_bin=${2:-/usr/bin/etcd}
source "$(dirname "$0")/lib.sh"

if [ ! -x "$etcd_bin" ]; then
  echo "SKIP: $etcd_bin is missing (scripts/install-deps installs etcd-server)"
  exit 77
fi
chatctl() { timeout 20 "$bin_dir/chatctl" "$@"; }

step "etcd on loopback"
start_etcd "$etcd_bin"

export CHAT_ADMIN_TOKEN_FILE=$work/admin.token

# start_registry NAME [ARGS...]: chat-registry --store etcd on a free port,
# no --db, run in the empty directory $work/NAME-cwd (which must stay
# empty: names and mail are in etcd); sets ${NAME}_pid and ${NAME}_addr.
start_registry() {
  local name=$1
  shift
  mkdir -p "$work/$name-cwd"
  (cd "$work/$name-cwd" &&
    exec "$bin_dir/chat-registry" --listen 127.0.0.1:0 --store etcd \
      --etcd-endpoints "$etcd_endpoint" "$@") \
    >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_for_line "$work/$name.log" "start: listening" "$pid"
  printf -v "${name}_pid" %s "$pid"
  printf -v "${name}_addr" %s "127.0.0.1:$(port_in_log "$work/$name.log")"
}

step "--help explains --store etcd and its options"
help=$("$bin_dir/chat-registry" --help)
for option in --store --etcd-endpoints --etcd-ca --etcd-cert --etcd-key \
              --etcd-prefix CHAT_REGISTRY_STORE CHAT_REGISTRY_ETCD_ENDPOINTS; do
  [[ "$help" == *"$option"* ]] || fail "--help does not mention $option"
done

step "registries A and B on one etcd, one admin token"
start_registry a --admin-token-file "$CHAT_ADMIN_TOKEN_FILE"
start_registry b --admin-token-file "$CHAT_ADMIN_TOKEN_FILE"
grep -qF "etcd $etcd_endpoint" "$work/a.log" || fail "A's start line does not name etcd"
grep -qF "mail in /chat/v1/mailbox/" "$work/a.log" ||
  fail "A's start line does not say where mail is: $(grep -F 'start:' "$work/a.log")"

step "a static entry made at A resolves at B"
chatctl --registry "$a_addr" register lab 127.0.0.1:7000 --static >/dev/null ||
  fail "register --static at A failed"
out=$(chatctl --registry "$b_addr" resolve lab) || fail "resolve lab at B failed"
[[ "$out" == *"127.0.0.1:7000"* ]] || fail "B resolved lab as: $out"

step "a peer registered at A resolves at B"
mkfifo "$work/alice.in"
"$bin_dir/chat-peer" --name alice --registry "$a_addr" --listen 127.0.0.1:0 \
  --ttl 30 --json --data-dir "$work/alice-data" \
  <"$work/alice.in" >"$work/alice.out" 2>"$work/alice.err" &
alice_pid=$!
pids+=("$alice_pid")
exec {alice_fd}>"$work/alice.in"
wait_for_line "$work/alice.out" '"event":"ready"' "$alice_pid"
out=$(chatctl --registry "$b_addr" resolve alice) || fail "resolve alice at B failed"
[[ "$out" == *"127.0.0.1:"* ]] || fail "B resolved alice as: $out"

step "mail deposited through A is received at B"
# bob registers at B, then leaves (end of input: he unregisters); his name
# stays bound to his key, so alice's message waits in his mailbox.
mkfifo "$work/bob.in"
start_bob() {
  "$bin_dir/chat-peer" --name bob --registry "$b_addr" --listen 127.0.0.1:0 \
    --ttl 30 --json --data-dir "$work/bob-data" \
    <"$work/bob.in" >>"$work/bob.out" 2>>"$work/bob.err" &
  bob_pid=$!
  pids+=("$bob_pid")
  exec {bob_fd}>"$work/bob.in"
}
start_bob
wait_for_line "$work/bob.out" '"event":"ready"' "$bob_pid"
exec {bob_fd}>&-
wait_for_exit "$bob_pid" 20
[ "$exit_code" = 0 ] || fail "bob exited $exit_code at the end of his input"
echo "@bob left you a note through registry A" >&"$alice_fd"
wait_for_line "$work/alice.out" '"status":"stored"' "$alice_pid"
start_bob
wait_for_line "$work/bob.out" '"text":"left you a note through registry A"' "$bob_pid"
grep -F '"text":"left you a note through registry A"' "$work/bob.out" |
  grep -qF '"late":true' || fail "bob's message did not come from the mailbox"
# bob's receipt is deposited through B, and alice hears it through A.
wait_for_line "$work/alice.out" '"reason":"from the mailbox"' "$alice_pid"
exec {bob_fd}>&-
wait_for_exit "$bob_pid" 20
[ "$exit_code" = 0 ] || fail "bob exited $exit_code"

step "kill -9 of A: B still serves both names"
kill -9 "$a_pid"
wait "$a_pid" 2>/dev/null || true
out=$(chatctl --registry "$b_addr" resolve alice) ||
  fail "B lost alice when A died"
out=$(chatctl --registry "$b_addr" resolve lab) || fail "B lost lab when A died"
[[ "$out" == *"127.0.0.1:7000"* ]] || fail "B resolved lab as: $out"
out=$(chatctl --registry "$b_addr" list) || fail "list at B failed"
[[ "$out" == *alice* && "$out" == *lab* ]] || fail "B lists: $out"

step "a registry with another admin token refuses to start"
code=0
timeout 20 "$bin_dir/chat-registry" --listen 127.0.0.1:0 --store etcd \
  --etcd-endpoints "$etcd_endpoint" \
  --admin-token-file "$work/other.token" >"$work/c.log" 2>&1 || code=$?
[ "$code" = 1 ] || fail "a registry with another token exited $code, not 1"
grep -qF "admin token" "$work/c.log" || fail "its refusal does not say why"

step "B stops cleanly; neither registry wrote a file"
exec {alice_fd}>&-
stop_cleanly TERM "$b_pid" "registry B"
for name in a b; do
  left=$(ls -A "$work/$name-cwd")
  [ -z "$left" ] || fail "registry ${name^^} wrote files: $left"
done
echo "PASS"
