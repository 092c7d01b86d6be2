#!/usr/bin/env bash
# Fault tests of the cluster, on real containers on the project's own network,
# through docker-compose.yml and docker-compose.cluster.yml (docs/cluster.md,
# "What users see when something is down"). One image build and one cluster
# for all of them, one after another:
#   a. `docker kill` of the etcd leader while 1,000 messages flow between two
#      peers (alice at registry, bob at registry2) and static names register
#      at both registries: every message arrives once, in order, every one
#      is reported delivered; every registration acknowledged resolves at
#      both registries; a peer starting during the election registers; the
#      peers' names stay (their renewals went on).
#   c. every registry `docker kill`ed: alice and bob keep chatting directly;
#      a message to carol (offline) and a new name wait; when the registries
#      are back, the message is stored in carol's mailbox and carol receives
#      it through the other registry, new names register, alice and bob are
#      listed again.
#   b. etcd3 and registry2 cut off together (`docker network disconnect`
#      from the project network; they keep a network of their own): the
#      minority side refuses writes, the majority side serves; one name is
#      registered with two keys through registries on both sides, before,
#      during and after the partition, every attempt recorded with its time,
#      and check_grants.py verifies that no two keys held it at once; after
#      healing both registries converge on one view.
#   d. one registry killed while peers and a greeter use both registries:
#      they move to the other within one TTL, keep their names, and no
#      message is lost. Skipped (SKIP line, the rest still runs) while
#      chat-peer --help does not mention several registries.
# Each part counts what was acknowledged and checks that it survived, prints
# its wall time, and restores the cluster for the next.
#
# Usage: cluster_faults_e2e.sh [REPO_DIR]   (default: this script's repository)
# Environment: CHAT_FAULTS_PARTS, the parts to run (default "acbd", in that
# order whatever the spelling); a part left out prints a SKIP line. "b" alone
# is the partition, about 3 min with the image built.
# Exit: 0 passed, 1 failed, 77 skipped (no Docker engine, or no compose).
# Every wait and every load loop is bounded in count and time; the project,
# its volumes and the extra network go at the end, whatever happens.
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd)

ttl=5  # the peers' lease, seconds
parts=${CHAT_FAULTS_PARTS:-acbd}
[[ "$parts" =~ ^[abcd]+$ ]] || { echo "CHAT_FAULTS_PARTS must be letters of abcd, not '$parts'" >&2; exit 2; }
# wants PART: whether PART runs; prints its SKIP line when not.
wants() { [[ "$parts" == *"$1"* ]] || { echo "SKIP part $1 (CHAT_FAULTS_PARTS=$parts)"; false; }; }

source "$repo/tests/docker/compose_lib.sh" cluster_faults_e2e chatfaults \
  docker-compose.yml docker-compose.cluster.yml
export CHAT_REGISTRY_PORT CHAT_REGISTRY2_PORT
CHAT_REGISTRY_PORT=$(free_port)
CHAT_REGISTRY2_PORT=$(free_port)

# inside SERVICE ARGS...: chatctl inside SERVICE's own container, at the
# registry it runs, over TLS, with the deployment's admin token: reaches a
# registry whatever network it is on. Faster than a chatctl container.
declare -A cid
declare -A admin_token=([registry]=/data/admin.token [registry2]=/registry/admin.token)
inside() {
  docker exec -i "${cid[$1]}" chatctl --registry 127.0.0.1:50050 --tls-ca /certs/ca.crt \
    --admin-token-file "${admin_token[$1]}" "${@:2}" </dev/null 2>>"$work/chatctl.err"
}

# view SERVICE: what SERVICE's registry lists, sorted, without the
# countdowns (what two registries agreeing on one view must have alike).
view() {
  inside "$1" --json list | "$python" -c '
import json, sys
entries = json.load(sys.stdin)
for e in sorted(entries, key=lambda e: e["name"]):
    print(e["name"], e["address"], e["static"], e.get("fingerprint"), e.get("ttl_ms"))'
}

# send_numbered FROM TO PREFIX FIRST LAST: FROM types "@TO PREFIXnnnn" for
# nnnn from FIRST to LAST.
send_numbered() {
  local n
  for ((n = $4; n <= $5; n++)); do printf -v line '@%s %s%04d' "$2" "$3" "$n"; say "$1" "$line"; done
}

