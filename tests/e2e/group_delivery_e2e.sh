#!/usr/bin/env bash
# Fault tests of the group delivery guarantee (docs/delivery.md, "a group
# member offline, killed, or slow"), with the real binaries on loopback:
# alice writes to #team while members (or alice herself) are killed with
# kill -9 or away, and every member's copy of the conversation is counted by
# check_delivery.py --group team (all arrived, none shown twice, in alice's
# order). Each scenario is bounded in time by its waits.
#
# Usage: group_delivery_e2e.sh BIN_DIR SCENARIO
#   member-killed       alice, bob, carol, dave, erin in #team; alice types
#                       500 messages; bob is killed in the middle and
#                       restarted at once; carol is away for all of it;
#                       every member gets all 500, once each, in order
#   sender-killed       alice is killed in the middle of 300 messages and
#                       restarted; every member gets what her outbox held
#                       (every one reported sent among them), once, in order
#   changes-while-away  carol is away while alice adds dave, removes bob and
#                       writes; back, carol is told of both changes, reads
#                       alice's messages in order, and her own message
#                       reaches alice and dave, not bob
#   removal-in-flight   alice writes 100 messages and at once removes dave:
#                       dave gets a prefix of them and nothing after his
#                       removal; bob gets those and every later one
set -euo pipefail
bin_dir=${1:?usage: group_delivery_e2e.sh BIN_DIR SCENARIO}
scenario=${2:?usage: group_delivery_e2e.sh BIN_DIR SCENARIO}
source "$(dirname "$0")/lib.sh"

port=$(free_port)
registry=127.0.0.1:$port
peer_ttl=3
source "$(dirname "$0")/peers.sh"

# start_peers NAME...: starts each and waits until all are ready.
start_peers() {
  local name
  for name in "$@"; do start_peer "$name"; done
  for name in "$@"; do
    wait_for_file "$work/$name.out" "\"event\":\"ready\",\"name\":\"$name\"" 1 30
  done
}

# make_team MEMBER...: alice creates #team with them; each is told.
make_team() {
  local members="alice, $(echo "$@" | sed 's/ /, /g')" name
  say alice "/group create team $*"
  for name in alice "$@"; do
    wait_for_file "$work/$name.out" "you are in #team now: owner alice; members $members" 1 30
  done
}

# send_numbered FROM LAST [FIRST]: types #team mFIRST..mLAST (m0001 ...) at
# once, as fast as a pipe takes them.
send_numbered() {
  local i
  for ((i = ${3:-1}; i <= $2; i++)); do printf '#team m%04d\n' "$i"; done >&"${peer_fd[$1]}"
}

# check MEMBER COUNT SECONDS [ARGS...]: waits up to SECONDS for alice ->
# MEMBER in #team to be complete, then checks the guarantee over every log
# of both (ARGS go to check_delivery.py: --all-delivered, --allow-prefix).
check() {
  local member=$1 count=$2 limit=$3
  shift 3
  "$python" "$(dirname "$0")/check_delivery.py" --group team --count "$count" \
    --sender-name alice --receiver-name "$member" \
    --receiver "$work/$member".before-restart*.log "$work/$member.out" \
    --sender "$work"/alice.before-restart*.log "$work/alice.out" \
    --wait "$limit" "$@" || fail "the group delivery guarantee does not hold for $member"
}

# team_numbers FILE: the numbers of alice's #team messages FILE shows, one
# a line, in the order shown.
team_numbers() {
  grep -F '"event":"message"' "$1" | grep -F '"group":"team"' |
    grep -F '"from":"alice"' | sed -nE 's/.*"text":"m([0-9]{4})".*/\1/p' || true
}

# count_in FILE NEEDLE: lines of FILE holding NEEDLE.
count_in() { grep -cF -- "$2" "$1" 2>/dev/null || true; }

kill_hard() {  # kill_hard PID: kill -9 and reap
  kill -9 "$1"
  wait "$1" 2>/dev/null || true
}

