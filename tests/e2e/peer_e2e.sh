#!/usr/bin/env bash
# End to end over loopback with the real binaries: a chat-registry and
# chat-peers driven through their stdin (named pipes) with --json. Chatting
# by name in both directions, --peer waiting for a partner, a refused name,
# a second instance of a name on one data directory (exit 1, the first's
# pid), the registry's log line for a return with a saved lease,
# kill -9 of a peer (reported as not delivered, then expired), a registry
# kill -9 and restart, and a clean exit at the end of input. The screen:
# junk registrations reach nobody, a new peer says how many are online in
# one line and lists them a page at a time.
#
# Usage: peer_e2e.sh BIN_DIR   (the build's bin/)
set -euo pipefail
bin_dir=${1:?usage: peer_e2e.sh BIN_DIR}
source "$(dirname "$0")/lib.sh"

port=$(free_port)
registry=127.0.0.1:$port

peer_ttl=4
source "$(dirname "$0")/peers.sh"

step "registry on $registry"
start_registry 1

step "alice and bob start and register"
start_peer alice
start_peer bob
wait_for_file "$work/alice.out" '"event":"ready","name":"alice"'
wait_for_file "$work/bob.out" '"event":"ready","name":"bob"'

step "alice and bob share a data directory but not a key"
[ -f "$work/data/alice.key" ] && [ -f "$work/data/bob.key" ] || fail "no NAME.key per name"
cmp -s "$work/data/alice.key" "$work/data/bob.key" && fail "alice and bob got the same key"
alice_fp=$(grep -o '"fingerprint":"[^"]*"' "$work/alice.out" | head -1)
bob_fp=$(grep -o '"fingerprint":"[^"]*"' "$work/bob.out" | head -1)
[ -n "$alice_fp" ] && [ "$alice_fp" != "$bob_fp" ] || fail "fingerprints not shown or equal"

step "alice -> bob by name"
say alice "@bob hello bob, it is alice"
wait_for_file "$work/bob.out" '"event":"message"'
grep -F '"from":"alice"' "$work/bob.out" | grep -qF '"text":"hello bob, it is alice"' ||
  fail "bob did not get alice's message"
wait_for_file "$work/alice.out" '"status":"delivered"'

step "bob -> alice through /chat"
say bob "/chat alice"
say bob "hi alice, bob here"
wait_for_file "$work/alice.out" '"text":"hi alice, bob here"'
wait_for_file "$work/bob.out" '"status":"delivered"'

step "60 junk registrations (static entries) reach no screen"
export CHAT_ADMIN_TOKEN_FILE=$work/admin.token
for i in $(seq 1 60); do
  timeout 20 "$bin_dir/chatctl" --registry "$registry" register "junk-$i" 127.0.0.1:1 --static \
    >/dev/null || fail "chatctl register junk-$i failed"
done

step "a new peer: one summary line, then /peers page by page"
start_peer erin --page-size 25
wait_for_file "$work/erin.out" '"event":"summary","online":62,'
say erin "/peers"
wait_for_file "$work/erin.out" '"page":1,"more":true,"online":62}'
say erin "/peers more"
say erin "/peers more"
wait_for_file "$work/erin.out" '"page":3,"more":false,"online":62}'
say erin "/peers more"
wait_for_file "$work/erin.out" 'no more pages; /peers starts again'
# 63 names (erin too) in pages of 25: 25, 25 and 13, each name once.
listed=$(grep -F '"event":"peers"' "$work/erin.out" | grep -o '"name":"[^"]*"' | sort -u | wc -l)
[ "$listed" = 63 ] || fail "the pages listed $listed names, expected 63"
[ "$(grep -c '"event":"online"' "$work/erin.out" || true)" = 0 ] || fail "erin was told of strangers"

step "carol waits for dave with --peer, then chats"
start_peer carol --peer dave
wait_for_file "$work/carol.out" 'Waiting for dave to come online...'
start_peer dave
wait_for_file "$work/carol.out" '"event":"partner","name":"dave"'
say carol "dave, finally"
wait_for_file "$work/dave.out" '"text":"dave, finally"'

