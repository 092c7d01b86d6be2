#!/usr/bin/env bash
# The log flood and fd exhaustion attacks against a real
# chat-registry on loopback, asserted on line counts (never on time):
#  1. 10,000 requests with invalid UTF-8 in a string field (raw bytes from a
#     Python gRPC client) write at most a handful of log lines, with a count;
#     the registry still answers.
#  2. Started with a soft open-file limit of 64 (the hard one as it is), the
#     registry raises it at start: 100 idle sockets do not keep anyone out.
#  3. With the hard limit at 64 too (nothing to raise to) and 100 idle
#     sockets, accept fails ("Too many open files"): the registry logs a
#     bounded number of lines and stays up. That it serves again afterwards
#     (gRPC 1.51's accept loop ends on EMFILE; the server listens again) is
#     fd_exhaustion_e2e.sh's to show.
#
# Usage: log_flood_e2e.sh BIN_DIR   (the build's bin/)
set -euo pipefail

bin_dir=${1:?usage: log_flood_e2e.sh BIN_DIR}
source "$(dirname "$0")/lib.sh"
"$python" -c 'import grpc' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 0; }

# start LOG [ULIMIT]: a registry on a free port, logging to LOG.
start() {
  local log=$1 limit=${2:-}
  port=$(free_port)
  if [ -n "$limit" ]; then
    (ulimit $limit; exec "$bin_dir/chat-registry" --listen "127.0.0.1:$port" \
      --db "$work/$(basename "$log" .log).db") >"$log" 2>&1 &
  else
    "$bin_dir/chat-registry" --listen "127.0.0.1:$port" \
      --db "$work/$(basename "$log" .log).db" >"$log" 2>&1 &
  fi
  registry_pid=$!
  pids+=("$registry_pid")
  wait_for_line "$log" "start: listening" "$registry_pid"
}

resolves() {  # resolves PORT: chatctl resolve of a missing name exits 1 (NOT_FOUND)
  local code=0
  timeout 20 "$bin_dir/chatctl" --registry "127.0.0.1:$1" --timeout 3 resolve nobody \
    >/dev/null 2>&1 || code=$?
  [ "$code" = 1 ]
}

step "10,000 requests with invalid UTF-8"
start "$work/utf8.log"
before=$(wc -l <"$work/utf8.log")
"$python" - "$port" <<'PY'
import sys, grpc
channel = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
resolve = channel.unary_unary("/chat.registry.v1.Registry/Resolve")
bad = b"\x0a\x02\xff\xfe"  # ResolveRequest{name: 0xff 0xfe}: not UTF-8
futures = []
codes = {}
for i in range(10000):
    futures.append(resolve.future(bad, timeout=30))
    if len(futures) >= 200:
        for f in futures:
            try:
                f.result(); code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            codes[code] = codes.get(code, 0) + 1
        futures = []
for f in futures:
    try:
        f.result(); code = "OK"
    except grpc.RpcError as e:
        code = e.code().name
    codes[code] = codes.get(code, 0) + 1
print("codes:", codes)
PY
resolves "$port" || fail "the registry stopped answering after the bad requests"
lines=$(( $(wc -l <"$work/utf8.log") - before ))
echo "   $lines log lines for 10,000 bad requests"
[ "$lines" -le 10 ] || fail "$lines log lines for 10,000 bad requests (want <= 10)"
grep -q "invalid UTF-8" "$work/utf8.log" || fail "protobuf's message did not reach the log at all"
kill -TERM "$registry_pid"
wait_for_exit "$registry_pid" 20
grep -q "more like it" "$work/utf8.log" ||
  echo "   (no count line yet: the flood was shorter than one interval)"

# hold_sockets PORT: 100 idle TCP connections to PORT until release_sockets.
hold_sockets() {
  rm -f "$work/hold"
  mkfifo "$work/hold"
  "$python" - "$1" "$work/hold" <<'PY' &
import socket, sys
socks = []
for _ in range(100):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        break
    socks.append(s)
print(len(socks), "idle sockets open", flush=True)
open(sys.argv[2]).read()  # until the script closes its end of the pipe
for s in socks:
    s.close()
PY
  holder=$!
  pids+=("$holder")
  exec {hold_fd}>"$work/hold"
}
release_sockets() {
  exec {hold_fd}>&-
  wait "$holder" || true
}

step "soft open-file limit 64: raised at start, 100 idle sockets keep nobody out"
start "$work/soft.log" -Sn64
hold_sockets "$port"
sleep 1  # let them connect (the check below does not depend on it)
resolves "$port" || fail "a client was kept out by 100 idle sockets"
release_sockets
kill -TERM "$registry_pid"
wait_for_exit "$registry_pid" 20

# Under the sanitizers (scripts/test's second pass sets UBSAN_OPTIONS) this
# step is skipped: once accept4 fails, gRPC 1.51's own error path
# (tcp_server_posix.cc) sometimes trips UBSan's vptr check on a shared_ptr
# release inside libgrpc, which our code does not reach. The g++ pass runs it.
if [ -n "${UBSAN_OPTIONS:-}${ASAN_OPTIONS:-}" ]; then
  echo "== hard open-file limit: skipped under the sanitizers (see the comment)"
  echo "PASS"
  exit 0
fi
step "hard open-file limit 64: accept fails, a bounded number of log lines"
start "$work/fd.log" -n64
before=$(wc -l <"$work/fd.log")
hold_sockets "$port"
for _ in 1 2 3; do resolves "$port" || true; done
lines=$(( $(wc -l <"$work/fd.log") - before ))
echo "   $lines log lines while accept failed"
[ "$lines" -le 20 ] || fail "$lines log lines while accept failed (want <= 20)"
kill -0 "$registry_pid" || fail "the registry died"
release_sockets
kill -TERM "$registry_pid"
wait_for_exit "$registry_pid" 20
echo "PASS"
