#!/usr/bin/env bash
# End to end over loopback with the real binaries: chat-registry and chatctl.
# Health; static entries; list, resolve and their JSON; watch (human and JSON)
# seeing PUT and DELETE; kill -9 of the registry and a restart on the same
# database (static entries survive, watches carry on); a second registry on
# that database refused in one line naming the first; --help, --version,
# usage errors and an unreachable registry.
#
# Usage: registry_e2e.sh BIN_DIR   (the build's bin/, with both binaries)
set -euo pipefail

bin_dir=${1:?usage: registry_e2e.sh BIN_DIR}
source "$(dirname "$0")/lib.sh"

registry_bin=$bin_dir/chat-registry
chatctl_bin=$bin_dir/chatctl
for binary in "$registry_bin" "$chatctl_bin"; do
  [ -x "$binary" ] || fail "$binary is missing"
done

# run EXPECTED_EXIT ARGS...: runs chatctl (bounded), leaves its output in $out
# and $err, fails unless it exits EXPECTED_EXIT.
run() {
  local expected=$1 code=0
  shift
  timeout 20 "$chatctl_bin" "$@" >"$work/run.stdout" 2>"$work/run.stderr" || code=$?
  out=$(cat "$work/run.stdout")
  err=$(cat "$work/run.stderr")
  [ "$code" = "$expected" ] ||
    fail "chatctl $* exited $code, expected $expected
stdout: $out
stderr: $err"
}

contains() {  # contains TEXT NEEDLE WHAT
  [[ "$1" == *"$2"* ]] || fail "$3: expected to find '$2' in:
$1"
}

port=$(free_port)
export CHAT_REGISTRY=127.0.0.1:$port
# Static entries need the admin token, which the registry writes next to
# its database on its first start.
export CHAT_ADMIN_TOKEN_FILE=$work/admin.token

start_registry() {
  # Not under `timeout`: kill -9 must hit the registry itself. The trap and
  # CTest's TIMEOUT bound it.
  "$registry_bin" --listen "127.0.0.1:$port" --db "$work/registry.db" \
    --min-ttl 1 --default-ttl 2 >>"$work/registry.log" 2>&1 &
  registry_pid=$!
  pids+=("$registry_pid")
  local deadline=$((SECONDS + 20))
  until timeout 5 "$chatctl_bin" --timeout 1 health >/dev/null 2>&1; do
    kill -0 "$registry_pid" 2>/dev/null || fail "chat-registry exited while starting"
    [ "$SECONDS" -lt "$deadline" ] || fail "chat-registry not SERVING after 20 s"
    sleep 0.05
  done
}

step "--version and --help exit 0; help lists every command and the exit codes"
run 0 --version
contains "$out" "chatctl " "--version"
run 0 --help
for command in list resolve watch register unregister health greet; do
  contains "$out" "  $command " "--help"
done
contains "$out" "Exit status" "--help"
contains "$out" "CHAT_REGISTRY" "--help"

step "usage errors exit 2"
run 2 --no-such-option list
contains "$err" "chatctl: " "bad option"
run 2
run 2 frobnicate
run 2 register alice 127.0.0.1:5000
contains "$err" "--static" "register without --static"
run 2 resolve "not a name"
run 2 --timeout zero list

step "an unreachable registry exits 3 and names the address"
dead_port=$(free_port)
run 3 --registry "127.0.0.1:$dead_port" list
contains "$err" "127.0.0.1:$dead_port" "unreachable list"
run 3 --registry "127.0.0.1:$dead_port" health
run 3 --registry "127.0.0.1:$dead_port" watch

step "start chat-registry on 127.0.0.1:$port; health says SERVING"
start_registry
run 0 health
[ "$out" = "SERVING" ] || fail "health printed '$out'"
run 0 health "127.0.0.1:$port" --json
[ "$out" = "{\"address\":\"127.0.0.1:$port\",\"status\":\"SERVING\"}" ] || fail "health --json printed '$out'"

step "an empty registry lists just the header, or []"
run 0 list
[ "$out" = "NAME  ADDRESS  SERVICES  EXPIRES IN" ] || fail "empty list printed '$out'"
run 0 list --json
[ "$out" = "[]" ] || fail "empty list --json printed '$out'"

step "watch (human and --json) in the background"
timeout 120 "$chatctl_bin" watch >"$work/watch.out" 2>"$work/watch.err" &
watch_pid=$!
pids+=("$watch_pid")
timeout 120 "$chatctl_bin" --json watch >"$work/watch-json.out" 2>"$work/watch-json.err" &
watch_json_pid=$!
pids+=("$watch_json_pid")
wait_for_file "$work/watch.err" "-- synced, watching for changes"
wait_for_file "$work/watch-json.err" "-- synced, watching for changes"

