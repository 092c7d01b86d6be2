#!/usr/bin/env python3
"""Checks a record of registration attempts of one name through several
registries: no two keys ever held the name at the same time.

Each input line is one JSON object per attempt, written by the fault test:
  {"name": ..., "key": LABEL, "fingerprint": ... or null, "registry": ...,
   "start": UNIX_SECONDS, "end": UNIX_SECONDS, "granted": bool, "exit": CODE}
where start is taken before the registering process began and end after it
ended, so the process ran inside [start, end]. A granted attempt held the name
at most from start until TTL after end: a clean exit unregisters, and a lease
not renewed lasts one TTL. These intervals are wider than the real holds, so
an overlap they do not show cannot have happened; two grants to different
keys whose intervals overlap are reported.

A key is its fingerprint when the holder printed one, else its label. Prints
a summary (attempts, grants per key, refusals per exit code, per registry);
exit status 0 when no two keys overlap, 1 otherwise (or on unreadable input).
"""

import argparse
import collections
import json
import sys


def load(path):
    attempts = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                attempt = json.loads(line)
                float(attempt["start"]), float(attempt["end"])
                bool(attempt["granted"])
            except (ValueError, KeyError, TypeError) as error:
                raise SystemExit(f"{path}:{number}: not an attempt record ({error}): {line}")
            attempts.append(attempt)
    return attempts


def key_of(attempt):
    return attempt.get("fingerprint") or attempt.get("key")


def overlaps(attempts, ttl):
    held = [(float(a["start"]), float(a["end"]) + ttl, a)
            for a in attempts if a["granted"]]
    held.sort(key=lambda h: h[0])
    found = []
    for i, (start, end, attempt) in enumerate(held):
        for other_start, other_end, other in held[i + 1:]:
            if other_start >= end:
                break  # sorted by start: no later one begins before this ends
            if key_of(other) != key_of(attempt) and other_start < end and start < other_end:
                found.append((attempt, other))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", help="the attempts, one JSON object per line")
    parser.add_argument("--ttl", type=float, required=True,
                        help="the lease TTL the holders asked for, seconds")
    args = parser.parse_args()

    attempts = load(args.records)
    grants = collections.Counter(key_of(a) for a in attempts if a["granted"])
    refusals = collections.Counter(
        (a.get("registry"), a.get("exit")) for a in attempts if not a["granted"])
    names = sorted({a.get("name") for a in attempts if a.get("name")})
    print(f"{len(attempts)} attempts on {', '.join(names) or '?'}: "
          f"{sum(grants.values())} granted")
    for key, count in sorted(grants.items()):
        labels = sorted({a.get("key") for a in attempts if key_of(a) == key})
        print(f"  granted {count} times to key {key} ({', '.join(labels)})")
    for (registry, code), count in sorted(refusals.items(), key=str):
        print(f"  refused {count} times at {registry} (exit {code})")
    found = overlaps(attempts, args.ttl)
    if found:
        print(f"FAIL {len(found)} times two keys held the name at once:", file=sys.stderr)
        for first, second in found[:10]:
            print(f"  {json.dumps(first)}\n  {json.dumps(second)}", file=sys.stderr)
        return 1
    print("ok   no two keys ever held the name at the same time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
