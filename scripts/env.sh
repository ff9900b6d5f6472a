# Sourced by scripts/test.sh and scripts/demo.sh (from the repository root).
#
# Python tools (meson, ninja, pytest, jsonschema, matplotlib, ...) live in a project-local
# virtual environment, .venv (git-ignored), made on the first run and reused: nothing is
# installed into the Python you run these scripts with. What goes into it is one list,
# python/pyproject.toml: this package (editable, so `switchover-sim` is in .venv/bin) with
# every extra declared there. .venv is refreshed when that file changes.
#
# Quiet by default: tool output (pip, meson's configure dump, cargo) is shown only when a step
# fails, or always with SWO_VERBOSE=1 (the scripts' -v).
SWO_VERBOSE="${SWO_VERBOSE:-0}"
export SWO_VERBOSE
SWO_PYPROJECT=python/pyproject.toml
SWO_LOG_DIR="${TMPDIR:-/tmp}"

# quietly WHAT CMD...: runs CMD; without SWO_VERBOSE its output is kept and printed only if
# it fails (with WHAT, so the reader knows which step it was).
quietly() {
  local what=$1 log rc=0
  shift
  if [ "$SWO_VERBOSE" = 1 ]; then
    "$@"
    return
  fi
  log="$(mktemp "$SWO_LOG_DIR/switchover.XXXXXX")"
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "error: $what failed (exit $rc):" >&2
    cat "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}

swo_make_venv() {
  local base=python3
  # Never the caller's own virtual environment: .venv is made from the interpreter behind it.
  [ -n "${VIRTUAL_ENV:-}" ] && [ -x "${VIRTUAL_ENV}/bin/python3" ] && base="$(
    "${VIRTUAL_ENV}/bin/python3" -c 'import sys; print(sys._base_executable)')"
  echo "setting up .venv (once): a project-local Python environment from $($base -c 'import sys; print(sys.executable)')"
  if ! "$base" -m venv --clear .venv >/dev/null 2>&1; then
    # Debian's python3 lacks ensurepip without python3-venv.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing python3-venv with apt-get (Debian's python3 needs it for venv)"
      quietly "apt-get install python3-venv" sh -c \
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv'
    fi
    if ! "$base" -m venv --clear .venv; then
      rm -rf .venv
      echo "error: cannot make a virtual environment with $base -m venv; on Debian/Ubuntu:" \
        "apt-get install python3-venv" >&2
      return 1
    fi
  fi
}

# The stamp: a digest of pyproject.toml, written once its install succeeded.
swo_stamp() { python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$SWO_PYPROJECT"; }

swo_setup_venv() {
  if [ ! -x .venv/bin/python3 ] || ! .venv/bin/python3 -c '' 2>/dev/null; then
    swo_make_venv || return 1
  fi
  local want
  want="$(swo_stamp)"
  [ -f .venv/.switchover-installed ] && [ "$(cat .venv/.switchover-installed)" = "$want" ] && return 0
  local extras
  extras="$(.venv/bin/python3 -c 'import sys, tomllib
print(",".join(tomllib.load(open(sys.argv[1], "rb"))["project"].get("optional-dependencies", {})))' "$SWO_PYPROJECT")"
  echo "installing into .venv from PyPI: python/pyproject.toml [${extras}] (once; again when that file changes)"
  quietly "pip install into .venv" .venv/bin/python3 -m pip install --disable-pip-version-check \
    --quiet -e "./python[${extras}]" || return 1
  echo "$want" > .venv/.switchover-installed
}

swo_setup_venv || exit 1
# shellcheck disable=SC1091
. .venv/bin/activate

if ! command -v pkg-config >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing pkg-config with apt-get (the install test builds a program with it)"
  quietly "apt-get install pkg-config" sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config' || true
fi

MESON="python3 -m mesonbuild.mesonmain"
BUILD_DIR="${BUILD_DIR:-build}"
setup_build() {
  if [ -f "$BUILD_DIR/build.ninja" ]; then
    quietly "meson setup --reconfigure" $MESON setup --reconfigure "$BUILD_DIR"
  else
    echo "configuring $BUILD_DIR/ with meson (once)"
    quietly "meson setup" $MESON setup "$BUILD_DIR"
  fi
}
