#!/usr/bin/env bash
# A thief takes an offline user's name: dave registers and goes
# away (kill -9, so his lease expires while his name stays reserved for his
# key); a real chat-peer --name dave with another data directory (another
# key) then prints one line saying the name belongs to another key and exits
# 1; the real dave, with his own data directory, takes his name back.
#
# Usage: thief_e2e.sh BIN_DIR
set -euo pipefail
bin_dir=$1
source "$(dirname "$0")/lib.sh"

registry=127.0.0.1:$(free_port)
step "registry on $registry"
"$bin_dir/chat-registry" --listen "$registry" --db "$work/registry.db" \
  2>"$work/registry.log" &
pids+=("$!")
wait_for_file "$work/registry.log" "start: listening"

step "dave registers with his key, then is killed"
mkfifo "$work/dave.in"
"$bin_dir/chat-peer" --name dave --registry "$registry" --listen 127.0.0.1:0 \
  --ttl 1 --json --data-dir "$work/dave-data" \
  <"$work/dave.in" >"$work/dave.out" 2>"$work/dave.err" &
dave=$!
pids+=("$dave")
exec {dave_fd}>"$work/dave.in"
wait_for_line "$work/dave.out" '"event":"ready"' "$dave"
kill -9 "$dave"
wait "$dave" 2>/dev/null || true
exec {dave_fd}>&-
[ "$(stat -c %a "$work/dave-data")" = 700 ] || fail "dave's data directory is not 0700"
[ "$(stat -c %a "$work/dave-data/dave.key")" = 600 ] || fail "dave's key is not 0600"

step "his lease expires; the name stays reserved"
deadline=$((SECONDS + 20))
while "$bin_dir/chatctl" --registry "$registry" resolve dave >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || fail "dave's lease did not expire"
  sleep 0.2
done

step "a thief starts chat-peer --name dave with another data directory"
exit_code=0
timeout 20 "$bin_dir/chat-peer" --name dave --registry "$registry" \
  --listen 127.0.0.1:0 --json --data-dir "$work/thief-data" </dev/null \
  >"$work/thief.out" 2>"$work/thief.err" || exit_code=$?
[ "$exit_code" = 1 ] || fail "the thief's chat-peer exited $exit_code, not 1"
[ "$(wc -l <"$work/thief.err")" = 1 ] || fail "the thief was told more than one line"
grep -q "belongs to another key" "$work/thief.err" ||
  fail "the thief was not told the name belongs to another key"
grep -qF '"event":"ready"' "$work/thief.out" && fail "the thief got the name"

step "the real dave takes his name back"
"$bin_dir/chat-peer" --name dave --registry "$registry" --listen 127.0.0.1:0 \
  --json --data-dir "$work/dave-data" </dev/null >"$work/dave2.out" \
  2>"$work/dave2.err" &
dave=$!
pids+=("$dave")
wait_for_line "$work/dave2.out" '"event":"ready"' "$dave"
echo "PASS"