step "a second alice is refused and alice keeps her name"
code=0
(without_pipes timeout 20 "$bin_dir/chat-peer" --name ALICE \
  --registry "$registry" --json --data-dir "$work/elsewhere") </dev/null >"$work/alice2.out" 2>"$work/alice2.err" || code=$?
[ "$code" = 1 ] || fail "a second alice exited $code, expected 1"
grep -qE 'taken|belongs to another key' "$work/alice2.err" || fail "no clear message for the taken name"

step "a second alice beside the first (same data directory): already running here, exit 1"
code=0
(without_pipes timeout 20 "$bin_dir/chat-peer" --name alice \
  --registry "$registry" --json --data-dir "$work/data") </dev/null >"$work/alice3.out" 2>"$work/alice3.err" || code=$?
[ "$code" = 1 ] || fail "a second alice on alice's data directory exited $code, expected 1"
expected="chat-peer: alice is already running here (pid ${peer_pid[alice]})"
[ "$(cat "$work/alice3.err")" = "$expected" ] ||
  fail "expected '$expected', got: $(cat "$work/alice3.err")"
say dave "@alice are you still there?"
wait_for_file "$work/alice.out" '"text":"are you still there?"'

step "kill -9 bob: a message to him is not delivered but stored"
kill -9 "${peer_pid[bob]}"
say alice "@bob are you there?"
wait_for_file "$work/alice.out" '"status":"stored"'
grep -F '"status":"stored"' "$work/alice.out" | grep -qF '"to":"bob"' ||
  fail "the stored message is not for bob"
step "bob's lease expires within its TTL and alice hears of it"
wait_for_file "$work/alice.out" '"event":"offline","name":"bob"' 1 8

step "kill -9 the registry, restart it: names survive, chat goes on"
kill -9 "$registry_pid"
wait "$registry_pid" 2>/dev/null || true
start_registry 2
say carol "still here after the registry restart"
wait_for_file "$work/dave.out" '"text":"still here after the registry restart"'
wait_for_file "$work/carol.out" '"status":"delivered"' 1

step "bob comes back: the stored message arrives late, alice hears it was delivered"
start_peer bob
wait_for_file "$work/bob.out" '"text":"are you there?"'
grep -F '"text":"are you there?"' "$work/bob.out" | grep -qF '"late":true' ||
  fail "the message did not come from the mailbox"
wait_for_file "$work/alice.out" '"reason":"from the mailbox","text":"are you there?"'
step "the registry logged bob's return with his saved lease"
grep -qE 'registry: register bob \(key [^)]*\) -> 127\.0\.0\.1:[0-9]+ \(ttl [0-9]+ ms, with its saved lease\)$' \
  "$work/registry.log" || fail "no log line for bob's re-registration: $(grep -F bob "$work/registry.log")"

step "end of input: alice finishes, unregisters and exits 0"
eval "exec ${peer_fd[alice]}>&-"
wait_for_exit "${peer_pid[alice]}" 20
[ "$exit_code" = 0 ] || fail "alice exited $exit_code"
# dave wrote to alice: he follows her.
wait_for_file "$work/dave.out" '"event":"offline","name":"alice"'
grep -F '"name":"alice"' "$work/dave.out" | grep -qF '"reason":"left"' ||
  fail "alice did not leave cleanly (expected reason left)"
# carol never talked with alice: her leaving is not carol's news.
grep -qF '"event":"offline","name":"alice"' "$work/carol.out" &&
  fail "carol was told of alice, whom she does not follow"

step "SIGTERM: dave unregisters and exits 0"
kill -TERM "${peer_pid[dave]}"
wait_for_exit "${peer_pid[dave]}" 20
[ "$exit_code" = 0 ] || fail "dave exited $exit_code after SIGTERM"

step "no junk reached anyone's screen"
for name in alice bob carol dave; do
  ! grep -qF 'junk-' "$work/$name.out" || fail "$name was told of junk registrations"
done

echo "PASS peer_e2e"