# check_conversation FROM TO PREFIX COUNT SECONDS: every message arrived once,
# in order, and was reported delivered (tests/e2e/check_delivery.py).
check_conversation() {
  "$python" "$repo/tests/e2e/check_delivery.py" --count "$4" --prefix "$3" \
    --sender-name "$1" --receiver-name "$2" --sender "$work/$1.out" --receiver "$work/$2.out" \
    --all-delivered --wait "$5" | sed 's/^/   /' ||
    fail "$1 -> $2 ($3): the delivery guarantee does not hold (above)"
}

# wait_until SECONDS WHAT COMMAND...: until COMMAND succeeds, every 0.5 s.
wait_until() {
  local limit=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${limit}s"
    sleep 0.5
  done
}

part_times=()
part_started=0
begin_part() { part_started=$SECONDS; step "$*"; }
end_part() {
  part_times+=("$1 $((SECONDS - part_started)) s")
  echo "   part $1 took $((SECONDS - part_started)) s"
}

started=$SECONDS
step "compose: ${compose_cmd[*]}, files $COMPOSE_FILE, project $COMPOSE_PROJECT_NAME, image $CHAT_IMAGE"
build_image

step "up -d: etcd1..3, registry and registry2 on etcd, greeter"
up_start=$SECONDS
compose up -d >"$work/up.log" 2>&1 || fail "compose up failed: $(tail -n 20 "$work/up.log")"
wait_healthy 180 etcd1 etcd2 etcd3 registry registry2  # 86-112 s seen on two loaded cores
for service in etcd1 etcd2 etcd3 registry registry2 greeter; do cid[$service]=$(container "$service"); done
project_net=${COMPOSE_PROJECT_NAME}_default
docker network inspect "$project_net" >/dev/null || fail "no project network $project_net"
up_seconds=$((SECONDS - up_start))
echo "   all healthy $up_seconds s after up"

# ---------------------------------------------------------------------------
# alice at registry, bob at registry2, for every part. Each knows the other
# before any fault (a first message each way), so a part measures the
# fault, not the first lookup.
start_peer alice
start_peer bob peer -e CHAT_REGISTRY=registry2:50050
wait_event alice '"event":"ready","name":"alice"'
wait_event bob '"event":"ready","name":"bob"'
say alice "@bob hello"
say bob "@alice hello"
wait_event bob '"text":"hello"'
wait_event alice '"text":"hello"'

# ---------------------------------------------------------------------------
if wants a; then
begin_part "a. docker kill the etcd leader while 1,000 messages flow and names register"

# Static names at both registries, from inside each, in the background: at
# most 25 each, at most 60 s, each call at most 5 s. One line per attempt:
# NAME ADDRESS EXIT_CODE.
register_load() {  # register_load SERVICE PREFIX NET
  docker exec "${cid[$1]}" timeout 90 sh -c '
    i=1; end=$(($(date +%s) + 60))
    while [ "$i" -le 25 ] && [ "$(date +%s)" -lt "$end" ]; do
      code=0
      chatctl --registry 127.0.0.1:50050 --tls-ca /certs/ca.crt --admin-token-file "$0" \
        --timeout 5 register "$1-$i" "10.8.$2.$i:5000" --static >/dev/null 2>&1 || code=$?
      echo "$1-$i 10.8.$2.$i:5000 $code"
      i=$((i + 1)); sleep 0.2
    done' "${admin_token[$1]}" "$2" "$3" </dev/null >"$work/register-$1.out" 2>"$work/register-$1.err"
}
register_load registry ra 1 &
load_pids=("$!")
register_load registry2 rb 2 &
load_pids+=("$!")
pids+=("${load_pids[@]}")

send_numbered alice bob m 1 250
send_numbered bob alice m 1 250
leader=$(etcd_leader etcd1)
docker kill "${cid[$leader]}" >/dev/null || fail "docker kill $leader failed"
killed_at=$SECONDS
echo "   killed $leader (the leader) with 250 of 500 messages each way typed"
# A keyed registration during the election.
start_peer dave
send_numbered alice bob m 251 500
send_numbered bob alice m 251 500
wait_event dave '"event":"ready","name":"dave"' 1 60
check_conversation alice bob m 500 120
check_conversation bob alice m 500 120
for pid in "${load_pids[@]}"; do wait_for_exit "$pid" 100; done