step "registry on $registry"
start_registry 1
started=$SECONDS

case "$scenario" in
member-killed)
  members=(bob carol dave erin)
  start_peers alice "${members[@]}"
  make_team "${members[@]}"
  step "carol leaves cleanly; she is away for the whole send"
  stop_cleanly TERM "${peer_pid[carol]}" carol
  step "alice types 500 to #team; bob is killed in the middle"
  send_numbered alice 500
  wait_for_file "$work/bob.out" '"to":"bob","text":"m' 100 60
  kill_hard "${peer_pid[bob]}"
  step "bob was killed -9 after $(team_numbers "$work/bob.out" | wc -l) messages; restart him at once"
  start_peer bob
  wait_for_file "$work/bob.out" '"event":"ready"' 1 30
  step "all 500 copies for carol are stored in her mailbox; carol comes back"
  wait_for_file "$work/alice.out" '"to":"carol","status":"stored"' 500 120
  start_peer carol
  step "every member has all 500, once each, in order; alice hears of each"
  for name in "${members[@]}"; do check "$name" 500 120 --all-delivered; done
  # Shown again, flagged, only what bob's last commit had not noted yet.
  again=$(count_in "$work/bob.out" '"repeated":true')
  [ "$again" -le 64 ] || fail "bob showed $again messages again after his restart (at most 64)"
  ;;

sender-killed)
  members=(bob carol dave)
  start_peers alice "${members[@]}"
  make_team "${members[@]}"
  step "alice types 300 to #team; kill -9 alice in the middle"
  send_numbered alice 300
  wait_for_file "$work/bob.out" '"to":"bob","text":"m' 50 60
  kill_hard "${peer_pid[alice]}"
  acked=$(grep -F '"status":"sent"' "$work/alice.out" | grep -F '"group":"team"' |
    sed -nE 's/.*"text":"m0*([0-9]+)".*/\1/p' | sort -n | tail -n 1)
  step "alice was killed -9 after $acked reported sent and" \
    "$(count_in "$work/alice.out" '"status":"delivered"') copies delivered; she restarts"
  start_peer alice
  wait_for_file "$work/alice.out" '"event":"ready"' 1 30
  # Her history is written with her outbox, in one transaction: it says
  # what the outbox held.
  say alice "/history #team 1000"
  wait_for_file "$work/alice.out" '"event":"history"' 1 30
  held=$(grep -F '"event":"history"' "$work/alice.out" | grep -oE '"text":"m[0-9]{4}"' |
    sed -E 's/"text":"m0*//; s/"//')
  outbox=$(echo "$held" | wc -l)
  [ "$held" = "$(seq 1 "$outbox")" ] ||
    fail "alice's history after the restart is not m0001..m$outbox: $(echo "$held" | tr '\n' ' ' | head -c 300)"
  [ "$outbox" -ge "$acked" ] ||
    fail "alice reported $acked sent but her outbox held only $outbox"
  step "her outbox held $outbox; every member gets those, once each, in order"
  for name in "${members[@]}"; do check "$name" "$outbox" 90 --all-delivered; done
  ;;

