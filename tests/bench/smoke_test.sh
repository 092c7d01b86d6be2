#!/usr/bin/env bash
# chat_bench_smoke: every scenario of chat-bench runs briefly, and --compare
# once; each run must complete calls with no errors. Then --system all runs
# the real binaries (next to chat-bench) briefly: every registration must
# succeed, every binary start, and the overload must see no error other than
# RESOURCE_EXHAUSTED/DEADLINE_EXCEEDED with the registry alive and answering
# afterwards. Where built with etcd, --cluster all runs with small numbers:
# every watcher must read every change and every mail call succeed. No
# timing and no memory figure is asserted.
# Usage: smoke_test.sh PATH/TO/chat-bench [SCENARIOS]  (how many `all` runs:
# 12, or 14 where chat-bench is built with etcd's scenarios)
set -euo pipefail
bench=$1
scenarios=${2:-12}
python=/usr/bin/python3
[ -x "$python" ] || python=python3
out=$(mktemp "${TMPDIR:-/tmp}/chat_bench_smoke.XXXXXX")
trap 'rm -f "$out"' EXIT

check() {  # check WHAT EXPECTED_RESULTS [EXPECTED_RATIOS]
  "$python" - "$out" "$1" "$2" "${3:-0}" <<'PY'
import json, sys
path, what, want_results, want_ratios = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [json.loads(line) for line in open(path) if line.strip()]
results = [r for r in rows if r["kind"] == "result"]
ratios = [r for r in rows if r["kind"] == "ratio"]
bad = [r for r in results if r["calls"] <= 0 or r["errors"] != 0]
if len(results) != want_results or len(ratios) != want_ratios or bad:
    print(f"FAIL {what}: {len(results)} results (want {want_results}), "
          f"{len(ratios)} ratios (want {want_ratios}); bad: {bad}")
    sys.exit(1)
for r in results:
    print(f"ok {what}: {r['scenario']} round {r['round']}: {r['calls']} calls")
PY
}

run() {  # run ARGS...: chat-bench ARGS --json into $out; fails unless it exits 0
  local code=0
  "$bench" "$@" --json >"$out" || code=$?
  [ "$code" -eq 0 ] || { cat "$out"; echo "FAIL: chat-bench $* exited $code"; exit 1; }
}

echo "== every scenario"
run --scenario all --duration 1 --warmup 0 --names 100 --concurrency 2
check all "$scenarios"

echo "== --compare"
run --compare --rounds 3 --scenario resolve --duration 0.3 --warmup 0 --names 10
check compare 6 1

echo "== group-send with its members apart (chat-peer processes)"
run --compare --rounds 3 --scenario send-durable,group-send --group-members 3 \
  --group-apart --duration 0.3 --warmup 0
check group-apart 9 2
"$python" - "$out" <<'PY' || exit 1
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
group = [r for r in rows if r["kind"] == "group"]
copies = [r for r in rows if r["kind"] == "copy_ratio"]
if len(group) != 1 or not group[0]["apart"] or len(copies) != 1 \
        or copies[0]["copies"] != 2 or "sender_cpu_per_copy" not in copies[0]:
    print(f"FAIL group-apart: group {group}, copy ratios {copies}")
    sys.exit(1)
print("ok group-apart: the sending process's CPU per copy:",
      copies[0]["sender_cpu_per_copy"])
PY

echo "== --tls: the lab over TLS (certificates from scripts/make-certs)"
certs=$(mktemp -d "${TMPDIR:-/tmp}/chat_bench_certs.XXXXXX")
"$(dirname "$0")/../../scripts/make-certs" "$certs" --peer localhost,localhost,127.0.0.1 >/dev/null
run --scenario greet,resolve,send,send-floor --duration 0.5 --warmup 0 --names 10 --tls "$certs"
rm -rf "$certs"
check tls 4

echo "== --system all (real binaries)"
run --system all --names 200 --startup-rounds 2 --idle 0.2 \
  --peak-concurrency 1,8 --duration 0.5 --warmup 0.2 --connections 2 \
  --overload-connections 1,2
"$python" - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
kinds = {}
for r in rows:
    kinds.setdefault(r["kind"], []).append(r)
problems = []
for kind, want in [("memory", 4), ("fill", 1), ("startup", 3), ("startup_ratio", 2),
                   ("overload_peak", 2), ("overload", 2)]:
    if len(kinds.get(kind, [])) != want:
        problems.append(f"{len(kinds.get(kind, []))} {kind} rows, want {want}")
for f in kinds.get("fill", []):
    if f["errors"] != 0 or f["leases"] != 200:
        problems.append(f"fill: {f}")
for o in kinds.get("overload", []):
    if o["violations"] != 0 or not o["registry_alive"] or not o["answers_after"]:
        problems.append(f"overload: {o}")
    # Whether the driver offered the rate asked decides if goodput is judged.
    if abs(o["offered_share"] - 0.95) > 0.001 and \
            o["judged"] != (o["offered_share"] >= 0.95):
        problems.append(f"overload judged wrongly: {o}")
    # How many calls fit in the short window depends on how busy the machine
    # is (a stalled scheduler can skip it whole), so only the answers are
    # checked here, not their number.
if problems:
    print("FAIL --system:", "; ".join(problems))
    sys.exit(1)
print("ok --system:", ", ".join(f"{k} x{len(v)}" for k, v in kinds.items()))
PY

if [ "$scenarios" -gt 11 ]; then
  echo "== --cluster all (registries over etcd, real binaries)"
  run --cluster all --watchers 20 --changes 4 --rounds 2 --concurrency 2 \
    --duration 0.5 --warmup 0
  "$python" - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
fanout = [r for r in rows if r["kind"] == "fanout"]
results = [r for r in rows if r["kind"] == "result"]
ratios = [r for r in rows if r["kind"] == "ratio"]
problems = []
if sorted(r["backend"] for r in fanout) != ["etcd", "sqlite"]:
    problems.append(f"fanout rows: {fanout}")
for r in fanout:
    # Every watcher read every change; how fast is not asserted.
    if r["missed"] != 0 or r["deliveries"] != r["changes"] * r["watchers"] or r["changes"] != 4:
        problems.append(f"fanout: {r}")
if len(results) != 6 or any(r["calls"] <= 0 or r["errors"] != 0 for r in results):
    problems.append(f"mailbox results: {results}")
if len(ratios) != 2:
    problems.append(f"mailbox ratios: {ratios}")
if problems:
    print("FAIL --cluster:", "; ".join(problems))
    sys.exit(1)
print("ok --cluster:", ", ".join(f"{r['backend']} {r['deliveries']} deliveries" for r in fanout),
      "; mailbox", ", ".join(f"{r['scenario']} {r['calls']}" for r in results))
PY
fi

echo "== usage errors exit 2"
for args in "--scenario nope" "--concurrency 0" "--duration 0" "--compare --rounds 2" \
    "--system nope" "--overload-factor 0" "--deadline-ms 0" \
    "--system overload --server-cgroup /nonexistent" "--cluster nope" \
    "--cluster all --watchers 0" "--group-members 1" "--group-members 65"; do
  code=0
  # shellcheck disable=SC2086
  "$bench" $args >/dev/null 2>&1 || code=$?
  [ "$code" -eq 2 ] || { echo "FAIL: chat-bench $args exited $code, want 2"; exit 1; }
done
echo "PASS"