survivor=etcd1
[ "$leader" != etcd1 ] || survivor=etcd2
acked=() refused=0
for service in registry registry2; do
  while read -r name address code; do
    case $code in
      0) acked+=("$name=$address") ;;
      3) refused=$((refused + 1)) ;;  # UNAVAILABLE: not acknowledged, may or may not be there
      *) fail "chatctl register $name at $service exited $code: $(tail -n 3 "$work/register-$service.err")" ;;
    esac
  done <"$work/register-$service.out"
done
[ "${#acked[@]}" -ge 25 ] || fail "only ${#acked[@]} registrations acknowledged of $(cat "$work"/register-*.out | wc -l)"
for service in registry registry2; do
  list=$(inside "$service" --json list) || fail "chatctl list at $service failed"
  for entry in "${acked[@]}"; do
    grep -qF "\"name\":\"${entry%%=*}\",\"address\":\"${entry#*=}\"" <<<"$list" ||
      fail "${entry%%=*} was acknowledged but is not at $service: $list"
  done
done
echo "   ${#acked[@]} static registrations acknowledged, every one at both registries; $refused refused (UNAVAILABLE)"
# The peers' leases were renewed through the election: still listed, one TTL
# and more after the kill.
while [ $((SECONDS - killed_at)) -le $((ttl + 1)) ]; do sleep 0.5; done
for service in registry registry2; do
  list=$(inside "$service" --json list) || fail "chatctl list at $service failed"
  for name in alice bob dave; do listed "$list" "$name" || fail "$name is not listed at $service: $list"; done
done
grep -qF '"event":"offline"' "$work/alice.out" "$work/bob.out" &&
  fail "a peer saw another go offline: $(grep -hF '"event":"offline"' "$work/alice.out" "$work/bob.out")"
echo "   alice, bob and dave listed at both registries $((SECONDS - killed_at)) s after the kill"
end_input dave 30
[ "$exit_code" = 0 ] || fail "dave's container exited $exit_code"

docker start "${cid[$leader]}" >/dev/null || fail "docker start $leader failed"
wait_healthy 60 "$leader"
health=$(compose exec -T "$survivor" etcdctl endpoint health --cluster </dev/null 2>&1) || true
[ "$(grep -c 'is healthy' <<<"$health")" = 3 ] || fail "not three healthy members after the restart: $health"
echo "   $leader started again: three healthy members"
end_part a
fi

# ---------------------------------------------------------------------------
if wants c; then
begin_part "c. every registry down: peers chat directly; mail and names resume when one is back"
# carol registers and leaves: offline, her name bound to her key.
compose run --rm --no-deps -T peer --name carol --ttl "$ttl" --json </dev/null \
  >"$work/carol-first.out" 2>"$work/carol-first.err" || fail "carol's first run failed"
grep -qF '"event":"ready","name":"carol"' "$work/carol-first.out" || fail "carol did not register"
docker kill "${cid[registry]}" "${cid[registry2]}" >/dev/null || fail "docker kill of the registries failed"
down_at=$SECONDS
echo "   registry and registry2 killed"
send_numbered alice bob c 1 20
send_numbered bob alice c 1 20
check_conversation alice bob c 20 60
check_conversation bob alice c 20 60
say alice "@carol written while every registry is down"
wait_event alice '"to":"carol","status":"sent"' 1 30
code=0
at registry2 --timeout 3 register newname 10.8.3.1:5000 --static >/dev/null || code=$?
[ "$code" = 3 ] || fail "a registration with every registry down exited $code, expected 3 (unreachable)"
echo "   40 messages delivered directly; the message to carol waits in alice's outbox; a new name is refused (exit 3)"
# Longer than a TTL: the peers' names expire in etcd meanwhile.
while [ $((SECONDS - down_at)) -le $((ttl + 2)) ]; do sleep 0.5; done
docker start "${cid[registry]}" >/dev/null || fail "docker start registry failed"
wait_healthy 60 registry
echo "   registry back $((SECONDS - down_at)) s after the kill"
wait_event alice '"to":"carol","status":"stored"' 1 60
register registry newname 10.8.3.1:5000
wait_until 30 "alice registered again" at registry resolve alice >/dev/null
docker start "${cid[registry2]}" >/dev/null || fail "docker start registry2 failed"
wait_healthy 60 registry2
wait_until 30 "bob registered again" at registry2 resolve bob >/dev/null
resolves_at registry2 newname 10.8.3.1:5000
# carol comes back at the other registry: the mail deposited through
# registry is hers there, and alice hears it was delivered.
start_peer carol peer -e CHAT_REGISTRY=registry2:50050
wait_event carol '"text":"written while every registry is down"' 1 60
wait_event alice '"to":"carol","status":"delivered"' 1 60
end_input carol 30
[ "$exit_code" = 0 ] || fail "carol's container exited $exit_code"
say alice "@bob after the outage"
wait_event bob '"text":"after the outage"'
echo "   mail stored while back, received at registry2; alice and bob listed again; newname registered"
end_part c
fi

