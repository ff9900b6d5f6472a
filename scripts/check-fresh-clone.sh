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
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-}"
if [ -z "$work" ]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/switchover-fresh.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
fail() { echo "check-fresh-clone: FAIL: $*" >&2; exit 1; }

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
