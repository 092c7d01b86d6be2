#!/usr/bin/env bash
# End to end over loopback with TLS (docs/security.md): certificates by role
# from scripts/make-certs, a registry serving TLS only, two peers that serve
# ChattingService over TLS and chat by name, chatctl with --tls-ca served
# and without it refused with one clear line; a peer's ChattingService
# refuses plaintext too; a TLS greeter found by name; a peer's certificate
# refused as the registry's (by chatctl and chat-peer, at localhost and
# 127.0.0.1, even for a peer named localhost) and as another peer's; then a
# registry with mutual TLS that admits only a client holding a certificate
# from its client CA, a peer's included.
#
set -euo pipefail
bin_dir=${1:?usage: tls_e2e.sh BIN_DIR}
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"

port=$(free_port)
registry=127.0.0.1:$port
certs=$work/certs
peer_ttl=4

step "scripts/make-certs by role"
"$repo/scripts/make-certs" "$certs" --registry localhost,127.0.0.1 --greeter greeter \
  --peer alice bob --client client >"$work/make-certs.log"
for f in ca registry alice bob client greeter; do
  [ -s "$certs/$f.crt" ] || fail "no $f.crt"
done
[ "$(stat -c %a "$certs/alice.key")" = 600 ] || fail "alice.key is not 0600"
names_of() { openssl x509 -in "$1" -noout -ext subjectAltName | sed -n 2p | sed 's/^ *//'; }
[ "$(names_of "$certs/alice.crt")" = "DNS:alice.peer.invalid" ] ||
  fail "alice's certificate names $(names_of "$certs/alice.crt")"
[ "$(names_of "$certs/greeter.crt")" = "DNS:greeter.greeter.invalid" ] ||
  fail "the greeter's certificate names $(names_of "$certs/greeter.crt")"
[ "$(names_of "$certs/registry.crt")" = "DNS:localhost, IP Address:127.0.0.1" ] ||
  fail "the registry's certificate names $(names_of "$certs/registry.crt")"
"$repo/scripts/make-certs" "$certs" --registry localhost,127.0.0.1 >"$work/make-certs2.log"
grep -qF "keeping the CA" "$work/make-certs2.log" || fail "make-certs did not keep the CA"
grep -qF "keeping $certs/registry.crt" "$work/make-certs2.log" || fail "make-certs did not keep registry.crt"
code=0
"$repo/scripts/make-certs" "$certs" alice >/dev/null 2>"$work/make-certs3.err" || code=$?
[ "$code" = 2 ] || fail "the old form 'make-certs DIR NAME' exited $code, expected 2"
grep -qF -- "--peer alice" "$work/make-certs3.err" || fail "no hint at the new form: $(cat "$work/make-certs3.err")"
code=0
"$repo/scripts/make-certs" "$certs" --registry alice.peer.invalid >/dev/null 2>&1 || code=$?
[ "$code" = 2 ] || fail "a registry host under .invalid was accepted (exit $code)"
# Peers named like the registry's hosts, from the same CA (in a directory of
# their own, as their file names would clash with the registry's).
mkdir -p "$work/impostors"
cp "$certs/ca.crt" "$certs/ca.key" "$work/impostors/"
"$repo/scripts/make-certs" "$work/impostors" --peer localhost registry 127.0.0.1 >>"$work/make-certs.log"
[ "$(names_of "$work/impostors/127.0.0.1.crt")" = "DNS:127.0.0.1.peer.invalid" ] ||
  fail "the peer 127.0.0.1's certificate names $(names_of "$work/impostors/127.0.0.1.crt")"

registry_args=(--tls-cert "$certs/registry.crt" --tls-key "$certs/registry.key")
source "$(dirname "$0")/peers.sh"

