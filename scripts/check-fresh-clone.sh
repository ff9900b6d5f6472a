#!/usr/bin/env bash
# A newcomer's first hour, rehearsed (issue 16): a fresh clone of this checkout's HEAD, run
# with a Python that has none of the tools (a bare virtual environment standing in for the
# user's interpreter, first on PATH), must
#   - pass the README's two commands, scripts/demo.sh and scripts/test.sh;
#   - leave that interpreter's `pip freeze --all` unchanged (everything went into .venv);
#   - leave `git status` clean (.venv, build/, out/ are ignored);
#   - be quiet on a second run: no meson configure dump, no cargo Compiling/Finished lines
#     (and show them with -v).
# usage: scripts/check-fresh-clone.sh [WORKDIR]   (default: a temporary directory, removed)
#        scripts/check-fresh-clone.sh --in-place FREEZE_BEFORE
#            CI's form: CI's checkout is itself a fresh clone on which .ci/run has already run
#            scripts/test.sh, after saving the interpreter's `pip freeze --all` in
#            FREEZE_BEFORE. Checks the rest where it stands, without building it all again:
#            demo.sh quiet (.venv and build/ exist now), -v shows the tools, that freeze
#            unchanged, the tree clean.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
fail() { echo "check-fresh-clone: FAIL: $*" >&2; exit 1; }

if [ "${1:-}" = "--in-place" ]; then
  before="${2:?usage: $0 --in-place FREEZE_BEFORE}"
  cd "$src"
  log="$(mktemp "${TMPDIR:-/tmp}/switchover-demo.XXXXXX")"
  echo "== scripts/demo.sh after scripts/test.sh (must be quiet)"
  scripts/demo.sh --quiet > "$log" 2>&1 || { cat "$log"; fail "demo failed"; }
  cat "$log"
  if grep -E "The Meson build system|Compiling |Finished |Build targets in project|installing into .venv|setting up .venv" "$log"; then
    fail "a run after the first printed tool output (above)"
  fi
  echo "== scripts/demo.sh -v (shows the tools)"
  scripts/demo.sh -v --quiet > "$log" 2>&1 || { cat "$log"; fail "demo -v failed"; }
  grep -q "The Meson build system" "$log" || fail "-v did not show meson's output"
  rm -f "$log"
  python3 -m pip freeze --all 2>/dev/null | diff -u "$before" - || fail "the interpreter that ran .ci/run changed (pip freeze above)"
  echo "pip freeze of the interpreter that ran .ci/run: unchanged"
  [ -x .venv/bin/python3 ] || fail "no .venv"
  [ -z "$(git status --porcelain)" ] || { git status --porcelain; fail "the checkout is not clean"; }
  echo "check-fresh-clone: OK in place (quiet demo, -v, pip freeze unchanged, clean tree)"
  exit 0
fi

work="${1:-}"
if [ -z "$work" ]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/switchover-fresh.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi

echo "== fresh clone of $(git -C "$src" rev-parse --short HEAD) in $work/clone"
git clone --quiet "$src" "$work/clone"
# The user's interpreter: a bare venv (pip and setuptools only), first on PATH.
python3 -m venv "$work/user-python"
userpy="$work/user-python/bin/python3"
"$userpy" -m pip freeze --all > "$work/freeze-before.txt"
export PATH="$work/user-python/bin:$PATH"
unset VIRTUAL_ENV PYTHONPATH SWITCHOVER_LIB
"$userpy" -c 'import mesonbuild' 2>/dev/null && fail "the stand-in interpreter already has meson"

cd "$work/clone"
echo "== scripts/demo.sh (first run)"
scripts/demo.sh --quiet 2>&1 | tee "$work/demo1.log"
echo "== scripts/test.sh"
scripts/test.sh 2>&1 | tee "$work/test.log" | tail -5
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "scripts/test.sh failed (see $work/test.log)"
echo "== scripts/demo.sh (second run: must be quiet)"
scripts/demo.sh --quiet > "$work/demo2.log" 2>&1 || fail "second demo run failed"
cat "$work/demo2.log"
if grep -E "The Meson build system|Compiling |Finished |Build targets in project|installing into .venv|setting up .venv" "$work/demo2.log"; then
  fail "the second run printed tool output (above)"
fi
echo "== scripts/demo.sh -v (shows the tools)"
scripts/demo.sh -v --quiet > "$work/demo-v.log" 2>&1 || fail "demo -v failed"
grep -q "The Meson build system" "$work/demo-v.log" || fail "-v did not show meson's output"

"$userpy" -m pip freeze --all > "$work/freeze-after.txt"
if ! diff -u "$work/freeze-before.txt" "$work/freeze-after.txt"; then
  fail "the user's interpreter changed (pip freeze above)"
fi
echo "pip freeze of the user's interpreter: unchanged ($(wc -l < "$work/freeze-after.txt") packages)"
[ -x .venv/bin/python3 ] || fail "no .venv"
[ -z "$(git status --porcelain)" ] || { git status --porcelain; fail "the clone is not clean"; }
echo "check-fresh-clone: OK (demo, tests, quiet second run, -v, pip freeze unchanged, clean tree)"
