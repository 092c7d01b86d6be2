#!/usr/bin/env bash
# gRPC's own log lines never reach the chat screen: alice speaks TLS, bob
# serves plaintext (a peer of another setup, as in docker-compose with a lab
# peer), so every attempt of alice's to reach bob ends in gRPC's "Handshake
# failed ... SSL_ERROR_SSL". Without --verbose those lines go to
# alice.log in her data directory, never to her stdout or stderr; with
# --verbose they go to stderr.
#
# Usage: grpc_log_e2e.sh BIN_DIR   (the build's bin/)
set -euo pipefail
bin_dir=${1:?usage: grpc_log_e2e.sh BIN_DIR}
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"

port=$(free_port)
registry=127.0.0.1:$port
certs=$work/certs
"$repo/scripts/make-certs" "$certs" --registry 127.0.0.1 --peer alice carol \
  >"$work/make-certs.log"
registry_args=(--tls-cert "$certs/registry.crt" --tls-key "$certs/registry.key")
source "$(dirname "$0")/peers.sh"

step "registry on $registry (TLS); bob serves plaintext, alice and carol TLS"
start_registry 1
start_peer bob --tls-ca "$certs/ca.crt"
wait_for_file "$work/bob.out" '"event":"ready","name":"bob"'
start_peer alice --tls-ca "$certs/ca.crt" --tls-cert "$certs/alice.crt" \
  --tls-key "$certs/alice.key"
start_peer carol --tls-ca "$certs/ca.crt" --tls-cert "$certs/carol.crt" \
  --tls-key "$certs/carol.key" --verbose
wait_for_file "$work/alice.out" '"event":"ready","name":"alice"'
wait_for_file "$work/carol.out" '"event":"ready","name":"carol"'

step "alice and carol write to bob: their TLS handshakes fail"
say alice "@bob hello?"
say carol "@bob hello?"
# gRPC said it: in alice's log file, and on carol's stderr (--verbose).
wait_for_file "$work/data/alice.log" "Handshake failed" 1 30
wait_for_file "$work/carol.err" "Handshake failed" 1 30
# The message itself is not lost: it waits in bob's mailbox.
wait_for_file "$work/alice.out" '"status":"stored"' 1 30

step "nothing of gRPC's on alice's terminal"
for f in "$work/alice.out" "$work/alice.err"; do
  if grep -qiF grpc "$f"; then
    fail "gRPC's log reached alice's terminal ($(basename "$f")): $(grep -iF grpc "$f" | head -3)"
  fi
done
grep -qF " peer: grpc E" "$work/carol.err" ||
  fail "--verbose did not put gRPC's lines on stderr"
[ "$(stat -c %a "$work/data/alice.log")" = 600 ] || fail "alice.log is not 0600"

step "everyone leaves cleanly"
for name in alice bob carol; do
  eval "exec ${peer_fd[$name]}>&-"
  wait_for_exit "${peer_pid[$name]}" 20
  [ "$exit_code" = 0 ] || fail "$name exited $exit_code"
done
stop_cleanly TERM "$registry_pid" "the registry"

echo "PASS grpc_log_e2e"
