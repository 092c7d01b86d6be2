#!/usr/bin/env bash
# End to end on real containers, through docker-compose.yml exactly as a user
# runs it: the base image (made locally when it cannot be pulled), the image
# build, `up -d` with TLS (the one-shot certs service makes the certificates
# by role, a plaintext client is refused, a second `up` keeps them, the
# peers' shared certificate cannot serve as the registry's), the greeter
# found by name, two peer containers chatting by name through their stdin
# with --json, `chatctl list`, a registry killed and started again without
# losing a name, a peer container killed hard that leaves the list within
# its TTL while a message to it is reported as not delivered; then the lab
# profile: the lab's Python greeter client and peer (stubs generated from
# tests/lab/proto) on the host, plaintext, with greeter-lab and a peer-lab
# container, both ways.
#
# Usage: compose_e2e.sh [REPO_DIR]   (default: the repository of this script)
# Needs for the lab part: python3 with grpcio, protoc and grpc_python_plugin
# (scripts/install-deps), and host networking (Docker Engine on Linux).
# Exit: 0 passed, 1 failed, 77 skipped (no Docker engine, or no compose).
# Uses its own project name (never a user's containers, network or volume),
# the image tag chat-by-name:e2e and a free host port; `down -v` at the end.
# The images stay, so the next run builds from the layer cache.
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd)

ttl=3  # the test peers' lease, seconds: short, so a killed peer leaves fast

source "$repo/tests/docker/compose_lib.sh" compose_e2e chate2e docker-compose.yml
export CHAT_REGISTRY_PORT CHAT_LAB_REGISTRY_PORT CHAT_LAB_GREETER_PORT
CHAT_REGISTRY_PORT=$(free_port)
CHAT_LAB_REGISTRY_PORT=$(free_port)
CHAT_LAB_GREETER_PORT=$(free_port)

started=$SECONDS
step "compose: ${compose_cmd[*]}, project $COMPOSE_PROJECT_NAME, image $CHAT_IMAGE"

build_image

step "up -d: registry and greeter"
compose up -d >"$work/up.log" 2>&1 || fail "compose up failed: $(cat "$work/up.log")"
wait_healthy 60
echo "   registry healthy"

step "TLS: the certs service made the certificates, a plaintext client is refused"
compose logs --no-color certs >"$work/certs.log" 2>&1
grep -qF "made the CA /certs/ca.crt" "$work/certs.log" || fail "certs did not make a CA: $(cat "$work/certs.log")"
code=0
compose run --rm -T -e CHAT_TLS_CA= chatctl list </dev/null >/dev/null 2>"$work/plaintext.err" || code=$?
[ "$code" = 3 ] || fail "a plaintext chatctl exited $code, expected 3: $(cat "$work/plaintext.err")"
grep -qF "unreachable" "$work/plaintext.err" || fail "no clear error for plaintext: $(cat "$work/plaintext.err")"
echo "   $(grep -F unreachable "$work/plaintext.err" | head -n 1)"
ctl list >/dev/null || fail "chatctl with the CA failed: $(tail -n 3 "$work/chatctl.err")"
compose up -d >>"$work/up.log" 2>&1 || fail "a second compose up failed"
compose logs --no-color certs >"$work/certs.log" 2>&1
grep -qF "keeping the CA" "$work/certs.log" || fail "a second up did not keep the CA: $(cat "$work/certs.log")"

step "certificates by role: the peers' shared certificate names the peer role only"
san() {  # san FILE: the subjectAltName of /certs/FILE, as openssl prints it
  compose run --rm -T --entrypoint openssl chatctl x509 -in "/certs/$1" -noout -ext subjectAltName \
    </dev/null 2>>"$work/chatctl.err" | sed -n 2p | sed 's/^ *//'
}
names=$(san peer.crt)
[ "$names" = "DNS:peer.peer.invalid" ] || fail "peer.crt names '$names'"
names=$(san registry.crt)
[ "$names" = "DNS:registry, DNS:localhost, IP Address:127.0.0.1" ] || fail "registry.crt names '$names'"
echo "   peer.crt: $(san peer.crt); registry.crt: $names"

step "a registry serving the peers' certificate is refused at localhost and 127.0.0.1"
# Inside one chatctl container: a second registry on its loopback with
# peer.crt, which every peer container holds; chatctl and chat-peer with
# the CA must refuse it (exit 3, unreachable) where the real one is served.
compose run --rm -T --entrypoint sh chatctl -c '
  chat-registry --listen 127.0.0.1:50099 --db /tmp/fake.db \
    --tls-cert /certs/peer.crt --tls-key /certs/peer.key 2>/tmp/fake.log &
  i=0
  until grep -q "start: listening" /tmp/fake.log; do
    i=$((i + 1)); [ "$i" -lt 200 ] || { echo "no fake registry"; exit 1; }; sleep 0.05
  done
  for host in localhost 127.0.0.1; do
    code=0; chatctl --registry "$host:50099" --timeout 5 list >/dev/null 2>&1 || code=$?
    echo "chatctl $host $code"
    code=0; timeout 30 chat-peer --name mallory --registry "$host:50099" --json \
      --data-dir /tmp/peers --tls-cert /certs/peer.crt --tls-key /certs/peer.key \
      </dev/null >/dev/null 2>&1 || code=$?
    echo "chat-peer $host $code"
  done' </dev/null >"$work/fake-registry.out" 2>>"$work/chatctl.err" ||
  fail "the fake registry check failed: $(cat "$work/fake-registry.out")"
