#!/usr/bin/env bash
# Registration proofs against a real chat-registry on loopback, from a
# Python gRPC client that signs its own chat-register-v2 proofs:
#  1. a Register with a timed proof registers, in one call;
#  2. the same bytes sent again are refused (UNAUTHENTICATED, "replayed"),
#     also after the registry restarted on the same database;
#  3. a proof dated outside --proof-skew (given 30s here) is refused saying
#     by how much.
#
# Usage: proof_e2e.sh BIN_DIR   (the build's bin/)
set -euo pipefail

bin_dir=${1:?usage: proof_e2e.sh BIN_DIR}
source "$(dirname "$0")/lib.sh"
"$python" -c 'import grpc' 2>/dev/null || { echo "SKIP: no python3-grpcio"; exit 0; }
"$python" -c 'from cryptography.hazmat.primitives.asymmetric import ed25519' \
  2>/dev/null || { echo "SKIP: no python3-cryptography"; exit 0; }

port=$(free_port)
start_registry() {  # start_registry LOG
  "$bin_dir/chat-registry" --listen "127.0.0.1:$port" --db "$work/registry.db" \
    --proof-skew 30s >"$1" 2>&1 &
  registry_pid=$!
  pids+=("$registry_pid")
  wait_for_line "$1" "start: listening" "$registry_pid"
}

# register MODE: runs the client below; MODE is `first` (make a request,
# keep its bytes in $work/request.bin, send it), `again` (send those bytes
# again) or `stale` (a new proof dated 60 s ago). Prints the status code and
# message.
register() {
  timeout 30 "$python" - "$port" "$1" "$work/request.bin" <<'PY'
import struct, sys, time, grpc
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization

port, mode, path = sys.argv[1], sys.argv[2], sys.argv[3]

def field(number, wire_type, payload):
    key = (number << 3) | wire_type
    return varint(key) + (varint(len(payload)) + payload if wire_type == 2 else payload)

def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])

def framed(data):
    return struct.pack(">I", len(data)) + data

def request(name, proof_ms):
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    address = b"127.0.0.1:7001"
    message = (b"chat-register-v2\x00" + framed(name) + framed(address) +
               framed(public) + framed(struct.pack(">Q", proof_ms)))
    return (field(1, 2, name) + field(2, 2, address) + field(5, 2, public) +
            field(7, 2, key.sign(message)) + field(9, 0, varint(proof_ms)))

now_ms = int(time.time() * 1000)
if mode == "first":
    data = request(b"bob", now_ms)
    open(path, "wb").write(data)
elif mode == "again":
    data = open(path, "rb").read()
else:
    # Another name: bob is bound to the first key now.
    data = request(b"carol", now_ms - 60000)
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
register = channel.unary_unary("/chat.registry.v1.Registry/Register")
try:
    register(data, timeout=10)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name, e.details())
PY
}

step "a timed proof registers in one call"
start_registry "$work/registry.log"
result=$(register first)
[ "$result" = "OK" ] || fail "first Register: $result"

step "the same bytes again are refused"
result=$(register again)
[[ "$result" == UNAUTHENTICATED*"replayed"* ]] ||
  fail "replayed Register: expected UNAUTHENTICATED ... replayed, got: $result"

step "also after a restart on the same database"
kill "$registry_pid"
wait "$registry_pid" 2>/dev/null || true
start_registry "$work/registry2.log"
result=$(register again)
[[ "$result" == UNAUTHENTICATED*"replayed"* ]] ||
  fail "replayed Register after a restart: got: $result"

step "a proof outside --proof-skew is refused saying by how much"
result=$(register stale)
[[ "$result" == UNAUTHENTICATED*"behind the registry's clock (at most 30s"* ]] ||
  fail "stale Register: got: $result"

echo "PASS"
