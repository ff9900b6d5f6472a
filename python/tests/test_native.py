"""Loading the library, its version, the declaration table and the struct mirrors."""
import ctypes
import os
import re
import shutil
import subprocess
import sys

import pytest

import switchover
from switchover import _native
from conftest import HEADER

PYTHON_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def header_functions():
    """name -> number of parameters, for every function the committed header declares."""
    text = open(HEADER).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    found = {}
    for m in re.finditer(r"\b(swo_\w+)\s*\(([^;{]*?)\)\s*;", text, flags=re.S):
        params = m.group(2).strip()
        found[m.group(1)] = 0 if params in ("", "void") else params.count(",") + 1
    return found


def cargo_version():
    """The version as declared in its one place, Cargo.toml's [package] table."""
    cargo_toml = os.path.join(os.path.dirname(HEADER), "..", "Cargo.toml")
    text = open(cargo_toml).read()
    return re.search(r'^\[package\][^\[]*?^version = "([^"]+)"', text, flags=re.M | re.S).group(1)


def test_the_soname_everywhere_is_the_one_the_version_gives():
    """The SONAME is libswitchover.so.<major of Cargo.toml's version> (build.rs and meson.build
    derive it; README §ABI): the binding's, the built library's, and every spelling of it in
    the docs, scripts and integrations agree."""
    major = cargo_version().split(".")[0]
    assert _native.SONAME == f"libswitchover.so.{major}"
    dynamic = subprocess.run(["readelf", "-d", switchover.library_path],
                             capture_output=True, text=True, check=True).stdout
    assert f"Library soname: [{_native.SONAME}]" in dynamic
    root = os.path.join(os.path.dirname(HEADER), "..")
    spelled = []
    for top in ("README.md", "docs", "scripts", "integrations", "abi", "python/switchover"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                path = os.path.join(d, f)
                try:
                    text = open(path, encoding="utf-8").read()
                except (UnicodeDecodeError, IsADirectoryError):
                    continue
                spelled += [(os.path.relpath(path, root), m)
                            for m in re.findall(r"libswitchover\.so\.\d+", text)]
    assert spelled, "the docs name the SONAME somewhere"
    assert [s for s in spelled if s[1] != _native.SONAME] == []


def test_library_version_is_checked_and_exposed():
    assert switchover.library_version == cargo_version() == "0.2.0"
    assert switchover.__version__ == switchover.library_version
    assert os.path.exists(switchover.library_path)


def test_every_header_function_is_declared_with_its_arity():
    declared = header_functions()
    assert "swo_query_pending" in declared and declared["swo_query_pending"] == 3
    missing = sorted(set(declared) - set(_native.FUNCTIONS))
    assert not missing, f"add these to switchover/_native.py FUNCTIONS: {missing}"
    wrong = {name: (n, len(_native.FUNCTIONS[name][1]))
             for name, n in declared.items() if len(_native.FUNCTIONS[name][1]) != n}
    assert not wrong, f"argument counts differ (header, binding): {wrong}"


def test_every_exported_function_gets_argtypes_and_restype():
    for name, (restype, argtypes) in _native.FUNCTIONS.items():
        if not switchover.has(name):
            continue
        fn = getattr(_native.lib, name)
        assert fn.argtypes == argtypes, name
        assert fn.restype == restype, name


def test_a_function_missing_from_the_library_raises_attribute_error_on_use(monkeypatch):
    monkeypatch.setitem(_native.FUNCTIONS, "swo_not_in_this_build", (ctypes.c_uint32, []))
    assert not switchover.has("swo_not_in_this_build")
    with pytest.raises(AttributeError, match="swo_not_in_this_build is missing from .*predates"):
        _native.lib.swo_not_in_this_build()


def test_an_undeclared_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="not a switchover C function"):
        _native.lib.swo_made_up
    assert not switchover.has("printf")


def test_struct_mirrors_have_the_c_layout():
    ptr = ctypes.sizeof(ctypes.c_void_p)
    assert ctypes.sizeof(switchover.SwoPending) == 32
    assert [getattr(switchover.SwoPending, f).offset for f in
            ("precopy_bytes", "stopcopy_bytes", "postcopy_bytes", "total_bytes")] == [0, 8, 16, 24]
    assert ctypes.sizeof(switchover.SwoHandlerOps) == 8 + 2 * ptr
    assert switchover.SwoHandlerOps.save_query_pending.offset == 8
    assert ctypes.sizeof(switchover.SwoVmmOps) == 8 + 3 * ptr
    # struct_size, action, flags, reserved (4 bytes each), SwoPending, threshold, pass; then
    # the 0.2 policy block: reason, reserved_policy (4 bytes each).
    assert ctypes.sizeof(switchover.SwoStep) == 4 * 4 + 32 + 8 + 8 + 4 + 4
    assert switchover.SwoStep.pending.offset == 16
    assert switchover.SwoStep.pass_.offset == 56
    assert switchover.SwoStep.reason.offset == 64


