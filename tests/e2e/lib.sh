# Shared by the end-to-end scripts: a scratch directory, process cleanup,
# step logging, free ports and bounded waits. Source it after `set -euo
# pipefail`; it defines $work, $python and the functions below.

# Debian's python3 first: another one may come first on PATH.
python=/usr/bin/python3
[ -x "$python" ] || python=python3

work=$(mktemp -d "${TMPDIR:-/tmp}/chat_e2e.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { echo "== $*"; }

# fail MESSAGE: prints MESSAGE and every log in $work, then exits 1.
fail() {
  echo "FAIL: $*" >&2
  local log
  for log in "$work"/*.log "$work"/*.out "$work"/*.err; do
    [ -s "$log" ] && { echo "--- $(basename "$log")" >&2; tail -n 60 "$log" >&2; }
  done
  exit 1
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_file FILE NEEDLE [COUNT] [SECONDS]: until FILE holds the fixed
# string NEEDLE on COUNT lines (default 1), at most SECONDS (default 20).
wait_for_file() {
  local file=$1 needle=$2 count=${3:-1} limit=${4:-20}
  local deadline=$((SECONDS + limit))
  until [ "$(grep -cF -- "$needle" "$file" 2>/dev/null || true)" -ge "$count" ]; do
    [ "$SECONDS" -lt "$deadline" ] ||
      fail "'$needle' did not appear $count time(s) in $(basename "$file") within ${limit}s"
    sleep 0.05
  done
}

# wait_for_exit PID SECONDS: until PID has exited; sets $exit_code.
wait_for_exit() {
  local pid=$1 limit=$2 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "process $pid still running after ${limit}s"
    sleep 0.05
  done
  exit_code=0
  wait "$pid" || exit_code=$?
}
