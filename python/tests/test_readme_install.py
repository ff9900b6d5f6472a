"""A newcomer's first hour (issue 16): the README's C install block and Python install block
run as written, the first C snippet is a complete file built by the tests, the package is
pip-installable with its `switchover-sim` command, and a command run before the library is
built says so in one line."""
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PYPROJECT = ROOT / "python" / "pyproject.toml"


def _build_dir() -> Path:
    lib = os.environ.get("SWITCHOVER_LIB")
    if not lib or not Path(lib).exists():
        pytest.skip("needs the meson build (run through scripts/test.sh)")
    return Path(lib).resolve().parent


def _sh_block(marker: str) -> str:
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", README, re.S) if marker in b]
    assert len(blocks) == 1, f"one ```sh block with {marker!r} in the README"
    return blocks[0]


def _checkout(where: Path, build: Path) -> Path:
    """A checkout as a reader has it after scripts/test.sh: the sources, .venv and build/
    (symlinks into this one), at a fixed path so cargo reuses its work between runs."""
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name in (".git", "out", "target") or (entry.name.startswith("build")
                                                          and entry.is_dir()):
            continue
        (where / entry.name).symlink_to(entry)
    (where / "build").symlink_to(build)
    return where


def _reader_env(home: Path) -> dict:
    """A reader's shell: no test-harness paths to the library or to .pc files."""
    drop = ("LD_LIBRARY_PATH", "SWITCHOVER_LIB", "PYTHONPATH", "PKG_CONFIG_PATH",
            "PKG_CONFIG_LIBDIR", "VIRTUAL_ENV", "ASAN_OPTIONS", "UBSAN_OPTIONS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    home.mkdir(parents=True, exist_ok=True)
    # A fresh HOME (the block installs under $HOME), with the reader's Rust toolchain.
    real_home = Path(os.environ.get("HOME", "/root"))
    env.setdefault("RUSTUP_HOME", str(real_home / ".rustup"))
    env.setdefault("CARGO_HOME", str(real_home / ".cargo"))
    env["HOME"] = str(home)
    return env


def test_the_first_c_snippet_is_examples_first_handler_c_in_full():
    first = re.findall(r"```c\n(.*?)```", README, re.S)[0]
    assert first == (ROOT / "examples" / "first_handler.c").read_text()
    assert "int main(void)" in first and "#include <switchover.h>" in first


def test_readme_c_install_block_runs_as_written(tmp_path):
    build = _build_dir()
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("no .venv (scripts/test.sh makes it)")
    if shutil.which("pkg-config") is None:
        pytest.fail("pkg-config is missing (scripts/env.sh installs it as root)")
    block = _sh_block("meson install")
    checkout = _checkout(build / "readme-c-install" / "checkout", build)
    env = _reader_env(tmp_path / "home")
    # The one liberty: cargo's target dir kept between test runs (the block's own build dir
    # is made afresh each time).
    env["SWO_CARGO_TARGET_DIR"] = str(build / "readme-c-install" / "cargo-target")
    done = subprocess.run(["bash", "-e"], input=block, cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    # 64 MiB of precopy + the 1910 MiB the exact query reads: examples/first_handler.c.
    assert done.stdout.splitlines()[-1] == (
        "remaining 2069889024 bytes: precopy 67108864, stop-copy 2002780160")
    prefix = tmp_path / "home" / "opt" / "switchover"
    assert (prefix / "lib" / "pkgconfig" / "switchover.pc").exists()
    major = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"].split(".")[0]
    assert (prefix / "lib" / f"libswitchover.so.{major}").exists()
    assert (prefix / "include" / "switchover.h").exists()
    # It ran without LD_LIBRARY_PATH: the rpath came from pkg-config --libs.
    dyn = subprocess.run(["readelf", "-d", str(checkout / "first_handler")],
                         capture_output=True, text=True).stdout
    assert f"[{prefix}/lib]" in dyn, dyn
    shutil.rmtree(checkout / "build-install", ignore_errors=True)


def test_readme_python_install_block_runs_as_written(tmp_path):
    build = _build_dir()
    block = _sh_block("pip install")
    checkout = _checkout(tmp_path / "checkout", build)
    env = _reader_env(tmp_path / "home")
    # pip's cache of the real home, so the block's downloads (setuptools, matplotlib) are
    # fetched from PyPI at most once per machine.
    env["PIP_CACHE_DIR"] = os.environ.get(
        "PIP_CACHE_DIR", str(Path(os.environ.get("HOME", "/root")) / ".cache" / "pip"))
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(["bash", "-e"], input=block, cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "scenario vgpu (seed" in done.stdout
    venv = tmp_path / "home" / "venvs" / "switchover"
    assert (venv / "bin" / "switchover-sim").exists()
    site = subprocess.run([str(venv / "bin" / "python3"), "-c",
                           "import switchover, os; print(switchover.__file__)"],
                          env={**env, "SWITCHOVER_LIB": str(build / "libswitchover.so")},
                          capture_output=True, text=True, cwd=tmp_path)
    assert site.returncode == 0, site.stderr
    assert str(venv) in site.stdout, "the installed copy, not the checkout's"


def test_pyproject_commands_point_at_callables():
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert "switchover-sim" in scripts
    import importlib
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), name


def _package_without_library(tmp_path: Path) -> dict:
    shutil.copytree(ROOT / "python" / "switchover", tmp_path / "pkg" / "switchover",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("SWITCHOVER_LIB", "PYTHONPATH")}
    env.update(PYTHONPATH=str(tmp_path / "pkg"), PKG_CONFIG_PATH="",
               PKG_CONFIG_LIBDIR=str(tmp_path / "no-pc"))
    return env


def test_the_simulator_without_the_library_says_how_to_build_it_in_one_line(tmp_path):
    env = _package_without_library(tmp_path)
    done = subprocess.run([sys.executable, "-m", "switchover.sim",
                           str(ROOT / "scenarios" / "vgpu.toml")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 4
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: libswitchover not found: build it with scripts/demo.sh")


def test_the_switchover_sim_command_without_the_library_also_says_it_in_one_line(tmp_path):
    env = _package_without_library(tmp_path)
    script = tmp_path / "bin" / "switchover-sim"   # what pip writes for [project.scripts]
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport sys\n"
                      "from switchover.sim.__main__ import console_main\n"
                      "sys.exit(console_main())\n")
    script.chmod(0o755)
    done = subprocess.run([str(script), "x.toml"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 4
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_library_user_still_gets_an_import_error(tmp_path):
    env = _package_without_library(tmp_path)
    done = subprocess.run([sys.executable, "-c", "import switchover"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ImportError: libswitchover not found" in done.stderr


def test_the_python_package_version_is_the_libraries():
    """The version is declared once, in Cargo.toml; pyproject.toml does not spell it but reads
    switchover/_version.py (a dynamic version), whose one literal must agree with Cargo.toml."""
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    project = tomllib.loads(PYPROJECT.read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "switchover._version.__version__"
    namespace = {}
    exec((ROOT / "python" / "switchover" / "_version.py").read_text(), namespace)
    assert namespace["__version__"] == cargo
