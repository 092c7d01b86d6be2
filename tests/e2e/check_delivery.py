#!/usr/bin/env python3
"""Counts one conversation in chat-peer --json logs and checks the delivery
guarantee: every message the sender numbered (PREFIX0001, PREFIX0002, ...)
reached the receiver, none was shown twice, in order, and every message the
sender saw acknowledged (stored or delivered) is among them.

A message may appear a second time only flagged "repeated": a receiver
killed between showing a message and noting that it did shows it again
after its restart, and says so (docs/delivery.md).

With --group NAME, the conversation is the sender's messages to that group
as one member (the receiver) saw them, and the sender's reports on that
member's copies; without it, direct messages only. With --allow-prefix, the
receiver may stop short (a member removed with messages in flight): it must
hold 1..N for some N <= count, by the same rules.

With --wait, polls the logs until the conversation is complete or the time
is up, then checks. Exit status 0 when the guarantee holds, 1 otherwise.
"""

import argparse
import json
import sys
import time


def events(paths):
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # A line cut short by kill -9.
        except FileNotFoundError:
            continue


def number(text, prefix):
    if not text.startswith(prefix):
        return None
    digits = text[len(prefix):]
    return int(digits) if digits.isdigit() else None


def in_conversation(event, args):
    """True for a direct event without --group, else one of that group."""
    return event.get("group") == args.group


def survey(args):
    shown = []  # (number, repeated) in the order the receiver showed them
    for event in events(args.receiver):
        if event.get("event") != "message" or event.get("from") != args.sender_name:
            continue
        if not in_conversation(event, args):
            continue
        n = number(event.get("text", ""), args.prefix)
        if n is not None:
            shown.append((n, bool(event.get("repeated"))))
    acked, delivered = set(), set()
    for event in events(args.sender):
        if event.get("event") != "send" or event.get("to") != args.receiver_name:
            continue
        if not in_conversation(event, args):
            continue
        n = number(event.get("text", ""), args.prefix)
        if n is None:
            continue
        if event.get("status") in ("stored", "delivered"):
            acked.add(n)
        if event.get("status") == "delivered":
            delivered.add(n)
    return shown, acked, delivered


def problems(args, shown, acked, delivered):
    arrived = {n for n, _ in shown}
    last = args.count
    if args.allow_prefix:
        last = min(args.count, max(arrived, default=0))
    wanted = set(range(1, last + 1))
    found = []
    missing = sorted(wanted - arrived)
    if missing:
        found.append(f"{len(missing)} never arrived: {missing[:10]}")
    plain = {}
    for n, repeated in shown:
        if not repeated:
            plain[n] = plain.get(n, 0) + 1
    twice = sorted(n for n, c in plain.items() if c > 1)
    if twice:
        found.append(f"{len(twice)} shown twice: {twice[:10]}")
    firsts, seen = [], set()
    for n, _ in shown:
        if n not in seen:
            seen.add(n)
            firsts.append(n)
    disorder = [(a, b) for a, b in zip(firsts, firsts[1:]) if b < a]
    if disorder:
        found.append(f"out of order: {disorder[:5]}")
    lost = sorted(acked - arrived)
    if lost:
        found.append(f"{len(lost)} acknowledged but never arrived: {lost[:10]}")
    undelivered = sorted(wanted - delivered)
    if args.all_delivered and undelivered:
        found.append(f"{len(undelivered)} not reported delivered to the sender: "
                     f"{undelivered[:10]}")
    extra = sorted(arrived - set(range(1, args.count + 1)))
    if extra:
        found.append(f"unexpected messages: {extra[:10]}")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", default="m")
    parser.add_argument("--sender-name", required=True)
    parser.add_argument("--receiver-name", required=True)
    parser.add_argument("--receiver", nargs="+", required=True,
                        help="the receiver's logs, oldest first")
    parser.add_argument("--sender", nargs="+", required=True,
                        help="the sender's logs, oldest first")
    parser.add_argument("--all-delivered", action="store_true",
                        help="also require a delivered report for each")
    parser.add_argument("--group", default=None,
                        help="count the sender's messages to this group")
    parser.add_argument("--allow-prefix", action="store_true",
                        help="the receiver may hold only the first N")
    parser.add_argument("--wait", type=float, default=0,
                        help="seconds to wait for completeness")
    args = parser.parse_args()

    deadline = time.monotonic() + args.wait
    while True:
        shown, acked, delivered = survey(args)
        found = problems(args, shown, acked, delivered)
        if not found or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    repeats = sum(1 for _, r in shown if r)
    where = f" in #{args.group}" if args.group else ""
    summary = (f"{args.sender_name} -> {args.receiver_name}{where}: "
               f"{len({n for n, _ in shown})} of {args.count} arrived, "
               f"{len(acked)} acknowledged, {len(delivered)} reported delivered, "
               f"{repeats} shown again after a restart")
    if found:
        print("FAIL " + summary, file=sys.stderr)
        for problem in found:
            print("  " + problem, file=sys.stderr)
        return 1
    print("ok   " + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
