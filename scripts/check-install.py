#!/usr/bin/env python3
"""`meson install` into a temporary DESTDIR must give what a packager expects: the header,
the library under its SONAME (+ the .so link) and .a, and a switchover.pc with which a C
program builds and runs. usage: check-install.py BUILD_DIR EXAMPLE.c SONAME (meson passes the
SONAME it derives from Cargo.toml's version, e.g. libswitchover.so.0)"""
import os
import subprocess
import sys
import tempfile

build, example, soname = sys.argv[1], sys.argv[2], sys.argv[3]
with tempfile.TemporaryDirectory() as dest:
    subprocess.run([sys.executable, "-m", "mesonbuild.mesonmain", "install", "-C", build,
                    "--destdir", dest, "--no-rebuild", "--quiet"], check=True)
    found = {os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs}
    found |= {os.path.relpath(os.path.join(d, x), dest) for d, xs, _ in os.walk(dest) for x in xs}
    def one(suffix):
        hits = [f for f in found if f.endswith(suffix)]
        if not hits:
            sys.exit(f"installed tree lacks {suffix}: {sorted(found)}")
        return os.path.join(dest, hits[0])
    one("include/switchover.h")
    so0 = one("/" + soname)
    link = one("/libswitchover.so")
    one("/libswitchover.a")
    pc = one("pkgconfig/switchover.pc")
    if os.path.realpath(link) != os.path.realpath(so0):
        sys.exit(f"libswitchover.so does not point to {soname}")
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), PKG_CONFIG_SYSROOT_DIR=dest)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "switchover"], env=env,
                           check=True, capture_output=True, text=True).stdout.split()
    exe = os.path.join(dest, "two_handlers")
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", example, "-o", exe, *flags],
                   check=True)
    libdir = os.path.dirname(so0)
    out = subprocess.run([exe], env=dict(os.environ, LD_LIBRARY_PATH=libdir), check=True,
                         capture_output=True, text=True).stdout
    if "remaining" not in out:
        sys.exit(f"the example built against the install printed:\n{out}")
    print(f"installed: header, {soname} + link, .a, switchover.pc; example built with {' '.join(flags)}")
