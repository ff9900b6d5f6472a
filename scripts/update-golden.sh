#!/usr/bin/env bash
# Regenerates c-tests/golden/*.json and *.txt from the library as built now. This is not a
# test and never says "passed": it writes the files, shows the diff, and exits 3 when it
# wrote them (1 when the build or a check inside the program failed). Review the diff figure
# by figure against c-tests/golden/key.toml (the hand-worked figures), fix the key or the
# code, and run scripts/test.sh: the golden comparison and the key test are the tests.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
setup_build >/dev/null
$MESON compile -C "$BUILD_DIR" c-tests/test_report || exit 1
unset SWO_GOLDEN_UPDATE
LD_LIBRARY_PATH="$BUILD_DIR" "$BUILD_DIR/c-tests/test_report" --write-golden "$PWD/c-tests/golden"
rc=$?
if [ "$rc" -ne 3 ]; then
  echo "update-golden: test_report --write-golden exited $rc (expected 3): files may be partial" >&2
  exit 1
fi
git --no-pager diff --stat -- c-tests/golden
echo "update-golden: files rewritten; review 'git diff c-tests/golden' against c-tests/golden/key.toml"
exit 3
