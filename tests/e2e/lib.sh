# Shared by the end-to-end scripts: a scratch directory, process cleanup,
# step logging, free ports, ports read from logs and bounded waits. Source it
# after `set -euo pipefail`; it defines $work, $python and the functions below.

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

# wait_for_line FILE NEEDLE PID [SECONDS]: until FILE holds the fixed string
# NEEDLE, at most SECONDS (default 20); fails at once if PID exits first.
wait_for_line() {
  local file=$1 needle=$2 pid=$3 limit=${4:-20}
  local deadline=$((SECONDS + limit))
  until grep -qF -- "$needle" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "process $pid died before logging '$needle'"
    [ "$SECONDS" -lt "$deadline" ] ||
      fail "'$needle' did not appear in $(basename "$file") within ${limit}s"
    sleep 0.05
  done
}

# port_in_log LOG: prints the port of LOG's first "start: ... (port N)" line,
# or nothing.
port_in_log() {
  sed -n '/start: .* (port [0-9]*)/{s/.*start: .* (port \([0-9]*\)).*/\1/p;q;}' "$1"
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

# stop_cleanly SIGNAL PID WHAT: sends SIGNAL (TERM, INT, ...) to PID, waits
# for it at most 20 s and fails unless it exits 0.
stop_cleanly() {
  local signal=$1 pid=$2 what=$3
  kill -"$signal" "$pid"
  wait_for_exit "$pid" 20
  [ "$exit_code" = 0 ] || fail "$what exited $exit_code after SIG$signal"
}

# start_etcd ETCD_BINARY: a one-member etcd on loopback (free ports, data in
# $work/etcd, log in $work/etcd.log), waited for until it serves. Sets
# etcd_endpoint (host:port, plaintext) and etcd_pid, and adds it to pids.
start_etcd() {
  local etcd_bin=$1 client_port peer_port
  client_port=$(free_port)
  peer_port=$(free_port)
  etcd_endpoint=127.0.0.1:$client_port
  "$etcd_bin" --name e2e --data-dir "$work/etcd" \
    --listen-client-urls "http://$etcd_endpoint" \
    --advertise-client-urls "http://$etcd_endpoint" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "e2e=http://127.0.0.1:$peer_port" \
    >"$work/etcd.log" 2>&1 &
  etcd_pid=$!
  pids+=("$etcd_pid")
  wait_for_line "$work/etcd.log" "ready to serve client requests" "$etcd_pid" 30
}
