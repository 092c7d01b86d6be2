#!/usr/bin/env bash
# Clients of several registries, end to end with the real binaries: a real
# etcd on loopback; registries A and B on it (--store etcd); alice, bob and
# the greeter run with --registry A,B. After kill -9 of A they move to B
# within one TTL, each told once which registry went away; alice and bob
# keep chatting by name and keep their names and leases (B resolves them a
# TTL later, and no lease was lost); mail for bob while he is offline waits
# in his mailbox through B and reaches him; chatctl with A,B works while A is
# dead. With B killed too, chatctl says once that no registry is reachable,
# naming both, and each peer says once that the registry is away.
#
# Usage: multireg_e2e.sh BIN_DIR [ETCD_BINARY]   (exit 77: no etcd, skipped)
set -euo pipefail

bin_dir=${1:?usage: multireg_e2e.sh BIN_DIR [ETCD_BINARY]}
etcd_bin=${2:-/usr/bin/etcd}
source "$(dirname "$0")/lib.sh"

if [ ! -x "$etcd_bin" ]; then
  echo "SKIP: $etcd_bin is missing (scripts/install-deps installs etcd-server)"
  exit 77
fi
chatctl() { timeout 20 "$bin_dir/chatctl" "$@"; }
count_in() { grep -cF -- "$2" "$1" 2>/dev/null || true; }

step "etcd on loopback"
start_etcd "$etcd_bin"

# Fixed ports, so the peers can be told both addresses before either starts.
a_addr=127.0.0.1:$(free_port)
b_addr=127.0.0.1:$(free_port)
registry="$a_addr,$b_addr"
peer_ttl=4
source "$(dirname "$0")/peers.sh"

# start_cluster_registry NAME ADDRESS: chat-registry --store etcd on
# ADDRESS, the admin token in $work; sets ${NAME}_pid.
start_cluster_registry() {
  (without_pipes "$bin_dir/chat-registry" --listen "$2" --store etcd \
    --etcd-endpoints "$etcd_endpoint" --admin-token-file "$work/admin.token") \
    >"$work/$1.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_for_line "$work/$1.log" "start: listening" "$pid"
  printf -v "${1}_pid" %s "$pid"
}

step "registries A ($a_addr) and B ($b_addr) on one etcd"
start_cluster_registry a "$a_addr"
start_cluster_registry b "$b_addr"

step "--help of the three clients explains several registries"
for program in chat-peer chat-greeter chatctl; do
  "$bin_dir/$program" --help | tr "\n" " " | tr -s " " | grep -qF "or several" ||
    fail "$program --help does not say --registry takes several"
done

step "a bad list is a usage error (exit 2) naming the bad piece"
code=0
chatctl --registry "$a_addr,,$b_addr" list >/dev/null 2>"$work/bad.err" || code=$?
[ "$code" = 2 ] || fail "chatctl with an empty piece exited $code, not 2"
grep -qF "empty registry address" "$work/bad.err" || fail "no clear message: $(cat "$work/bad.err")"

step "bob registers once (his name is bound to his key), then leaves"
start_peer bob
wait_for_file "$work/bob.out" '"event":"ready"'
eval "exec ${peer_fd[bob]}>&-"
wait_for_exit "${peer_pid[bob]}" 30
[ "$exit_code" = 0 ] || fail "bob exited $exit_code"
unset "peer_fd[bob]"

step "alice, bob and the greeter start with --registry A,B (all at A)"
start_peer alice --peer bob
start_peer bob --peer alice
wait_for_file "$work/alice.out" '"event":"ready"'
wait_for_file "$work/bob.out" '"event":"ready"'
(without_pipes "$bin_dir/chat-greeter" --listen 127.0.0.1:0 \
  --registry "$registry" --ttl "$peer_ttl" --data-dir "$work/greeter") \
  >"$work/greeter.log" 2>&1 &
greeter_pid=$!
pids+=("$greeter_pid")
wait_for_line "$work/greeter.log" "in the registry at $a_addr" "$greeter_pid"
say alice "hello before A dies"
wait_for_file "$work/bob.out" '"text":"hello before A dies"'

