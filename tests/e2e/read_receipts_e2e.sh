#!/usr/bin/env bash
# Read receipts as a user sees them, real binaries on loopback,
# peers driven through their stdin with --json: bob writes, alice switches
# to him with /chat and bob sees "read" after "delivered"; alice types to
# bob and bob reads it by typing back; carol runs with --no-read-receipts
# and neither sends nor shows any.
#
# Usage: read_receipts_e2e.sh BIN_DIR   (the build's bin/)
set -euo pipefail
bin_dir=${1:?usage: read_receipts_e2e.sh BIN_DIR}
source "$(dirname "$0")/lib.sh"

port=$(free_port)
registry=127.0.0.1:$port
source "$(dirname "$0")/peers.sh"

step "registry on $registry, alice, bob and carol (--no-read-receipts)"
start_registry 1
start_peer alice
start_peer bob
CHAT_PEER_NO_READ_RECEIPTS=1 start_peer carol  # the option, from the environment
for name in alice bob carol; do
  wait_for_file "$work/$name.out" "\"event\":\"ready\",\"name\":\"$name\""
done

step "bob -> alice; alice is not in that conversation: delivered, not read"
say bob "@alice one"
wait_for_file "$work/alice.out" '"text":"one"'
wait_for_file "$work/bob.out" '"status":"delivered"'
grep -qF '"status":"read"' "$work/bob.out" && fail "read before alice looked"

step "alice switches to bob: bob sees read after delivered"
say alice "/chat bob"
wait_for_file "$work/bob.out" '"status":"read"'
delivered=$(grep -n '"status":"delivered"' "$work/bob.out" | head -1 | cut -d: -f1)
read=$(grep -n '"status":"read"' "$work/bob.out" | head -1 | cut -d: -f1)
[ "$delivered" -lt "$read" ] || fail "read came before delivered"

step "alice -> bob; bob reads it by typing to her"
say alice "two"
wait_for_file "$work/bob.out" '"text":"two"'
say bob "@alice three"
wait_for_file "$work/alice.out" '"status":"read"'

step "carol: sends none, shows none"
say carol "@bob from carol"
wait_for_file "$work/bob.out" '"text":"from carol"'
say bob "@carol four"
wait_for_file "$work/carol.out" '"text":"four"'
say carol "@bob five"   # carol typed to bob: she would send one now
wait_for_file "$work/bob.out" '"text":"five"'
say bob "/chat carol"   # bob reads carol's: his receipt is taken, not shown
say bob "@carol six"
wait_for_file "$work/carol.out" '"text":"six"'
# bob's three lines to carol were delivered; none read.
[ "$(grep -F '"to":"carol"' "$work/bob.out" | grep -cF '"status":"read"' || true)" = 0 ] ||
  fail "bob was told carol read his messages"
[ "$(grep -cF '"status":"read"' "$work/carol.out" || true)" = 0 ] ||
  fail "carol was shown a read state"

step "all leave cleanly"
for name in alice bob carol; do stop_cleanly TERM "${peer_pid[$name]}" "$name"; done
echo "read_receipts_e2e: OK"