ctl() {  # ctl EXPECTED_EXIT ARGS...: chatctl; sets $out and $err
  local expected=$1 code=0
  shift
  out=$(timeout 30 "$bin_dir/chatctl" --registry "$registry" --timeout 5 "$@" 2>"$work/ctl.err") || code=$?
  err=$(cat "$work/ctl.err")
  [ "$code" = "$expected" ] || fail "chatctl $* exited $code, expected $expected (stderr: $err)"
}

step "registry on $registry, TLS only"
start_registry 1

step "chatctl --tls-ca: served"
ctl 0 --tls-ca "$certs/ca.crt" health
[ "$out" = SERVING ] || fail "health printed '$out'"
CHAT_TLS_CA="$certs/ca.crt" ctl 0 list
step "chatctl without a CA: refused, one clear line, exit 3"
ctl 3 list
[ "$(wc -l <<<"$err")" = 1 ] || fail "more than one line: $err"
grep -qF "registry at $registry is unreachable" <<<"$err" || fail "unclear error: $err"
grep -qF -- "--tls-ca" <<<"$err" || fail "the error does not mention --tls-ca: $err"
echo "   $err"
step "chatctl with another CA: refused"
"$repo/scripts/make-certs" "$work/other" --client x >/dev/null
ctl 3 --tls-ca "$work/other/ca.crt" list
step "chatctl with a CA file that is not PEM: a usage error naming it"
echo junk >"$work/junk.crt"
ctl 2 --tls-ca "$work/junk.crt" list
grep -qF "$work/junk.crt" <<<"$err" || fail "the file is not named: $err"

step "alice and bob: TLS to the registry and to each other"
for name in alice bob; do
  start_peer "$name" --tls-ca "$certs/ca.crt" --tls-cert "$certs/$name.crt" --tls-key "$certs/$name.key"
done
wait_for_file "$work/alice.out" '"event":"ready","name":"alice"'
wait_for_file "$work/bob.out" '"event":"ready","name":"bob"'
say alice "@bob hello over TLS"
wait_for_file "$work/bob.out" '"text":"hello over TLS"'
wait_for_file "$work/alice.out" '"status":"delivered"'
say bob "@alice and back"
wait_for_file "$work/alice.out" '"text":"and back"'
wait_for_file "$work/bob.out" '"status":"delivered"'
grep -qF '"status":"stored"' "$work/alice.out" "$work/bob.out" &&
  fail "a message went to the mailbox instead of over TLS"

step "bob's ChattingService serves TLS only, with a certificate that names no host"
ctl 0 --tls-ca "$certs/ca.crt" resolve bob
bob_address=$out
ctl 3 health "$bob_address"
ctl 3 --tls-ca "$certs/ca.crt" health "$bob_address"

step "dave serving bob's certificate: alice does not take him for dave (mailbox, not direct)"
start_peer dave --tls-ca "$certs/ca.crt" --tls-cert "$certs/bob.crt" --tls-key "$certs/bob.key"
wait_for_file "$work/dave.out" '"event":"ready","name":"dave"'
say alice "@dave are you dave?"
wait_for_file "$work/alice.out" '"status":"stored"'
grep -F '"status":"stored"' "$work/alice.out" | grep -qF '"to":"dave"' ||
  fail "the stored message is not alice's to dave: $(grep -F stored "$work/alice.out")"
eval "exec ${peer_fd[dave]}>&-"
wait_for_exit "${peer_pid[dave]}" 20

step "a greeter serving TLS, registered over TLS, greeted by name"
(without_pipes "$bin_dir/chat-greeter" --listen 127.0.0.1:0 --registry "$registry" \
  --data-dir "$work/greeter" --tls-ca "$certs/ca.crt" \
  --tls-cert "$certs/greeter.crt" --tls-key "$certs/greeter.key") >>"$work/greeter.log" 2>&1 &
greeter_pid=$!
pids+=("$greeter_pid")
deadline=$((SECONDS + 20))
until timeout 30 "$bin_dir/chatctl" --registry "$registry" --tls-ca "$certs/ca.crt" \
    greet Anouk >"$work/greet.out" 2>"$work/greet.err"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "chatctl greet over TLS kept failing: $(cat "$work/greet.err")"
  sleep 0.2