# ---------------------------------------------------------------------------
if wants b; then
begin_part "b. etcd3 and registry2 cut off: the minority refuses writes, the majority serves, one view after"
side_net=${COMPOSE_PROJECT_NAME}_side
docker network create "$side_net" >/dev/null || fail "docker network create $side_net failed"
extra_networks+=("$side_net")
grants=$work/grants.jsonl
: >"$grants"
# contend SERVICE LABEL: one registration of "contested" with key LABEL
# through the registry SERVICE runs, from inside its container; the key is
# the data directory /tmp/contender-LABEL there (copy_key moves it). The
# peer ends at once (no input), unregistering, and the name stays bound to
# its key. Appends the attempt, with its times, to $grants; succeeds when
# the name was granted.
attempt=0
contend() {
  local service=$1 label=$2 start end code=0 out fingerprint granted=false
  attempt=$((attempt + 1))
  out=$work/contend-$attempt-$label-$service.out
  start=$EPOCHREALTIME
  docker exec "${cid[$service]}" timeout 40 chat-peer --name contested --registry 127.0.0.1:50050 \
    --listen 127.0.0.1:0 --json --ttl "$ttl" --data-dir "/tmp/contender-$label" \
    --tls-ca /certs/ca.crt --tls-cert /certs/peer.crt --tls-key /certs/peer.key --tls-peer-name peer \
    </dev/null >"$out" 2>"${out%.out}.err" || code=$?
  end=$EPOCHREALTIME
  fingerprint=$(sed -n 's/.*"event":"ready".*"fingerprint":"\([^"]*\)".*/\1/p' "$out" | head -n 1)
  [ -z "$fingerprint" ] || granted=true
  printf '{"name":"contested","key":"%s","fingerprint":%s,"registry":"%s","start":%s,"end":%s,"granted":%s,"exit":%s}\n' \
    "$label" "$([ -n "$fingerprint" ] && echo "\"$fingerprint\"" || echo null)" "$service" \
    "$start" "$end" "$granted" "$code" >>"$grants"
  echo "   contested, key $label at $service: $([ "$granted" = true ] && echo granted || echo "refused (exit $code)")"
  [ "$granted" = true ]
}
# copy_key LABEL FROM TO: key LABEL's data directory from FROM's container to TO's.
copy_key() {
  docker exec "${cid[$2]}" tar -C /tmp -cf - "contender-$1" </dev/null |
    docker exec -i "${cid[$3]}" sh -c "rm -rf /tmp/contender-$1 && tar -C /tmp -xf -" ||
    fail "cannot copy key $1 from $2 to $3"
}

# The cut: etcd3 and registry2 onto a network of their own, off the project
# network. registry2 still dials etcd1..3 but reaches only etcd3.
for service in etcd3 registry2; do
  docker network connect --alias "$service" "$side_net" "${cid[$service]}" ||
    fail "docker network connect $service failed"
done
for service in etcd3 registry2; do
  docker network disconnect "$project_net" "${cid[$service]}" ||
    fail "docker network disconnect $service failed"
done
cut_at=$SECONDS
member_healthy() { docker exec "${cid[$1]}" etcdctl --command-timeout=2s endpoint health >/dev/null 2>&1; }
member_lost() { ! member_healthy "$1"; }
wait_until 30 "etcd3 to lose the cluster" member_lost etcd3
wait_until 30 "etcd1 to serve" member_healthy etcd1
echo "   cut off; etcd3 has no leader after $((SECONDS - cut_at)) s, etcd1 serves"

