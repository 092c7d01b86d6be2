#!/usr/bin/env bash
# chat_bench_smoke: every scenario of chat-bench runs briefly, and --compare
# once; each run must complete calls with no errors. No timing is asserted.
# Usage: smoke_test.sh PATH/TO/chat-bench
set -euo pipefail
bench=$1
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
check all 7

echo "== --compare"
run --compare --rounds 3 --scenario resolve --duration 0.3 --warmup 0 --names 10
check compare 6 1

echo "== usage errors exit 2"
for args in "--scenario nope" "--concurrency 0" "--duration 0" "--compare --rounds 2"; do
  code=0
  # shellcheck disable=SC2086
  "$bench" $args >/dev/null 2>&1 || code=$?
  [ "$code" -eq 2 ] || { echo "FAIL: chat-bench $args exited $code, want 2"; exit 1; }
done
echo "PASS"