done
[ "$(cat "$work/greet.out")" = "Server response: Hello, Anouk!" ] || fail "greet printed $(cat "$work/greet.out")"
stop_cleanly TERM "$greeter_pid" "the greeter"

step "a registry serving a peer's certificate is refused as the registry"
good_registry=$registry
for cert in "$certs/alice" "$work/impostors/localhost" "$work/impostors/registry" \
    "$work/impostors/127.0.0.1" "$certs/greeter"; do
  fake_port=$(free_port)
  (without_pipes "$bin_dir/chat-registry" --listen "127.0.0.1:$fake_port" \
    --db "$work/fake.db" --tls-cert "$cert.crt" --tls-key "$cert.key") >"$work/fake.log" 2>&1 &
  fake_pid=$!
  pids+=("$fake_pid")
  wait_for_file "$work/fake.log" "start: listening"
  for host in localhost 127.0.0.1; do
    registry=$host:$fake_port
    ctl 3 --tls-ca "$certs/ca.crt" list
    code=0
    timeout 30 "$bin_dir/chat-peer" --name carol --registry "$registry" --listen 127.0.0.1:0 \
      --json --data-dir "$work/data" --tls-ca "$certs/ca.crt" \
      --tls-cert "$certs/alice.crt" --tls-key "$certs/alice.key" \
      </dev/null >"$work/carol.out" 2>"$work/carol.err" || code=$?
    [ "$code" = 3 ] || fail "chat-peer took ${cert##*/}.crt for the registry at $registry (exit $code)"
  done
  echo "   ${cert##*/}.crt refused at localhost:$fake_port and 127.0.0.1:$fake_port"
  stop_cleanly TERM "$fake_pid" "the registry with ${cert##*/}.crt"
  rm -f "$work/fake.db"*
done
registry=$good_registry

step "a plaintext peer cannot reach the TLS registry"
code=0
timeout 30 "$bin_dir/chat-peer" --name carol --registry "$registry" --listen 127.0.0.1:0 \
  --json --data-dir "$work/data" </dev/null >"$work/carol.out" 2>"$work/carol.err" || code=$?
[ "$code" = 3 ] || fail "a plaintext peer exited $code, expected 3 (registry unreachable)"

step "alice and bob leave cleanly"
for name in alice bob; do
  eval "exec ${peer_fd[$name]}>&-"
  wait_for_exit "${peer_pid[$name]}" 20
  [ "$exit_code" = 0 ] || fail "$name exited $exit_code"
done
stop_cleanly TERM "$registry_pid" "the registry"

step "mutual TLS: --tls-client-ca admits only clients with a certificate"
port=$(free_port)
registry=127.0.0.1:$port
registry_args+=(--tls-client-ca "$certs/ca.crt")
start_registry 2
ctl 3 --tls-ca "$certs/ca.crt" list
ctl 0 --tls-ca "$certs/ca.crt" --tls-cert "$certs/client.crt" --tls-key "$certs/client.key" list
ctl 3 --tls-ca "$certs/ca.crt" --tls-cert "$work/other/x.crt" --tls-key "$work/other/x.key" list
step "mutual TLS: a peer shows its own certificate and gets in"
start_peer alice --tls-ca "$certs/ca.crt" --tls-cert "$certs/alice.crt" --tls-key "$certs/alice.key"
wait_for_file "$work/alice.out" '"event":"ready","name":"alice"'
eval "exec ${peer_fd[alice]}>&-"
wait_for_exit "${peer_pid[alice]}" 20
[ "$exit_code" = 0 ] || fail "alice exited $exit_code from the mutual TLS registry"
stop_cleanly TERM "$registry_pid" "the mutual TLS registry"

echo "PASS tls_e2e"
