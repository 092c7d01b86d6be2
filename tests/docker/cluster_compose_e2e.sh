#!/usr/bin/env bash
# End to end on real containers, through docker-compose.yml and
# docker-compose.cluster.yml as docs/cluster.md runs them: the three etcd
# members come up healthy as one cluster over TLS, both registries (on etcd)
# are healthy and serve, `chatctl list` works, a name registered through
# `registry` resolves through `registry2`; then one etcd member (the leader)
# is killed and a registration still succeeds and resolves at both
# registries; then `registry` is killed and `registry2` still serves every
# name.
#
# Usage: cluster_compose_e2e.sh [REPO_DIR]   (default: this script's repository)
# Exit: 0 passed, 1 failed, 77 skipped (no Docker engine, or no compose).
# Its own project name, the image tag compose_e2e builds (chat-by-name:e2e,
# so one of the two builds it and the other finds it in the layer cache),
# free host ports; `down -v` at the end, whatever happens.
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd)

source "$repo/tests/docker/compose_lib.sh" cluster_compose_e2e chatcluster \
  docker-compose.yml docker-compose.cluster.yml
export CHAT_REGISTRY_PORT CHAT_REGISTRY2_PORT
CHAT_REGISTRY_PORT=$(free_port)
CHAT_REGISTRY2_PORT=$(free_port)

started=$SECONDS
step "compose: ${compose_cmd[*]}, files $COMPOSE_FILE, project $COMPOSE_PROJECT_NAME, image $CHAT_IMAGE"

build_image

step "up -d: etcd1..3, registry and registry2 on etcd, greeter"
up_start=$SECONDS
compose up -d >"$work/up.log" 2>&1 || fail "compose up failed: $(tail -n 20 "$work/up.log")"
wait_healthy 120 etcd1 etcd2 etcd3 registry registry2
echo "   all healthy $((SECONDS - up_start)) s after up"

step "etcd: three started members, every endpoint healthy over TLS"
members=$(etcdctl_in etcd1 member list) || fail "etcdctl member list failed"
[ "$(grep -c ', started, ' <<<"$members")" = 3 ] || fail "not three started members: $members"
# etcdctl prints the health of each endpoint on stderr.
health=$(compose exec -T etcd1 etcdctl endpoint health --cluster </dev/null 2>&1) ||
  fail "etcdctl endpoint health --cluster failed: $health"
[ "$(grep -c 'is healthy' <<<"$health")" = 3 ] || fail "not three healthy endpoints: $health"
sed 's/^/   /' <<<"$health"
# Only the etcd client certificate is let in: a peer's is refused.
code=0
# (etcdctl refuses a flag that an ETCDCTL_ variable also sets.)
compose exec -T -e ETCDCTL_CERT=/certs/peer.crt -e ETCDCTL_KEY=/certs/peer.key etcd1 etcdctl --dial-timeout=2s \
  --command-timeout=3s get /chat --prefix --keys-only </dev/null >"$work/peer-cert.out" 2>&1 || code=$?
[ "$code" != 0 ] || fail "etcd let a client in with the peers' certificate"
grep -qF "deadline exceeded" "$work/peer-cert.out" ||
  fail "etcdctl with the peers' certificate failed, but not for its certificate: $(tail -n 3 "$work/peer-cert.out")"
echo "   the peers' certificate is refused by etcd"

step "chatctl list works, through registry and through registry2"
ctl list >/dev/null || fail "chatctl list failed: $(tail -n 3 "$work/chatctl.err")"
at registry2 list >/dev/null || fail "chatctl --registry registry2:50050 list failed: $(tail -n 3 "$work/chatctl.err")"

step "a name registered through registry resolves through registry2"
register registry one 10.9.9.1:5001
resolves_at registry one 10.9.9.1:5001
resolves_at registry2 one 10.9.9.1:5001
# The greeter registered itself, with a lease, at registry.
greeter_address=""
deadline=$((SECONDS + 30))
until greeter_address=$(at registry resolve greeter); do
  [ "$SECONDS" -lt "$deadline" ] || fail "the greeter did not register: $(tail -n 3 "$work/chatctl.err")"
  sleep 0.5
done
resolves_at registry2 greeter "$greeter_address"

step "docker kill the etcd leader: registration still succeeds, names resolve at both registries"
leader=$(etcd_leader etcd1)
survivor=etcd1
[ "$leader" != etcd1 ] || survivor=etcd2
docker kill "$(container "$leader")" >/dev/null || fail "docker kill $leader failed"
echo "   killed $leader (the leader)"
# A write in flight while the others elect a new leader, or sent to the dead
# member first, may fail with UNAVAILABLE (chatctl exits 3): retried.
register registry two 10.9.9.2:5002
for registry in registry registry2; do
  resolves_at "$registry" two 10.9.9.2:5002
  resolves_at "$registry" one 10.9.9.1:5001
done
register registry2 three 10.9.9.3:5003
resolves_at registry three 10.9.9.3:5003
health=$(compose exec -T "$survivor" etcdctl endpoint health --cluster </dev/null 2>&1) || true
[ "$(grep -c 'is healthy' <<<"$health")" = 2 ] || fail "not two healthy members left: $health"

step "docker kill registry: registry2 still serves every name"
docker kill "$(container registry)" >/dev/null || fail "docker kill registry failed"
code=0
at registry resolve one >/dev/null || code=$?
[ "$code" = 3 ] || fail "chatctl at the killed registry exited $code, expected 3 (unreachable)"
for entry in one=10.9.9.1:5001 two=10.9.9.2:5002 three=10.9.9.3:5003; do
  resolves_at registry2 "${entry%%=*}" "${entry#*=}" 5
done
list=$(at registry2 list) || fail "chatctl list at registry2 failed"
for name in one two three; do
  grep -qw "$name" <<<"$list" || fail "$name is not listed at registry2: $list"
done
register registry2 four 10.9.9.4:5004
resolves_at registry2 four 10.9.9.4:5004

echo "PASS cluster_compose_e2e in $((SECONDS - started)) s (of which the build $build_seconds s)"
