#!/usr/bin/env python3
"""Shows that the ABI baseline check (scripts/check-abi-baseline.sh) catches what it must:

1. an incompatible change: a copy of the library built with two fields of SwoAdvice swapped
   (`best_remaining_bytes` <-> `recommended_downtime_ms`, same types: only the order moves)
   and `swo_set_vm_running(s, bool)` taking a `uint32_t` instead. abidiff against the
   committed baseline must fail and name both;
2. an unrecorded addition: the real library against a baseline from before
   `swo_vfio_state_name` existed (that function cut out of the committed baseline) must fail
   too, as an addition (abidiff exit 4, not 8), telling to regenerate the baseline.

usage: check-abi-break.py BUILD_DIR   (the meson build dir: its libswitchover.so is the real
library; the changed copy is built under BUILD_DIR/abi-break, with its own cargo target dir
that later runs reuse). Exit 77 (skipped) when check-abi-baseline.sh skips.
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(ROOT, "scripts", "check-abi-baseline.sh")
BASELINE = os.path.join(ROOT, "abi", "libswitchover.abi")
build_dir = os.path.abspath(sys.argv[1])
work = os.path.join(build_dir, "abi-break")
failures = []


def diff(old_abi, lib):
    r = subprocess.run([CHECK, "--diff", old_abi, lib], capture_output=True, text=True)
    if r.returncode == 77:
        print(r.stderr)
        sys.exit(77)
    return r.returncode, r.stdout + r.stderr


def replace_once(path, old, new):
    text = open(path).read()
    if text.count(old) != 1:
        sys.exit(f"{path}: expected one '{old[:60]}...' to plant the break; the source moved, "
                 "update this test")
    open(path, "w").write(text.replace(old, new))


def changed_copy():
    """The library's sources copied under `work`, with the planted break; returns the .so."""
    src = os.path.join(work, "src-copy")
    if os.path.exists(src):
        shutil.rmtree(src)
    os.makedirs(src)
    for name in ("Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml"):
        shutil.copy2(os.path.join(ROOT, name), src)
    for name in ("src", "include", "abi"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(src, name))
    engine = os.path.join(src, "src", "ffi", "engine.rs")
    text = open(engine).read()
    advice = re.search(r"pub struct SwoAdvice \{.*?\n\}", text, flags=re.S).group(0)
    best = re.search(r"(\n    ///[^\n]*)+\n    pub best_remaining_bytes: u64,", advice).group(0)
    rec = re.search(r"(\n    ///[^\n]*)+\n    pub recommended_downtime_ms: u64,", advice).group(0)
    swapped = advice.replace(best, "\0BEST\0").replace(rec, best).replace("\0BEST\0", rec)
    assert swapped != advice
    open(engine, "w").write(text.replace(advice, swapped))
    replace_once(engine,
                 "pub unsafe extern \"C\" fn swo_set_vm_running(s: *mut SwoSession, running: bool)",
                 "pub unsafe extern \"C\" fn swo_set_vm_running(s: *mut SwoSession, running: u32)")
    replace_once(engine, "sess.set_vm_running(running);", "sess.set_vm_running(running != 0);")
    target = os.path.join(work, "cargo-target")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    env.pop("SWO_UPDATE_HEADER", None)
    subprocess.run(["cargo", "build", "--release", "--lib", "--manifest-path",
                    os.path.join(src, "Cargo.toml")], check=True, env=env)
    return os.path.join(target, "release", "libswitchover.so")


# 2. first: cheap, no build.
real_lib = os.path.join(build_dir, "libswitchover.so")
rc, report = diff(BASELINE, real_lib)
if rc != 0:
    sys.exit(f"the real library does not match the baseline (exit {rc}); fix that first:\n"
             f"{report}")
os.makedirs(work, exist_ok=True)
older = os.path.join(work, "baseline-before-swo_vfio_state_name.abi")
text = open(BASELINE).read()
cut = re.sub(r"\n *<elf-symbol name='swo_vfio_state_name'[^\n]*", "", text)
cut = re.sub(r"\n *<function-decl name='swo_vfio_state_name'.*?</function-decl>", "", cut,
             flags=re.S)
assert cut.count("swo_vfio_state_name") == 0 and cut != text
open(older, "w").write(cut)
rc, report = diff(older, real_lib)
print(f"--- real library vs a baseline without swo_vfio_state_name: exit {rc}\n{report}")
if rc == 0 or rc & 8:
    failures.append(f"an unrecorded addition gave exit {rc}, expected a failure that is not "
                    "an incompatible change (4)")
if "swo_vfio_state_name" not in report or "--update" not in report or "INCOMPATIBLE" in report:
    failures.append("the report does not name the added function and the command to record it")

# 1. the changed copy.
broken = changed_copy()
rc, report = diff(BASELINE, broken)
print(f"--- changed copy (SwoAdvice fields swapped, swo_set_vm_running(u32)): exit {rc}\n"
      f"{report}")
if rc == 0:
    failures.append("abidiff accepted a copy with SwoAdvice's fields reordered and "
                    "swo_set_vm_running's signature changed")
for needle in ("INCOMPATIBLE", "SwoAdvice", "best_remaining_bytes", "swo_set_vm_running"):
    if needle not in report:
        failures.append(f"the report does not mention {needle}")

if failures:
    sys.exit("FAIL:\n  " + "\n  ".join(failures))
print("the ABI check fails on the planted incompatible change and on an unrecorded addition")
