#!/usr/bin/env bash
# Mutation testing of the decision core with cargo-mutants (crates.io): each mutant is a small
# deliberate bug (a `<` turned `<=`, a function returning a default...); the tests must fail
# on it. The files are listed in .cargo/mutants.toml; mutants that cannot be caught because
# the code behaves the same are listed there and explained in docs/mutants.md.
#
#   scripts/mutants.sh --in-diff     only the mutants on lines the last commit touched
#                                    (git diff HEAD~1): the CI stage
#   scripts/mutants.sh [ARGS...]     the full run (hours on a small machine); ARGS go to
#                                    cargo mutants (e.g. --file src/stall.rs, --jobs 2)
#
# Bounds: MUTANTS_TIMEOUT seconds per mutant's tests (default 300), MUTANTS_BUILD_TIMEOUT per
# build (default 600), MUTANTS_CAP seconds for the whole in-diff run (default 900). When the
# cap stops the run, the mutants it did not reach are counted as NOT TESTED and the run fails
# unless MUTANTS_CAP_OK=1 (then it says so loudly and passes on what it tested).
# Exit: 0 every tested mutant was caught (or unviable); 1 a mutant was missed or timed out, or
# the cap was hit; 2 cargo-mutants could not run (install or baseline failed).
set -uo pipefail
cd "$(dirname "$0")/.."

VERSION=27.1.0
if [ "${1:-}" = "--in-diff" ] && git rev-parse -q --verify HEAD~1 >/dev/null; then
  # Before installing anything: does the last commit touch the decision core at all?
  if ! git diff --name-only HEAD~1 -- 'src/engine/*.rs' src/counters.rs src/pending.rs \
      'src/pending/*.rs' 'src/report/*.rs' src/params.rs 'src/params/*.rs' src/size.rs \
      src/stall.rs 'src/vfio/*.rs' | grep -q .; then
    echo "mutants: the last commit touches no file of the decision core: nothing to test"
    exit 0
  fi
fi
ROOT="${SWITCHOVER_CACHE:-$HOME/.cache/switchover}/cargo"
BIN="$ROOT/bin/cargo-mutants"
if ! "$BIN" mutants --version 2>/dev/null | grep -q " $VERSION\$"; then
  echo "mutants: installing cargo-mutants $VERSION into $ROOT (crates.io, cached)"
  cargo install cargo-mutants --locked --version "$VERSION" --root "$ROOT" || {
    echo "mutants: FAILED to install cargo-mutants from crates.io" >&2
    exit 2
  }
fi
export PATH="$ROOT/bin:$PATH"

OUT="${MUTANTS_OUT:-mutants.out}"
# The decision core. More `--file GLOB` arguments add files; `--file` alone cannot narrow this
# list (use `cargo mutants --file ...` directly for one file).
CORE=(--file 'src/engine/*.rs' --file src/counters.rs --file src/pending.rs
      --file 'src/pending/*.rs' --file 'src/report/*.rs' --file src/params.rs
      --file 'src/params/*.rs' --file src/size.rs --file src/stall.rs --file 'src/vfio/*.rs')
args=("${CORE[@]}" --no-shuffle --jobs "${MUTANTS_JOBS:-1}" --timeout "${MUTANTS_TIMEOUT:-300}"
      --build-timeout "${MUTANTS_BUILD_TIMEOUT:-600}" --output "$(dirname "$OUT")")
cap=0
if [ "${1:-}" = "--in-diff" ]; then
  shift
  diff="$(mktemp)"
  trap 'rm -f "$diff"' EXIT
  if ! git rev-parse -q --verify HEAD~1 >/dev/null; then
    echo "mutants: no previous commit; nothing to compare"
    exit 0
  fi
  git diff HEAD~1 -- >"$diff"
  args+=(--in-diff "$diff")
  cap="${MUTANTS_CAP:-900}"
  # How many mutants the diff gives, before spending anything on builds.
  n="$(cargo mutants --list "${args[@]}" "$@" 2>/dev/null | grep -c . || true)"
  echo "mutants: $n mutant(s) on the lines HEAD~1..HEAD touches in the decision core"
  if [ "$n" = 0 ]; then
    echo "mutants: nothing to test"
    exit 0
  fi
fi

start=$(date +%s)
if [ "$cap" -gt 0 ]; then
  # SIGINT lets cargo-mutants stop cleanly and write what it found so far.
  timeout --signal=INT --kill-after=120 "$cap" cargo mutants "${args[@]}" "$@"
else
  cargo mutants "${args[@]}" "$@"
fi
rc=$?
secs=$(($(date +%s) - start))

count() { local n=0; [ -f "$OUT/$1.txt" ] && n=$(grep -c . "$OUT/$1.txt"); echo "${n:-0}"; }
caught=$(count caught); missed=$(count missed); timeouts=$(count timeout); unviable=$(count unviable)
# mutants.json lists every mutant the run was to test (outcomes.json only those it reached).
total="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' \
         "$OUT/mutants.json" 2>/dev/null || echo "?")"
tested=$((caught + missed + timeouts + unviable))
echo "mutants: $caught caught, $missed missed, $timeouts timed out, $unviable unviable, of $total, in ${secs}s"
[ "$missed" -gt 0 ] && { echo "mutants: MISSED (a test must fail on each, or docs/mutants.md explains it):"; sed 's/^/  /' "$OUT/missed.txt"; }
[ "$timeouts" -gt 0 ] && { echo "mutants: TIMED OUT:"; sed 's/^/  /' "$OUT/timeout.txt"; }
untested=0
[ "$total" != "?" ] && untested=$((total - tested))
if [ "$rc" = 124 ] || [ "$untested" -gt 0 ]; then
  echo "mutants: NOT TESTED: $([ "$total" = "?" ] && echo "some" || echo "$untested") mutant(s):" \
       "the run was stopped (cap ${cap}s)"
  [ "${MUTANTS_CAP_OK:-0}" = 1 ] || exit 1
  echo "mutants: MUTANTS_CAP_OK=1: passing on the $tested tested mutant(s) only"
fi
case "$rc" in
  0 | 124) ;;
  2 | 3) exit 1 ;; # cargo-mutants: 2 = missed mutants, 3 = timeouts
  4) echo "mutants: the tests fail without any mutation (baseline)" >&2; exit 2 ;;
  *) { [ "$missed" -gt 0 ] || [ "$timeouts" -gt 0 ]; } && exit 1; exit 2 ;;
esac
{ [ "$missed" -eq 0 ] && [ "$timeouts" -eq 0 ]; } || exit 1
exit 0
