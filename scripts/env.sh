# Sourced by scripts/test.sh and scripts/demo.sh: makes sure the tools a fresh machine lacks
# (meson, ninja, pytest, jsonschema, matplotlib, all from PyPI) are there and on PATH.
# The Python that runs them is the first python3 on PATH; where that one refuses installs
# (Debian's "externally managed" system Python), a virtual environment in .venv is used.
REQUIREMENTS=("meson>=1.1" ninja pytest jsonschema matplotlib qemu.qmp)
[ -x .venv/bin/python3 ] && . .venv/bin/activate
add_script_dirs() {
  local user_base
  # `site --user-base` exits 1 where user site-packages are off (in a venv): not an error.
  user_base="$(python3 -m site --user-base 2>/dev/null || true)"
  [ -n "$user_base" ] && PATH="$user_base/bin:$PATH"
  PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  export PATH
}
add_script_dirs
need=()
python3 -c 'import mesonbuild' 2>/dev/null || need+=("meson>=1.1")
command -v ninja >/dev/null 2>&1 || need+=("ninja")
python3 -c 'import pytest' 2>/dev/null || need+=("pytest")
python3 -c 'import jsonschema' 2>/dev/null || need+=("jsonschema")
python3 -c 'import matplotlib' 2>/dev/null || need+=("matplotlib")
python3 -c 'import qemu.qmp' 2>/dev/null || need+=("qemu.qmp")
if [ ${#need[@]} -gt 0 ]; then
  echo "installing from PyPI: ${need[*]}"
  if ! python3 -m pip install --quiet --disable-pip-version-check "${need[@]}"; then
    echo "this Python refuses installs: using a virtual environment in .venv"
    if ! python3 -m venv .venv; then
      # Debian's Python needs python3-venv for ensurepip; a half-made .venv is cleared.
      if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      fi
      python3 -m venv --clear .venv
    fi
    . .venv/bin/activate
    python3 -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
    add_script_dirs
  fi
fi
command -v pkg-config >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && { apt-get update -qq && apt-get install -y -qq pkg-config >/dev/null; } || true; }
MESON="python3 -m mesonbuild.mesonmain"
BUILD_DIR="${BUILD_DIR:-build}"
setup_build() {
  if [ -f "$BUILD_DIR/build.ninja" ]; then
    $MESON setup --reconfigure "$BUILD_DIR" >/dev/null
  else
    $MESON setup "$BUILD_DIR"
  fi
}
