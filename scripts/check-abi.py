#!/usr/bin/env python3
"""Checks the shared library's ABI promises: SONAME libswitchover.so.0, and every exported
(defined, dynamic) symbol named swo_*."""
import subprocess
import sys

lib = sys.argv[1]
dyn = subprocess.run(["readelf", "-d", lib], check=True, capture_output=True, text=True).stdout
if "Library soname: [libswitchover.so.0]" not in dyn:
    sys.exit(f"{lib}: SONAME is not libswitchover.so.0:\n{dyn}")
syms = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
names = [line.split()[-1] for line in syms.splitlines() if line.strip()]
# Version-definition symbols (type 'A') are not functions or data.
bad = [line for line in syms.splitlines() if line.split()[-2] != "A" and not line.split()[-1].startswith("swo_")]
exported = [n for n in names if n.startswith("swo_")]
if bad:
    sys.exit("symbols exported without the swo_ prefix:\n" + "\n".join(bad))
if "swo_session_new" not in exported:
    sys.exit("swo_session_new is not exported")
print(f"SONAME libswitchover.so.0; {len(exported)} swo_* symbols exported, nothing else")