# The minority refuses writes; its reads still answer from its index.
code=0
inside registry2 --timeout 10 register minority 10.8.4.1:5000 --static >/dev/null || code=$?
[ "$code" = 3 ] || fail "a static registration at the cut-off registry2 exited $code, expected 3 (UNAVAILABLE)"
inside registry2 resolve alice >/dev/null || fail "registry2 does not resolve alice from its index while cut off"
# The majority serves writes, once the registry there stops waiting on the
# silent member: a write sent to etcd3 right after the cut times out
# (nothing answers, nothing refuses) until gRPC's keepalive gives that
# connection up, and a write that timed out is not sent again elsewhere
# (it may have been applied). register retries for up to 30 s.
register registry majority 10.8.4.2:5000
# One free name, two keys, both sides at once: B through the minority
# (free in its index, so it tries the write), A through the majority.
contend registry2 B >"$work/contend-minority.txt" &
minority_pid=$!
contend registry A || fail "key A was refused contested, a free name, at the majority side"
wait_for_exit "$minority_pid" 60
cat "$work/contend-minority.txt"
[ "$exit_code" != 0 ] || fail "key B was granted contested by the minority side"
! contend registry2 B || fail "key B was granted contested by the minority side"
contend registry A || fail "key A (its holder) was refused contested at the majority side"
# bob's registry is cut off: his name expires at the majority, but he is
# still where he was; whether alice reaches him directly or through his
# mailbox, he gets it (checked after healing).
say alice "@bob during the cut"
echo "   minority: writes refused (exit 3), reads answered; majority: writes served"

# Heal, in the other order.
healed_stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
for service in etcd3 registry2; do
  docker network connect --alias "$service" "$project_net" "${cid[$service]}" ||
    fail "docker network connect $service back failed"
  docker network disconnect "$side_net" "${cid[$service]}" || fail "docker network disconnect $service from the side failed"
done
healed_at=$SECONDS
healed_us=${EPOCHREALTIME/./}
since_heal() { printf '%.1f' "$(((${EPOCHREALTIME/./} - healed_us) / 1000))e-3"; }  # seconds
# same_view also writes down, at each poll that differs, which names differ
# and how long after healing: the heal timeline printed below. Polled from
# the heal on (chatctl inside each registry's container answers whatever
# the network), so the figure is when they agree, not when the waits
# before it ended.
: >"$work/heal-timeline"
same_view() {
  view registry >"$work/view-registry" && view registry2 >"$work/view-registry2" || return 1
  cmp -s "$work/view-registry" "$work/view-registry2" && return 0
  echo "$(since_heal) s: $(diff "$work/view-registry" "$work/view-registry2" | sed -n 's/^\([<>]\) \([^ ]*\).*/\1\2/p' | tr '\n' ' ')" \
    >>"$work/heal-timeline"
  false
}
wait_until 90 "registry and registry2 to agree" same_view
agreed=$(since_heal)
wait_until 60 "etcd3 to rejoin" member_healthy etcd3
rejoined=$(since_heal)
wait_healthy 60 registry2
# What told the registries apart while they differed ("<name": only at
# registry, ">name": only at registry2), one line per change, and what both
# registries logged since healing.
awk '{ k = $0; sub(/^[^:]*: /, "", k); if (k != last) print "   heal timeline: " $0; last = k }' "$work/heal-timeline"
for service in registry registry2; do
  # docker logs may die of SIGPIPE once head has its 20 lines: not a failure.
  { docker logs -t --since "$healed_stamp" "${cid[$service]}" 2>&1 || true; } |
    head -n 20 | sed "s/^/   $service log: /"
done
wait_event bob '"text":"during the cut"' 1 60
grep -q '^majority 10.8.4.2:5000 ' "$work/view-registry2" || fail "registry2 does not have majority: $(cat "$work/view-registry2")"
grep -q '^minority ' "$work/view-registry" && fail "the refused minority entry exists: $(cat "$work/view-registry")"
echo "   healed; one view at both registries $agreed s after healing, etcd3 healthy after $rejoined s ($(wc -l <"$work/view-registry") names)"
# After: the name is key A's at either side, never B's.
copy_key A registry registry2
copy_key B registry2 registry
! contend registry2 B || fail "key B got contested after healing"
! contend registry B || fail "key B got contested after healing"
contend registry2 A || fail "key A (its holder) was refused contested at registry2 after healing"
"$python" "$repo/tests/docker/check_grants.py" --ttl "$ttl" "$grants" | sed 's/^/   /' ||
  fail "two keys held contested at once: $(cat "$grants")"
