#!/usr/bin/env bash
# Groups as users use them, real binaries on loopback, peers driven through
# their stdin with --json: alice makes #team with bob and carol; everyone
# writes to it; carol, offline, misses nothing and gets alice's messages in
# order; dave joins and sees what is said from then on; carol is removed and
# gets nothing more, and her peer refuses to send to the group; only the
# owner may change it; /groups and /history #team show it; each member who
# reads a message in #team (not in its direct conversation with the sender)
# is named in the sender's read events and /history #team.
#
# Usage: group_e2e.sh BIN_DIR   (the build's bin/)
set -euo pipefail
bin_dir=${1:?usage: group_e2e.sh BIN_DIR}
source "$(dirname "$0")/lib.sh"

port=$(free_port)
registry=127.0.0.1:$port
source "$(dirname "$0")/peers.sh"

# group_messages NAME: the texts of NAME's group messages, one per line, in
# the order shown.
group_messages() {
  grep -F '"event":"message"' "$work/$1.out" | grep -F '"group":"team"' |
    sed -E 's/.*"text":"([^"]*)".*/\1/' || true
}

step "registry on $registry; alice, bob, carol and dave"
start_registry 1
for name in alice bob carol dave; do start_peer "$name"; done
for name in alice bob carol dave; do
  wait_for_file "$work/$name.out" "\"event\":\"ready\",\"name\":\"$name\""
done

step "alice creates #team with bob and carol; both are told"
say alice "/group create team bob carol"
wait_for_file "$work/alice.out" 'you are in #team now: owner alice; members alice, bob, carol'
wait_for_file "$work/bob.out" '"text":"you are in #team now: owner alice; members alice, bob, carol","group":"team"'
wait_for_file "$work/carol.out" '"text":"you are in #team now: owner alice; members alice, bob, carol","group":"team"'

step "everyone writes to #team and everyone else reads it"
say alice "#team hello team"
say bob "#team hi from bob"
say carol "/group team"
wait_for_file "$work/carol.out" '"event":"partner","name":"#team"'
say carol "plain line from carol"
for name in bob carol; do wait_for_file "$work/$name.out" '"text":"hello team"'; done
for name in alice carol; do wait_for_file "$work/$name.out" '"text":"hi from bob"'; done
for name in alice bob; do wait_for_file "$work/$name.out" '"text":"plain line from carol"'; done
grep -F '"text":"hello team"' "$work/bob.out" | grep -qF '"group":"team"' ||
  fail "bob was not told hello team came in #team"
grep -qF '"text":"hello team"' "$work/dave.out" && fail "dave, not a member, got a group message"

step "only the owner changes the group"
say bob "/group add team dave"
wait_for_file "$work/bob.out" 'only alice'

step "carol is offline; alice writes 20 messages; carol gets them all, in order"
stop_cleanly TERM "${peer_pid[carol]}" carol
for i in $(seq 1 20); do say alice "#team m$i"; done
wait_for_file "$work/bob.out" '"text":"m20"'
start_peer carol
wait_for_file "$work/carol.out" '"text":"m20"' 1 40
expected=$(for i in $(seq 1 20); do echo "m$i"; done)
[ "$(group_messages carol | grep -E '^m[0-9]+$')" = "$expected" ] ||
  fail "carol got: $(group_messages carol | tr '\n' ' ')"

step "dave joins: everyone hears of it, and dave reads what comes next"
say alice "/group add team dave"
wait_for_file "$work/dave.out" '"text":"you are in #team now: owner alice; members alice, bob, carol, dave"'
wait_for_file "$work/bob.out" '#team: dave was added'
say bob "#team welcome dave"
wait_for_file "$work/dave.out" '"text":"welcome dave"'
group_messages dave | grep -qx 'hello team' && fail "dave was shown what was said before he joined"

step "carol is removed: she is told, gets nothing more, and cannot write"
say alice "/group remove team carol"
wait_for_file "$work/carol.out" 'you were removed'
say alice "#team after carol left"
for name in bob dave; do wait_for_file "$work/$name.out" '"text":"after carol left"'; done
sleep 1
grep -qF '"text":"after carol left"' "$work/carol.out" && fail "carol got a message after her removal"
say carol "#team still here?"
wait_for_file "$work/carol.out" 'you are not in #team'

step "/groups lists members with fingerprints; /history #team recalls"
say bob "/groups"
wait_for_file "$work/bob.out" '#team, version 3'
fingerprint=$(grep -F '"event":"ready","name":"dave"' "$work/dave.out" | sed -E 's/.*"fingerprint":"([^"]*)".*/\1/')
wait_for_file "$work/bob.out" "dave  $fingerprint"
say bob "/history #team 5"
wait_for_file "$work/bob.out" '"event":"history"'
grep -F '"event":"history"' "$work/bob.out" | grep -qF 'after carol left' ||
  fail "bob's /history #team lacks the last message"

step "bob and dave read in #team; alice hears from each, by name"
say alice "#team read me"
for name in bob dave; do wait_for_file "$work/$name.out" '"text":"read me"'; done
sent=$(grep -F '"event":"send"' "$work/alice.out" | grep -F '"text":"read me"' | head -1)
id=$(sed -E 's/.*"id":"([^"]*)".*/\1/' <<<"$sent")
group_id=$(sed -E 's/.*"group_id":"([^"]*)".*/\1/' <<<"$sent")
# Active with alice directly: that reads none of her group messages.
say bob "@alice a word aside"
wait_for_file "$work/alice.out" '"text":"a word aside"'
say bob "/group team"
say dave "#team got it"
for name in bob dave; do
  wait_for_file "$work/alice.out" "\"id\":\"$id\",\"group\":\"team\",\"group_id\":\"$group_id\",\"to\":\"$name\",\"status\":\"read\""
done
# The history's write follows the event (not waited for): ask again until
# it has both.
for try in $(seq 1 40); do
  say alice "/history #team 3"
  grep -qF '"read_by":["bob","dave"]' "$work/alice.out" && break
  [ "$try" -lt 40 ] || fail "alice's /history #team does not name bob and dave as readers"
  sleep 0.25
done

step "all leave cleanly"
for name in alice bob carol dave; do stop_cleanly TERM "${peer_pid[$name]}" "$name"; done
echo "group_e2e: OK"