changes-while-away)
  start_peers alice bob carol dave
  make_team bob carol
  step "carol leaves cleanly"
  stop_cleanly TERM "${peer_pid[carol]}" carol
  step "alice writes, adds dave, writes, removes bob, writes"
  send_numbered alice 5
  say alice "/group add team dave"
  wait_for_file "$work/dave.out" 'you are in #team now: owner alice; members alice, bob, carol, dave' 1 30
  send_numbered alice 10 6
  say alice "/group remove team bob"
  wait_for_file "$work/bob.out" '#team: you were removed' 1 30
  send_numbered alice 20 11
  wait_for_file "$work/dave.out" '"text":"m0020"' 1 60
  wait_for_file "$work/alice.out" '"to":"carol","status":"stored"' 20 60
  step "carol comes back: told of both changes, all 20 in order"
  start_peer carol
  # One line may tell both ("#team: dave was added; bob was removed").
  wait_for_file "$work/carol.out" 'dave was added' 1 30
  wait_for_file "$work/carol.out" 'bob was removed' 1 30
  grep -F '"event":"info"' "$work/carol.out" | grep -F '"group":"team"' |
    grep -F 'dave was added' | grep -qF '#team: ' || fail "carol was not told in #team that dave was added"
  grep -F '"event":"info"' "$work/carol.out" | grep -F '"group":"team"' |
    grep -F 'bob was removed' | grep -qF '#team: ' || fail "carol was not told in #team that bob was removed"
  check carol 20 60
  [ "$(team_numbers "$work/dave.out" | tr '\n' ' ')" = "$(seq -f %04g 6 20 | tr '\n' ' ')" ] ||
    fail "dave, added after m0005, did not get m0006..m0020 once each in order"
  say carol "/groups"
  wait_for_file "$work/carol.out" '#team, version 3' 1 30
  listed=$(grep -F '#team, version 3' "$work/carol.out" | tail -n 1)
  [[ $listed == *'  alice (owner)  '* && $listed == *'  carol (you)  '* &&
    $listed == *'  dave  '* && $listed != *'  bob  '* ]] ||
    fail "carol's /groups is not alice, carol and dave at version 3: $listed"
  step "carol writes to #team: alice and dave read it, bob does not"
  say carol "#team carol is back"
  for name in alice dave; do wait_for_file "$work/$name.out" '"text":"carol is back"' 1 30; done
  grep -F '"text":"carol is back"' "$work/carol.out" | grep -qF '"to":"bob"' &&
    fail "carol's peer sent her #team message to bob, who was removed"
  # A direct message after it goes on carol's queue for bob: once bob has
  # it, a copy for him would have come before it.
  say carol "@bob carol to bob directly"
  wait_for_file "$work/bob.out" '"text":"carol to bob directly"' 1 30
  [ "$(count_in "$work/bob.out" '"text":"carol is back"')" = 0 ] ||
    fail "bob, removed, was shown carol's #team message"
  ;;

removal-in-flight)
  start_peers alice bob dave
  make_team bob dave
  step "alice types 100 to #team and at once removes dave"
  send_numbered alice 100
  say alice "/group remove team dave"
  wait_for_file "$work/dave.out" '#team: you were removed' 1 60
  step "alice writes 20 more; bob gets all 120, once each, in order"
  send_numbered alice 120 101
  check bob 120 90 --all-delivered
  # A direct message after them goes on alice's queue for dave: once dave
  # has it, a copy of a later one for him would have come before it.
  say alice "@dave after your removal"
  wait_for_file "$work/dave.out" '"text":"after your removal"' 1 30
  step "dave has a prefix of the 100 ($(team_numbers "$work/dave.out" | wc -l)), none after his removal"
  check dave 100 0 --allow-prefix
  # The registry's word of the removal and alice's copies written before it
  # travel apart, so such a copy may be shown after "you were removed": it
  # was written while dave was a member (docs/delivery.md). Nothing written
  # after the removal (m0101 on) may reach him, before or after that line.
  late=$(team_numbers "$work/dave.out" | awk '$1 + 0 > 100' || true)
  [ -z "$late" ] ||
    fail "dave was shown #team messages written after his removal: $(echo "$late" | head -n 3 | tr '\n' ' ')"
  ;;

*)
  echo "unknown scenario: $scenario" >&2
  exit 2
  ;;
esac

step "all leave cleanly"
for name in "${!peer_fd[@]}"; do
  eval "exec ${peer_fd[$name]}>&-"
  wait_for_exit "${peer_pid[$name]}" 30
  [ "$exit_code" = 0 ] || fail "$name exited $exit_code"
done
echo "PASS group delivery $scenario in $((SECONDS - started)) s"