step "register static entries; resolve and list them"
run 0 register alice 127.0.0.1:5000 --static
contains "$out" "alice" "register"
run 0 --registry "127.0.0.1:$port" register Bob [::1]:6000 --static
run 0 resolve alice
[ "$out" = "127.0.0.1:5000" ] || fail "resolve alice printed '$out'"
run 0 resolve BOB
[ "$out" = "[::1]:6000" ] || fail "resolve BOB printed '$out'"
run 1 resolve nobody
contains "$err" "nobody" "resolve nobody"

step "the registry serves the mailbox: chatctl mailbox"
run 0 mailbox bob
contains "$out" "no messages wait for bob" "mailbox"
run 0 list
contains "$out" "alice  127.0.0.1:5000  chat      static" "list"
run 0 list --service greet
[ "$out" = "NAME  ADDRESS  SERVICES  EXPIRES IN" ] || fail "list --service greet printed '$out'"
run 0 list b
[[ "$out" != *alice* ]] || fail "list b shows alice: $out"
contains "$out" "Bob" "list b"
run 0 list --json
"$python" - "$out" <<'EOF' || fail "list --json: $out"
import json, sys
entries = json.loads(sys.argv[1])
assert [e["name"] for e in entries] == ["alice", "Bob"], entries
for e in entries:
    assert e["static"] is True and e["expires_in_ms"] is None, e
assert entries[0]["address"] == "127.0.0.1:5000", entries
EOF
run 0 resolve alice --json
"$python" -c 'import json, sys; e = json.loads(sys.argv[1]); assert e["address"] == "127.0.0.1:5000"' "$out" ||
  fail "resolve --json: $out"

step "unregister a static entry; both watches saw PUT and DELETE"
run 0 unregister Bob --static
run 1 unregister Bob --static
wait_for_file "$work/watch.out" "DELETE Bob [::1]:6000 (unregistered)"
wait_for_file "$work/watch.out" "PUT alice 127.0.0.1:5000 (registered)"
wait_for_file "$work/watch-json.out" '"type":"DELETE"'
"$python" - "$work/watch-json.out" <<'EOF' || fail "watch --json output"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
seen = [(e["type"], e["name"], e["address"], e["reason"]) for e in events]
assert ("PUT", "alice", "127.0.0.1:5000", "registered") in seen, seen
assert ("PUT", "Bob", "[::1]:6000", "registered") in seen, seen
assert ("DELETE", "Bob", "[::1]:6000", "unregistered") in seen, seen
EOF
if grep -q "synced" "$work/watch-json.out"; then fail "watch --json put the synced note on stdout"; fi

step "kill -9 the registry: chatctl says unreachable (exit 3)"
kill -9 "$registry_pid"
wait "$registry_pid" 2>/dev/null || true
run 3 list
contains "$err" "127.0.0.1:$port" "list while down"
wait_for_file "$work/watch.err" "reconnecting"

step "restart on the same database: static entries are still there"
start_registry
run 0 resolve alice
[ "$out" = "127.0.0.1:5000" ] || fail "after restart, resolve alice printed '$out'"
run 1 resolve Bob
run 0 list
contains "$out" "alice  127.0.0.1:5000  chat      static" "list after restart"

step "the watches reconnected and carry on"
wait_for_file "$work/watch.err" "-- synced, watching for changes" 2
run 0 register carol 127.0.0.1:7000 --static
wait_for_file "$work/watch.out" "PUT carol 127.0.0.1:7000 (registered)"
wait_for_file "$work/watch-json.out" '"name":"carol"'
if [ "$(grep -c "PUT alice" "$work/watch.out")" != 1 ]; then
  fail "watch printed alice again after the reconnect"
fi

step "a second registry on the same database: one line naming the first's pid, exit 1"
code=0
timeout 20 "$registry_bin" --listen "127.0.0.1:$(free_port)" --db "$work/registry.db" \
  >"$work/second.log" 2>&1 || code=$?
[ "$code" = 1 ] || fail "a second chat-registry on registry.db exited $code, expected 1"
grep -qE "registry: $work/registry.db is in use by another chat-registry \(pid $registry_pid\)\$" \
  "$work/second.log" || fail "no clear line for the second registry: $(cat "$work/second.log")"

step "SIGINT and SIGTERM end the watches cleanly (exit 0)"
stop_cleanly INT "$watch_pid" watch
stop_cleanly TERM "$watch_json_pid" "watch --json"

step "SIGTERM stops the registry gracefully (exit 0)"
stop_cleanly TERM "$registry_pid" chat-registry
run 3 health

echo "PASS: registry end to end"