def test_constants_match_the_header():
    text = open(HEADER).read()
    defines = {m.group(1): m.group(2) for m in
               re.finditer(r"#define (SWO_\w+) (\(?[0-9][^\n]*)", text)}

    def value(name):
        return eval(defines[name], {})  # "(1 << 0)" and plain numbers

    for status in switchover.Status:
        assert value(status.c_name) == status, status
    for flag in (switchover.HandlerFlag.EXACT_NEEDS_STOPPED_VM, switchover.HandlerFlag.NO_POSTCOPY):
        assert value("SWO_HANDLER_" + flag.name) == flag
    for st in switchover.MigrationStatus:
        assert value("SWO_STATUS_" + st.name) == st
    for action in switchover.Action:
        assert value("SWO_ACTION_" + action.name) == action



@pytest.mark.parametrize("enum, prefix", [
    (switchover.Status, "SWO_"),                     # SWO_OK, SWO_ERR_*
    (switchover.MigrationStatus, "SWO_STATUS_"),
    (switchover.Action, "SWO_ACTION_"),
    (switchover.Reason, "SWO_REASON_"),
    (switchover.PolicyAction, "SWO_POLICY_"),
    (switchover.VfioState, "SWO_VFIO_STATE_"),
    (switchover.HandlerFlag, "SWO_HANDLER_"),
])
def test_each_python_table_is_the_headers_both_ways(enum, prefix):
    """Issue 17 item 2: Python's copy of each ABI table equals the header's: every member has
    its #define with its number, and every #define of the prefix is a member (a constant the
    library adds and this binding lacks fails here)."""
    text = open(HEADER).read()
    header = {m.group(1): eval(m.group(2), {}) for m in
              re.finditer(r"#define (SWO_\w+) (\(?[0-9][^\n]*)", text)}
    if enum is switchover.Status:
        header = {k: v for k, v in header.items() if k == "SWO_OK" or k.startswith("SWO_ERR_")}
    else:
        header = {k: v for k, v in header.items() if k.startswith(prefix)}
    mine = {prefix + m.name: int(m) for m in enum
            if not (enum is switchover.HandlerFlag and m == 0)}
    assert header and mine == header

def _run_python(code, env_update, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("SWITCHOVER_LIB", "PYTHONPATH")}
    # pkg-config sees only what a test puts in PKG_CONFIG_PATH, not the machine's .pc files.
    env.update({"PKG_CONFIG_LIBDIR": str(cwd / "no-system-pc"), "PKG_CONFIG_PATH": ""})
    env.update(env_update)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_switchover_lib_when_set_is_the_only_place_looked_at(tmp_path):
    bad = str(tmp_path / "nowhere" / "libswitchover.so")
    r = _run_python("import switchover", {"PYTHONPATH": PYTHON_DIR, "SWITCHOVER_LIB": bad},
                    tmp_path)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and bad in r.stderr and "SWITCHOVER_LIB" in r.stderr


def test_an_installed_library_is_found_through_pkg_config_before_the_build_tree(tmp_path):
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config is not installed")
    # A prefix as `meson install --prefix P` leaves it: P/lib/<SONAME> and
    # P/lib/pkgconfig/switchover.pc naming libdir=P/lib.
    prefix = tmp_path / "prefix"
    (prefix / "lib" / "pkgconfig").mkdir(parents=True)
    shutil.copy2(switchover.library_path, prefix / "lib" / _native.SONAME)
    (prefix / "lib" / "pkgconfig" / "switchover.pc").write_text(
        f"prefix={prefix}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n"
        "Name: switchover\nDescription: test\nVersion: 0.1.0\n"
        "Libs: -L${libdir} -lswitchover\nCflags: -I${includedir}\n")
    r = _run_python("import switchover; print(switchover.library_path)",
                    {"PYTHONPATH": PYTHON_DIR, "PKG_CONFIG_PATH": str(prefix / "lib" / "pkgconfig")},
                    tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(prefix / "lib" / _native.SONAME)


def test_without_the_library_importing_says_how_to_get_it_in_one_line(tmp_path):
    # A copy of the package with no build tree beside it, no SWITCHOVER_LIB, no .pc file.
    shutil.copytree(os.path.join(PYTHON_DIR, "switchover"), tmp_path / "pkg" / "switchover",
                    ignore=shutil.ignore_patterns("__pycache__"))
    r = _run_python("import switchover", {"PYTHONPATH": str(tmp_path / "pkg")}, tmp_path)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: libswitchover not found: build it")
    assert "SWITCHOVER_LIB" in last and "pkg-config" in last


def test_without_env_or_copy_the_meson_build_dir_is_used(tmp_path):
    build_lib = os.path.normpath(os.path.join(PYTHON_DIR, "..", "build", "libswitchover.so"))
    if not os.path.exists(build_lib):
        pytest.skip("no meson build in ./build (run through `meson test` or scripts/test.sh)")
    r = _run_python("import switchover; print(switchover.library_path)",
                    {"PYTHONPATH": PYTHON_DIR}, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == build_lib
