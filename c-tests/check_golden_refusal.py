#!/usr/bin/env python3
"""test_report with SWO_GOLDEN_UPDATE set must refuse to run (the old update mode rewrote the
golden files and passed): exit non-zero, say why on stderr, and leave a copy of the golden
directory byte for byte as it was. Also `--write-golden DIR` must never exit 0.

usage: check_golden_refusal.py TEST_REPORT GOLDEN_DIR"""
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile

exe, golden = sys.argv[1], sys.argv[2]
failures = []
with tempfile.TemporaryDirectory() as tmp:
    copy = os.path.join(tmp, "golden")
    shutil.copytree(golden, copy)
    for name in os.listdir(copy):  # a figure the old update mode would have rewritten
        if name.endswith(".json"):
            with open(os.path.join(copy, name), "a") as f:
                f.write("stale\n")
    before = {n: open(os.path.join(copy, n), "rb").read() for n in os.listdir(copy)}
    env = dict(os.environ, SWO_GOLDEN_UPDATE="1", SWO_GOLDEN_DIR=copy)
    run = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=120)
    if run.returncode == 0:
        failures.append("test_report passed with SWO_GOLDEN_UPDATE=1")
    if "SWO_GOLDEN_UPDATE is set" not in run.stderr:
        failures.append(f"no refusal message on stderr: {run.stderr[-500:]!r}")
    after = {n: open(os.path.join(copy, n), "rb").read() for n in os.listdir(copy)}
    if after != before:
        failures.append("the golden files were rewritten")
    out = os.path.join(tmp, "written")
    os.mkdir(out)
    env = {k: v for k, v in os.environ.items() if k != "SWO_GOLDEN_UPDATE"}
    run = subprocess.run([exe, "--write-golden", out], env=env, capture_output=True,
                         text=True, timeout=120)
    if run.returncode != 3:
        failures.append(f"--write-golden exited {run.returncode}, not 3")
    if len(os.listdir(out)) != 20:
        failures.append(f"--write-golden wrote {len(os.listdir(out))} files, not 20")
for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