grep -F '"granted":true' "$grants" | grep -qvF '"key":"A"' && fail "a key other than A was granted: $(cat "$grants")"
docker network rm "$side_net" >/dev/null || fail "docker network rm $side_net failed"
end_part b
fi

# ---------------------------------------------------------------------------
if wants d; then
begin_part "d. one registry killed while peers and a greeter use both"
help=$(compose run --rm --no-deps -T peer --help </dev/null 2>&1) || true
if ! grep -Eiq 'registries|host:port\[?,' <<<"$help"; then
  echo "SKIP part d: chat-peer --help does not mention several registries"
else
  both=registry:50050,registry2:50050
  start_peer erin peer -e CHAT_REGISTRY=$both
  start_peer frank peer -e CHAT_REGISTRY=$both
  wait_event erin '"event":"ready","name":"erin"'
  wait_event frank '"event":"ready","name":"frank"'
  # The greeter, on both registries: the compose one stops (and
  # unregisters); another runs with its identity key, so with its name.
  docker stop "${cid[greeter]}" >/dev/null || fail "docker stop greeter failed"
  greeter2=${COMPOSE_PROJECT_NAME}_greeter_both
  extra_containers+=("$greeter2")
  compose run -d --no-deps --name "$greeter2" greeter chat-greeter --registry "$both" \
    --data-dir /data/greeter --ttl "$ttl" --tls-ca /certs/ca.crt \
    --tls-cert /certs/greeter.crt --tls-key /certs/greeter.key >/dev/null ||
    fail "the greeter on both registries did not start"
  say erin "@frank hello"
  wait_event frank '"text":"hello"'
  wait_until 30 "the greeter registered" at registry2 resolve greeter >/dev/null
  before=$(view registry2)
  send_numbered erin frank f 1 100
  docker kill "${cid[registry]}" >/dev/null || fail "docker kill registry failed"
  failover_at=$SECONDS
  send_numbered erin frank f 101 200
  check_conversation erin frank f 200 120
  # Within one TTL (and a second for the polling) the names are still
  # there, with their keys: nobody re-registered from scratch.
  while [ $((SECONDS - failover_at)) -le $((ttl + 1)) ]; do sleep 0.5; done
  after=$(view registry2)
  for name in erin frank greeter; do
    grep "^$name " <<<"$before" | cut -d' ' -f1-4 >"$work/before-$name"
    grep "^$name " <<<"$after" | cut -d' ' -f1-4 >"$work/after-$name" ||
      fail "$name is not at registry2 one TTL after registry died: $after"
    cmp -s "$work/before-$name" "$work/after-$name" ||
      fail "$name changed: $(cat "$work/before-$name") -> $(cat "$work/after-$name")"
  done
  grep -qF '"event":"offline"' "$work/erin.out" "$work/frank.out" &&
    fail "a peer saw another go offline: $(grep -hF '"event":"offline"' "$work/erin.out" "$work/frank.out")"
  greeting=$(at registry2 greet Anouk) || fail "chatctl greet through registry2 failed"
  [ "$greeting" = "Server response: Hello, Anouk!" ] || fail "chatctl greet printed '$greeting'"
  for name in erin frank; do
    end_input "$name" 30
    [ "$exit_code" = 0 ] || fail "$name's container exited $exit_code"
  done
  docker start "${cid[registry]}" >/dev/null || fail "docker start registry failed"
  wait_healthy 60 registry
  echo "   erin, frank and the greeter kept their names at registry2; 200 messages, none lost"
fi
end_part d
fi

for name in alice bob; do
  end_input "$name" 30
  [ "$exit_code" = 0 ] || fail "$name's container exited $exit_code"
done
echo "PASS cluster_faults_e2e in $((SECONDS - started)) s: build $build_seconds s, up $up_seconds s, parts ${part_times[*]}"
