#!/usr/bin/env python3
"""Builds the Rust library with cargo for meson, and copies out what meson uses.

usage: cargo-build.py SRCDIR OUTDIR   (outputs: libswitchover.so, libswitchover.so.0,
libswitchover.a, switchover.h.generated)
"""
import glob
import os
import shutil
import subprocess
import sys

src, outdir = sys.argv[1], sys.argv[2]
target = os.path.join(outdir, "cargo-target")
env = dict(os.environ, CARGO_TARGET_DIR=target)
subprocess.run(
    ["cargo", "build", "--release", "--lib", "--manifest-path", os.path.join(src, "Cargo.toml")],
    check=True,
    env=env,
)
rel = os.path.join(target, "release")
shutil.copy2(os.path.join(rel, "libswitchover.so"), os.path.join(outdir, "libswitchover.so"))
shutil.copy2(os.path.join(rel, "libswitchover.so"), os.path.join(outdir, "libswitchover.so.0"))
shutil.copy2(os.path.join(rel, "libswitchover.a"), os.path.join(outdir, "libswitchover.a"))
# The header build.rs generated in this very build (newest of the build-script outputs).
headers = glob.glob(os.path.join(rel, "build", "switchover-*", "out", "switchover.h"))
newest = max(headers, key=os.path.getmtime)
shutil.copy2(newest, os.path.join(outdir, "switchover.h.generated"))