for line in "chatctl localhost 3" "chatctl 127.0.0.1 3" "chat-peer localhost 3" "chat-peer 127.0.0.1 3"; do
  grep -qxF "$line" "$work/fake-registry.out" ||
    fail "expected '$line' (refused): $(tr '\n' ';' <"$work/fake-registry.out")"
done
echo "   $(tr '\n' ';' <"$work/fake-registry.out")"

step "chatctl greet Anouk: the greeter is found by name"
deadline=$((SECONDS + 30))
until greeting=$(ctl greet Anouk); do  # the greeter may still be registering
  [ "$SECONDS" -lt "$deadline" ] || fail "chatctl greet kept failing: $(tail -n 3 "$work/chatctl.err")"
  sleep 0.5
done
[ "$greeting" = "Server response: Hello, Anouk!" ] || fail "chatctl greet printed '$greeting'"
echo "   $greeting"

step "peer containers alice and bob start and register their container addresses"
start_peer alice
start_peer bob
wait_event alice '"event":"ready","name":"alice"'
wait_event bob '"event":"ready","name":"bob"'
for name in alice bob; do
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
    "${COMPOSE_PROJECT_NAME}_$name")
  grep -F '"event":"ready"' "$work/$name.out" | grep -qF "\"address\":\"$ip:" ||
    fail "$name does not advertise its container address $ip: $(grep -F ready "$work/$name.out")"
  echo "   $name at $ip"
done

step "alice -> bob by name"
say alice "@bob hello bob, it is alice"
wait_event bob '"text":"hello bob, it is alice"'
grep -F '"text":"hello bob, it is alice"' "$work/bob.out" | grep -qF '"from":"alice"' ||
  fail "bob's message does not come from alice"
wait_event alice '"status":"delivered"'

step "bob -> alice by name"
say bob "@alice hi alice, bob here"
wait_event alice '"text":"hi alice, bob here"'
wait_event bob '"status":"delivered"'

step "chatctl list shows alice, bob and greeter"
list=$(ctl --json list) || fail "chatctl list failed: $(tail -n 3 "$work/chatctl.err")"
for name in alice bob greeter; do listed "$list" "$name" || fail "$name is not listed: $list"; done
ctl list | sed 's/^/   /'

step "chatctl register lab --static works with the mounted admin token, and not without"
ctl register lab 127.0.0.1:9 --static >/dev/null ||
  fail "chatctl register --static failed: $(tail -n 3 "$work/chatctl.err")"
code=0
compose run --rm -T -e CHAT_ADMIN_TOKEN_FILE= chatctl register lab2 127.0.0.1:9 --static \
  </dev/null >/dev/null 2>>"$work/chatctl.err" || code=$?
[ "$code" = 4 ] || fail "chatctl register --static without the token exited $code, expected 4"
ctl unregister lab --static >/dev/null || fail "chatctl unregister --static failed"

step "docker-compose kill registry, then start: every name is kept"
compose kill registry >"$work/kill.log" 2>&1 || fail "compose kill registry failed"
compose start registry >"$work/start.log" 2>&1 || fail "compose start registry failed"
wait_healthy 60
# The start line counts what the database held: the names came back from the
# volume, not from peers registering again.
compose logs --no-color registry >"$work/registry.log" 2>&1
starts=$(grep -cF 'start: listening' "$work/registry.log" || true)
[ "$starts" -ge 2 ] || fail "the registry did not log a second start"
grep -F 'start: listening' "$work/registry.log" | tail -n 1 | grep -qF 'with 3 names' ||
  fail "the restarted registry did not find 3 names: $(grep -F 'start: listening' "$work/registry.log" | tail -n 1)"
for name in alice bob greeter; do
  address=$(ctl resolve "$name") || fail "chatctl resolve $name failed after the restart"
  echo "   $name -> $address"
done
say alice "@bob still there after the registry restart?"
wait_event bob '"text":"still there after the registry restart?"'
wait_event alice '"status":"delivered"' 2

