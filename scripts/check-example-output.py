#!/usr/bin/env python3
"""Runs an example and compares what it prints with the expected lines, exactly.

usage: check-example-output.py EXE LINE...   (`{version}` in a LINE stands for the project
version). Exits 1 on any difference, showing both; the example's own exit code must be 0.
"""
import subprocess
import sys

exe, version, *expected = sys.argv[1:]
expected = [line.replace("{version}", version) for line in expected]
run = subprocess.run([exe], capture_output=True, text=True, timeout=60)
actual = run.stdout.splitlines()
if run.returncode != 0 or actual != expected:
    print(f"{exe}: exit {run.returncode}", file=sys.stderr)
    print("--- expected\n" + "\n".join(expected), file=sys.stderr)
    print("--- actual\n" + "\n".join(actual), file=sys.stderr)
    print("--- stderr\n" + run.stderr, file=sys.stderr)
    sys.exit(1)
print("\n".join(actual))
