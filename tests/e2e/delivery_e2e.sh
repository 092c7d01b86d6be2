#!/usr/bin/env bash
# Fault tests of the delivery guarantee (docs/delivery.md), with the real
# binaries on loopback: processes are killed with kill -9 at awkward moments
# and every message is counted afterwards by check_delivery.py (all arrived,
# none shown twice, in order, every acknowledged one among them). Each
# scenario is bounded in time by its waits.
#
# Usage: delivery_e2e.sh BIN_DIR SCENARIO
#   recipient-offline   alice sends 100 to bob, who registered once and is
#                       not running; bob
#                       starts later and gets them all
#   recipient-killed    bob is killed in the middle of 1,000 messages (the
#                       first 500 are on their way, the rest follow) and
#                       restarted at once
#   sender-killed       alice is killed right after her messages are stored;
#                       they still reach bob, and alice hears so when back
#   registry-killed     the registry is killed and restarted while messages
#                       wait in bob's mailbox
#   all-down            registry and bob are down while alice sends; the
#                       messages wait in alice's outbox and go out later
#   registry-outage     the registry is killed between two live peers: they
#                       keep chatting both ways, each told once that it is
#                       away and once that it is back
set -euo pipefail
bin_dir=${1:?usage: delivery_e2e.sh BIN_DIR SCENARIO}
scenario=${2:?usage: delivery_e2e.sh BIN_DIR SCENARIO}
source "$(dirname "$0")/lib.sh"

port=$(free_port)
registry=127.0.0.1:$port
peer_ttl=3
source "$(dirname "$0")/peers.sh"

# send_numbered FROM TO LAST [FIRST]: types messages mFIRST..mLAST (m0001 ...)
send_numbered() {
  local i
  for ((i = ${4:-1}; i <= $3; i++)); do printf '@%s m%04d\n' "$2" "$i"; done >&"${peer_fd[$1]}"
}

# check COUNT SECONDS [--all-delivered]: waits up to SECONDS for alice -> bob
# to be complete, then checks the guarantee over every log of both.
check() {
  local count=$1 limit=$2
  shift 2
  "$python" "$(dirname "$0")/check_delivery.py" --count "$count" \
    --sender-name alice --receiver-name bob \
    --receiver "$work"/bob.before-restart*.log "$work/bob.out" \
    --sender "$work"/alice.before-restart*.log "$work/alice.out" \
    --wait "$limit" "$@" || fail "the delivery guarantee does not hold"
}

# count_in FILE NEEDLE: lines of FILE holding NEEDLE.
count_in() { grep -cF -- "$2" "$1" 2>/dev/null || true; }

# Mail goes only to a name bound to a key (sealed to it): bob registers once
# with his key, then leaves cleanly, before alice writes to him.
bob_registers_once() {
  step "bob registers once (his name is bound to his key), then leaves"
  start_peer bob
  wait_for_file "$work/bob.out" '"event":"ready"'
  eval "exec ${peer_fd[bob]}>&-"
  wait_for_exit "${peer_pid[bob]}" 30
  [ "$exit_code" = 0 ] || fail "bob exited $exit_code"
  unset "peer_fd[bob]"
}

kill_hard() {  # kill_hard PID: kill -9 and reap
  kill -9 "$1"
  wait "$1" 2>/dev/null || true
}

step "registry on $registry"
start_registry 1

case "$scenario" in
recipient-offline)
  bob_registers_once
  start_peer alice
  wait_for_file "$work/alice.out" '"event":"ready"'
  step "alice sends 100 messages to bob, who is not running"
  send_numbered alice bob 100
  wait_for_file "$work/alice.out" '"status":"stored"' 100 60
  step "bob starts: all 100 arrive once each, in order; alice hears of each"
  start_peer bob
  check 100 60 --all-delivered
  ;;

recipient-killed)
  start_peer bob
  start_peer alice
  wait_for_file "$work/bob.out" '"event":"ready"'
  wait_for_file "$work/alice.out" '"event":"ready"'
  step "alice sends 1,000 messages to bob, the second half after bob is killed"
  send_numbered alice bob 500
  wait_for_file "$work/bob.out" '"event":"message"' 200 60
  step "kill -9 bob after $(count_in "$work/bob.out" '"event":"message"') messages; restart him at once"
  kill_hard "${peer_pid[bob]}"
  send_numbered alice bob 1000 501
  start_peer bob
  wait_for_file "$work/bob.out" '"event":"ready"'
  step "all 1,000 arrive exactly once, in order"
  check 1000 120 --all-delivered
  ;;