step "docker kill bob's container: he leaves within his ${ttl}s TTL, a message to him is not delivered"
killed_at=$EPOCHREALTIME
docker kill "${COMPOSE_PROJECT_NAME}_bob" >/dev/null || fail "docker kill bob failed"
say alice "@bob are you there?"
wait_event alice '"event":"offline","name":"bob"' 1 $((ttl + 10))
gone_after=$(awk -v a="$killed_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "   bob left the list ${gone_after}s after the kill"
# Expiry is checked every 100 ms and reported through the watch at once; the
# second of slack covers that and this script's polling.
awk -v t="$gone_after" -v ttl="$ttl" 'BEGIN { exit !(t <= ttl + 1) }' ||
  fail "bob left ${gone_after}s after the kill; his TTL is ${ttl}s"
# Not delivered but stored in bob's mailbox (after "sent").
wait_event alice '"status":"stored"' 1 30
result=$(grep -F '"event":"send"' "$work/alice.out" | grep -F '"text":"are you there?"')
grep -qF '"to":"bob"' <<<"$result" || fail "no send result for the message to bob: $result"
grep -qF '"status":"stored"' <<<"$result" ||
  fail "the message to bob's dead container is not reported as not delivered: $result"
echo "   $result"
list=$(ctl --json list) || fail "chatctl list failed: $(tail -n 3 "$work/chatctl.err")"
listed "$list" bob && fail "bob is still listed: $list"
listed "$list" alice || fail "alice is gone too: $list"

step "end of alice's input: she unregisters and her container exits 0"
end_input alice 30
[ "$exit_code" = 0 ] || fail "alice's compose run exited $exit_code"
code=0
ctl resolve alice >/dev/null || code=$?
[ "$code" = 1 ] || fail "chatctl resolve alice exited $code after she left, expected 1 (not found)"

step "the lab profile: registry-lab and greeter-lab, plaintext on the host's loopback"
mkdir -p "$work/py"
protoc -I "$repo/tests/lab/proto" --python_out="$work/py" --grpc_out="$work/py" \
  --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" greet.proto chat.proto ||
  fail "cannot generate the lab's Python stubs (protoc, grpc_python_plugin: scripts/install-deps)"
export PYTHONPATH="$work/py"
compose --profile lab up -d >>"$work/up.log" 2>&1 || fail "compose --profile lab up failed: $(tail -n 5 "$work/up.log")"
wait_healthy 60 registry-lab
lab_ctl() { compose run --rm -T chatctl-lab "$@" </dev/null 2>>"$work/chatctl.err"; }
# The lab's clients on the host, as a student runs them.
deadline=$((SECONDS + 30))
until greeting=$(echo Anouk | timeout 20 "$python" "$repo/tests/lab/lab_greet_client.py" \
    "127.0.0.1:$CHAT_LAB_GREETER_PORT" 2>>"$work/lab-greet.err"); do
  [ "$SECONDS" -lt "$deadline" ] || fail "the lab's greeter client kept failing: $(tail -n 3 "$work/lab-greet.err")"
  sleep 0.5
done
grep -qF "Server response: Hello, Anouk!" <<<"$greeting" || fail "the lab's greeter client printed '$greeting'"
echo "   lab_greet_client.py -> greeter-lab: $greeting"
lab_port=$(free_port)
mkfifo "$work/lab.in"
"$python" "$repo/tests/lab/lab_peer.py" lab "$lab_port" \
  <"$work/lab.in" >"$work/lab.out" 2>"$work/lab.err" &
pids+=("$!")
exec {lab_fd}>"$work/lab.in"
wait_for_file "$work/lab.out" '"listening"'
lab_ctl register lab "127.0.0.1:$lab_port" --static >/dev/null ||
  fail "chatctl-lab register lab --static failed: $(tail -n 3 "$work/chatctl.err")"

step "a peer-lab container (carol) and the lab's Python peer, both ways"
start_peer carol peer-lab
wait_event carol '"event":"ready","name":"carol"'
grep -F '"event":"ready"' "$work/carol.out" | grep -qF '"address":"127.0.0.1:' ||
  fail "carol does not listen on loopback: $(grep -F ready "$work/carol.out")"
say carol "@lab hello lab, from a container"
wait_for_file "$work/lab.out" '"received": "hello lab, from a container"'
wait_event carol '"status":"delivered'
carol_address=$(lab_ctl resolve carol) || fail "chatctl-lab resolve carol failed"
echo "send $carol_address hello carol, from the lab" >&"$lab_fd"
wait_for_file "$work/lab.out" '"sent": "hello carol, from the lab"'
wait_event carol '"text":"hello carol, from the lab"'
grep -F '"text":"hello carol, from the lab"' "$work/carol.out" | grep -qF '"unverified":true' ||
  fail "the lab peer's message is not marked unverified: $(grep -F 'from the lab' "$work/carol.out")"
echo "   carol at $carol_address <-> lab at 127.0.0.1:$lab_port"
end_input carol 30
[ "$exit_code" = 0 ] || fail "carol's compose run exited $exit_code"
exec {lab_fd}>&-

echo "PASS compose_e2e in $((SECONDS - started)) s"