step "kill -9 of A: each moves to B within one TTL, saying which went away"
kill -9 "$a_pid"
wait "$a_pid" 2>/dev/null || true
switched="the registry at $a_addr is unreachable; using the one at $b_addr"
wait_for_file "$work/alice.out" "$switched" 1 "$peer_ttl"
wait_for_file "$work/bob.out" "$switched" 1 "$peer_ttl"
wait_for_file "$work/greeter.log" "using the registry at $b_addr instead of $a_addr" 1 "$peer_ttl"

step "alice and bob keep chatting by name"
say alice "@bob after A died"
wait_for_file "$work/bob.out" '"text":"after A died"'
say bob "@alice still here"
wait_for_file "$work/alice.out" '"text":"still here"'

step "a TTL later, B still resolves all three, and no lease was lost"
# Let a whole TTL pass: a lease that was not renewed through B ends in it.
sleep $((peer_ttl + 1))
for name in alice bob greeter; do
  chatctl --registry "$b_addr" resolve "$name" >/dev/null ||
    fail "B lost $name after A died"
done
for name in alice bob; do
  [ "$(count_in "$work/$name.out" "lease on \\\"$name\\\" lost")" = 0 ] ||
    fail "$name lost her lease: $(grep -F 'lost' "$work/$name.out")"
  [ "$(count_in "$work/$name.out" "$switched")" = 1 ] ||
    fail "$name was told of the switch more than once"
done
grep -qF "registered \"greeter\" again" "$work/greeter.log" &&
  fail "the greeter lost its lease"

step "chatctl with A,B, A dead: resolve, list, health and watch work"
out=$(chatctl --registry "$registry" resolve alice) || fail "resolve through A,B failed"
[[ "$out" == 127.0.0.1:* ]] || fail "resolve through A,B said: $out"
out=$(chatctl --registry "$registry" list) || fail "list through A,B failed"
[[ "$out" == *alice* && "$out" == *bob* && "$out" == *greeter* ]] || fail "A,B lists: $out"
out=$(chatctl --registry "$registry" health) || fail "health through A,B failed"
[ "$out" = SERVING ] || fail "health through A,B said: $out"
code=0
timeout 3 "$bin_dir/chatctl" --registry "$registry" watch >"$work/watch.out" 2>&1 || code=$?
[ "$code" = 124 ] || fail "watch through A,B exited $code: $(cat "$work/watch.out")"
grep -qF alice "$work/watch.out" || fail "watch through A,B showed: $(cat "$work/watch.out")"

step "bob leaves; alice's mail waits in his mailbox through B and reaches him"
eval "exec ${peer_fd[bob]}>&-"
wait_for_exit "${peer_pid[bob]}" 30
[ "$exit_code" = 0 ] || fail "bob exited $exit_code"
unset "peer_fd[bob]"
for i in 1 2 3 4 5; do say alice "@bob note $i"; done
wait_for_file "$work/alice.out" '"status":"stored"' 5
start_peer bob
for i in 1 2 3 4 5; do
  wait_for_file "$work/bob.out" "\"text\":\"note $i\""
  grep -F "\"text\":\"note $i\"" "$work/bob.out" | grep -qF '"late":true' ||
    fail "note $i did not come from the mailbox"
done
wait_for_file "$work/alice.out" '"reason":"from the mailbox"' 5

step "B killed too: no registry reachable, said once, naming both"
kill -9 "$b_pid"
wait "$b_pid" 2>/dev/null || true
code=0
chatctl --registry "$registry" resolve alice >/dev/null 2>"$work/none.err" || code=$?
[ "$code" = 3 ] || fail "chatctl with both dead exited $code, not 3"
grep -qF "no registry reachable ($a_addr, $b_addr)" "$work/none.err" ||
  fail "chatctl said: $(cat "$work/none.err")"
wait_for_file "$work/alice.out" "the registry is unreachable" 1 "$peer_ttl"
say alice "@bob directly"
wait_for_file "$work/bob.out" '"text":"directly"'
[ "$(count_in "$work/alice.out" "the registry is unreachable")" = 1 ] ||
  fail "alice was told more than once that the registry is away"

step "the peers and the greeter stop cleanly"
kill -TERM "$greeter_pid"
wait_for_exit "$greeter_pid" 20
for name in alice bob; do
  eval "exec ${peer_fd[$name]}>&-"
  wait_for_exit "${peer_pid[$name]}" 30
  [ "$exit_code" = 0 ] || fail "$name exited $exit_code"
done
echo "PASS"
