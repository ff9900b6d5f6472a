# Sourced by scripts/test.sh and scripts/demo.sh: makes sure the tools a fresh machine lacks
# (meson, ninja, pytest, jsonschema, matplotlib, all from PyPI) are there and on PATH.
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="$PY_SCRIPTS:$PATH"
need=()
python3 -c 'import mesonbuild' 2>/dev/null || need+=("meson>=1.1")
command -v ninja >/dev/null 2>&1 || need+=("ninja")
python3 -c 'import pytest' 2>/dev/null || need+=("pytest")
python3 -c 'import jsonschema' 2>/dev/null || need+=("jsonschema")
python3 -c 'import matplotlib' 2>/dev/null || need+=("matplotlib")
if [ ${#need[@]} -gt 0 ]; then
  echo "installing from PyPI: ${need[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${need[@]}"
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
