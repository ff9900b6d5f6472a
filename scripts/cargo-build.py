#!/usr/bin/env python3
"""Builds the Rust library with cargo for meson, and copies out what meson uses.

usage: cargo-build.py SRCDIR OUTDIR SONAME   (outputs: libswitchover.so, SONAME (meson passes
the one it derives from Cargo.toml's version, e.g. libswitchover.so.0), libswitchover.a,
switchover.h.generated)

Quiet (cargo's --quiet: no Compiling/Finished lines, errors and warnings still shown) unless
SWO_VERBOSE=1 (scripts/test.sh -v, scripts/demo.sh -v).
"""
import glob
import os
import shutil
import subprocess
import sys

src, outdir, soname = sys.argv[1], sys.argv[2], sys.argv[3]
# SWO_CARGO_TARGET_DIR: one cargo target for several meson build dirs of the same checkout
# (the README's install test); by default each build dir has its own.
target = os.environ.get("SWO_CARGO_TARGET_DIR") or os.path.join(outdir, "cargo-target")
env = dict(os.environ, CARGO_TARGET_DIR=target)
rel = os.path.join(target, "release")
cmd = ["cargo", "build", "--release", "--lib", "--manifest-path", os.path.join(src, "Cargo.toml")]
if os.environ.get("SWO_VERBOSE") != "1":
    cmd.append("--quiet")
    if not os.path.exists(os.path.join(rel, "libswitchover.so")):
        print("building libswitchover with cargo (release; the first build takes a few minutes)",
              flush=True)
if subprocess.run(cmd, env=env).returncode != 0:
    sys.exit("cargo build of libswitchover failed (the messages above)")
shutil.copy2(os.path.join(rel, "libswitchover.so"), os.path.join(outdir, "libswitchover.so"))
shutil.copy2(os.path.join(rel, "libswitchover.so"), os.path.join(outdir, soname))
shutil.copy2(os.path.join(rel, "libswitchover.a"), os.path.join(outdir, "libswitchover.a"))
# The header build.rs generated in this very build (newest of the build-script outputs).
headers = glob.glob(os.path.join(rel, "build", "switchover-*", "out", "switchover.h"))
newest = max(headers, key=os.path.getmtime)
shutil.copy2(newest, os.path.join(outdir, "switchover.h.generated"))
