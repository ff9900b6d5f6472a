"""The ctypes mirrors have the C layout of the committed header, field by field: a C program
compiled against include/switchover.h prints sizeof/offsetof, and the constants match."""
import ctypes
import os
import re
import shutil
import subprocess

import pytest

import switchover as so
from conftest import HEADER

MIRRORS = [so.SwoPending, so.SwoStep, so.SwoInfo, so.SwoAdvice, so.SwoHandlerOps,
           so.SwoVmmOps, so.SwoRamOps, so.SwoRamFigures, so.SwoVfioOps, so.SwoVfioSizes]


def c_member(py_name):
    return "pass" if py_name == "pass_" else py_name  # `pass` is a Python keyword


OUT_STRUCTS = [so.SwoStep, so.SwoInfo, so.SwoAdvice, so.SwoRamFigures, so.SwoVfioSizes]
#: sizeof of each out-struct's first versioned layout (0.2.0); the library refuses less.
FIRST_SIZES = {"SwoStep": 64, "SwoInfo": 104, "SwoAdvice": 40, "SwoRamFigures": 56,
               "SwoVfioSizes": 40}


def test_mirrors_have_the_sizes_the_c_declarations_imply():
    ptr = ctypes.sizeof(ctypes.c_void_p)
    # struct_size and 4-byte fields in pairs, then 8-byte fields: no padding anywhere on an
    # LP64 or ILP32 ABI with 8-byte u64.
    assert ctypes.sizeof(so.SwoInfo) >= 4 * 4 + 5 * 8 + 2 * 8 + 8 + 3 * 8 == 104
    assert so.SwoInfo.mbps.offset == 56 and so.SwoInfo.expected_downtime_ms.offset == 72
    assert ctypes.sizeof(so.SwoAdvice) >= 4 * 4 + 8 + 8 + 8 == 40
    assert so.SwoAdvice.recommended_downtime_ms.offset == 32
    assert ctypes.sizeof(so.SwoRamOps) == 8 + ptr
    assert ctypes.sizeof(so.SwoRamFigures) >= 8 + 6 * 8 == 56
    assert ctypes.sizeof(so.SwoVfioOps) == 8 + 2 * ptr
    assert ctypes.sizeof(so.SwoVfioSizes) >= 8 + 4 * 8 == 40
    assert ctypes.sizeof(so.SwoStep) >= 64


@pytest.mark.parametrize("mirror", OUT_STRUCTS, ids=lambda m: m.__name__)
def test_out_structs_keep_the_versioning_layout_rule(mirror):
    """DESIGN.md §ABI evolution, and the rule src/ffi/versioned.rs relies on: struct_size
    first; every field 4 or 8 bytes (a nested SwoPending counts as its four u64s), naturally
    aligned, right after the previous one (no implicit padding), never straddling an 8-byte
    slot; the size a multiple of 8 and at least the first versioned layout."""
    assert mirror._fields_[0] == ("struct_size", ctypes.c_uint32)
    end = 0
    for name, ctype in mirror._fields_:
        field = getattr(mirror, name)
        assert field.offset == end, f"{mirror.__name__}.{name}: padding before it"
        if ctype is so.SwoPending:
            assert field.offset % 8 == 0
        else:
            assert field.size in (4, 8), f"{mirror.__name__}.{name}"
            assert field.offset % field.size == 0
            assert field.offset // 8 == (field.offset + field.size - 1) // 8
        end = field.offset + field.size
    assert end == ctypes.sizeof(mirror) and end % 8 == 0
    assert ctypes.sizeof(mirror) >= FIRST_SIZES[mirror.__name__]


@pytest.mark.parametrize("mirror", OUT_STRUCTS, ids=lambda m: m.__name__)
def test_out_struct_mirrors_set_struct_size_when_made(mirror):
    assert mirror().struct_size == ctypes.sizeof(mirror)
    assert mirror(struct_size=8).struct_size == 8


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_mirrors_match_sizeof_and_offsetof_from_the_header(tmp_path):
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "switchover.h"',
             'int main(void) {']
    expected = []
    for mirror in MIRRORS:
        c = f"struct {mirror.__name__}"
        lines.append(f'  printf("{mirror.__name__} %zu\\n", sizeof({c}));')
        expected.append(f"{mirror.__name__} {ctypes.sizeof(mirror)}")
        for name, _type in mirror._fields_:
            lines.append(f'  printf("{mirror.__name__}.{c_member(name)} %zu\\n", '
                         f'offsetof({c}, {c_member(name)}));')
            expected.append(f"{mirror.__name__}.{c_member(name)} "
                            f"{getattr(mirror, name).offset}")
    lines += ["  return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    cc = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-I",
                         os.path.dirname(HEADER), str(src), "-o", str(exe)],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:-1] == expected


def header_struct_members():
    text = re.sub(r"/\*.*?\*/", "", open(HEADER).read(), flags=re.S)
    found = {}
    for m in re.finditer(r"typedef struct (Swo\w+) \{(.*?)\} \1;", text, flags=re.S):
        members = []
        for decl in m.group(2).split(";"):
            decl = decl.strip()
            if not decl:
                continue
            fnptr = re.search(r"\(\*(\w+)\)", decl)
            members.append(fnptr.group(1) if fnptr else decl.split()[-1])
        found[m.group(1)] = members
    return found


def test_every_c_struct_is_mirrored_with_all_its_members_in_order():
    members = header_struct_members()
    assert set(members) == {m.__name__ for m in MIRRORS}
    for mirror in MIRRORS:
        assert [c_member(n) for n, _ in mirror._fields_] == members[mirror.__name__]


def header_defines():
    text = open(HEADER).read()
    return {m.group(1): eval(m.group(2), {}) for m in
            re.finditer(r"#define (SWO_\w+) (\(?[0-9][^\n]*)", text)}


def test_exported_constants_equal_the_header_defines():
    defines = header_defines()
    prefixes = ("ACTION_", "STEP_", "STATUS_", "HANDLER_", "CHANNEL_", "INFO_", "ADVICE_")
    checked = 0
    for name, value in defines.items():
        short = name[len("SWO_"):]
        if short.startswith("VFIO_STATE_"):
            short = "VFIO_" + short[len("VFIO_STATE_"):]
        elif not short.startswith(prefixes):
            continue  # the status codes are switchover.Status (checked in test_native)
        assert getattr(so, short) == value, name
        assert short in so.__all__, name
        checked += 1
    assert checked == 5 + 2 + 10 + 2 + 2 + 2 + 3 + 8


def test_vfio_state_numbers_are_the_uapi_ones():
    # QEMU-BEHAVIOUR.md §VFIO: ERROR 0, STOP 1, RUNNING 2, STOP_COPY 3, RESUMING 4,
    # RUNNING_P2P 5, PRE_COPY 6, PRE_COPY_P2P 7.
    assert [so.VFIO_ERROR, so.VFIO_STOP, so.VFIO_RUNNING, so.VFIO_STOP_COPY, so.VFIO_RESUMING,
            so.VFIO_RUNNING_P2P, so.VFIO_PRE_COPY, so.VFIO_PRE_COPY_P2P] == list(range(8))
