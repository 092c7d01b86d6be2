#!/usr/bin/env python3
"""check_grants.py on made-up records: grants to one key, refusals, and
grants to two keys apart pass; two keys whose holds overlap (by the TTL after
the first ended, or outright) fail; a broken record is refused."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_grants.py")


def attempt(key, start, end, granted, fingerprint=None, code=0):
    return {"name": "contested", "key": key,
            "fingerprint": fingerprint if granted else None,
            "registry": "registry", "start": start, "end": end,
            "granted": granted, "exit": code if not granted else 0}


class CheckGrantsTest(unittest.TestCase):
    def run_checker(self, records, ttl=5, raw=None):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records))
        try:
            return subprocess.run([sys.executable, CHECKER, "--ttl", str(ttl), f.name],
                                  capture_output=True, text=True).returncode
        finally:
            os.unlink(f.name)

    def test_one_key_and_refusals_pass(self):
        self.assertEqual(0, self.run_checker([
            attempt("A", 0, 1, True, "fa"), attempt("B", 0.5, 3, False, code=3),
            attempt("A", 2, 3, True, "fa"), attempt("B", 4, 5, False, code=1)]))

    def test_two_keys_apart_pass(self):
        self.assertEqual(0, self.run_checker([
            attempt("A", 0, 1, True, "fa"), attempt("B", 6.5, 7, True, "fb")]))

    def test_second_key_within_a_ttl_of_the_first_fails(self):
        self.assertEqual(1, self.run_checker([
            attempt("A", 0, 1, True, "fa"), attempt("B", 5.5, 7, True, "fb")]))

    def test_second_key_during_the_first_fails(self):
        self.assertEqual(1, self.run_checker([
            attempt("A", 0, 10, True, "fa"), attempt("B", 2, 3, True, "fb")], ttl=0))

    def test_same_label_other_fingerprint_is_another_key(self):
        self.assertEqual(1, self.run_checker([
            attempt("A", 0, 1, True, "fa"), attempt("A", 2, 3, True, "fz")]))

    def test_broken_record_is_refused(self):
        self.assertNotEqual(0, self.run_checker([], raw='{"key": "A"}\n'))


if __name__ == "__main__":
    unittest.main()