sender-killed)
  bob_registers_once
  start_peer alice
  wait_for_file "$work/alice.out" '"event":"ready"'
  step "bob is away; alice sends 20, all stored; then kill -9 alice"
  send_numbered alice bob 20
  wait_for_file "$work/alice.out" '"status":"stored"' 20 30
  kill_hard "${peer_pid[alice]}"
  step "bob starts and gets all 20 from his mailbox"
  start_peer bob
  check 20 30
  step "alice comes back and hears that all 20 were delivered"
  start_peer alice
  check 20 30 --all-delivered
  ;;

registry-killed)
  bob_registers_once
  start_peer alice
  wait_for_file "$work/alice.out" '"event":"ready"'
  step "bob is away; alice sends 50, all stored in his mailbox"
  send_numbered alice bob 50
  wait_for_file "$work/alice.out" '"status":"stored"' 50 30
  step "kill -9 the registry and restart it"
  kill_hard "$registry_pid"
  start_registry 2
  step "bob starts: all 50 arrive, none lost"
  start_peer bob
  check 50 60 --all-delivered
  ;;

all-down)
  start_peer bob
  start_peer alice
  wait_for_file "$work/bob.out" '"event":"ready"'
  wait_for_file "$work/alice.out" '"event":"ready"'
  step "kill -9 bob and the registry; alice sends 30"
  kill_hard "${peer_pid[bob]}"
  kill_hard "$registry_pid"
  send_numbered alice bob 30
  wait_for_file "$work/alice.out" '"status":"sent"' 30 30
  wait_for_file "$work/alice.out" '"reason":' 1 30
  [ "$(count_in "$work/alice.out" '"status":"stored"')" = 0 ] ||
    fail "a message was stored with the registry down"
  step "the registry comes back: the messages leave alice's outbox"
  start_registry 2
  wait_for_file "$work/alice.out" '"status":"stored"' 30 60
  step "bob comes back: all 30 arrive once each, in order"
  start_peer bob
  check 30 60 --all-delivered
  ;;

registry-outage)
  start_peer bob
  start_peer alice
  wait_for_file "$work/bob.out" '"event":"ready"'
  wait_for_file "$work/alice.out" '"event":"ready"'
  step "alice and bob write to each other once (each learns the other's address)"
  send_numbered alice bob 5
  wait_for_file "$work/alice.out" '"status":"delivered"' 5 30
  say bob "@alice hi alice"
  wait_for_file "$work/bob.out" '"status":"delivered"' 1 30
  step "kill -9 the registry; alice and bob keep chatting, both ways"
  kill_hard "$registry_pid"
  send_numbered alice bob 25 6
  say bob "@alice still here, the registry is gone"
  wait_for_file "$work/alice.out" '"text":"still here, the registry is gone"' 1 30
  wait_for_file "$work/bob.out" '"status":"delivered"' 2 30
  wait_for_file "$work/alice.out" '"status":"delivered"' 25 30
  wait_for_file "$work/alice.out" '"text":"the registry is unreachable; chatting goes on' 1 30
  wait_for_file "$work/bob.out" '"text":"the registry is unreachable; chatting goes on' 1 30
  send_numbered alice bob 40 26
  wait_for_file "$work/alice.out" '"status":"delivered"' 40 30
  [ "$(count_in "$work/alice.out" '"status":"stored"')" = 0 ] ||
    fail "a message was stored with the registry down"
  for name in alice bob; do
    waited=$(grep -F '"event":"send"' "$work/$name.out" | grep -F '"reason":' | head -n 1 || true)
    [ -z "$waited" ] || fail "a message of $name to a live peer waited: $waited"
  done
  step "the registry comes back: told once, the chat goes on"
  start_registry 2
  wait_for_file "$work/alice.out" '"text":"the registry is back"' 1 30
  wait_for_file "$work/bob.out" '"text":"the registry is back"' 1 30
  send_numbered alice bob 45 41
  check 45 60 --all-delivered
  for name in alice bob; do
    [ "$(count_in "$work/$name.out" '"text":"the registry is unreachable; chatting')" = 1 ] ||
      fail "$name was not told exactly once that the registry is away"
    [ "$(count_in "$work/$name.out" '"text":"the registry is back"')" = 1 ] ||
      fail "$name was not told exactly once that the registry is back"
    [ "$(count_in "$work/$name.out" 'registry watch')" = 0 ] ||
      fail "$name was told of the watch too"
  done
  ;;

*)
  echo "unknown scenario: $scenario" >&2
  exit 2
  ;;
esac

step "alice and bob leave cleanly"
for name in alice bob; do
  eval "exec ${peer_fd[$name]}>&-"
  wait_for_exit "${peer_pid[$name]}" 30
  [ "$exit_code" = 0 ] || fail "$name exited $exit_code"
done
echo "PASS delivery $scenario"
