#!/usr/bin/env bash
# Miri (issue 13): the core's unit tests and the FFI-level tests of the free paths under
# Rust's undefined-behaviour checker (aliasing, use-after-free, data races, leaks).
#
# The subset: every unit test of src/ (the core) except the few long stress loops Miri would
# take minutes over, and the C-ABI integration tests that free sessions, models and handlers
# from and around callbacks (tests/lifecycle_vmm_hooks.rs, tests/*_free_in_callback.rs,
# tests/params_json.rs). Under Miri the registry uses its full-fence protocol
# (Miri cannot run membarrier; src/sys.rs).
#
# Needs nightly Rust with the miri and rust-src components (installed with rustup when
# missing); where they truly cannot be had it says so loudly and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."

NIGHTLY_WHAT=miri
# shellcheck source=scripts/nightly.sh
. scripts/nightly.sh

need_nightly
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  echo "miri: installing the miri and rust-src components"
  rustup +nightly component add miri rust-src ||
    skip "the nightly toolchain has no miri component ('rustup component add miri' failed)"
fi
cargo +nightly miri setup >/dev/null 2>&1 || cargo +nightly miri setup ||
  skip "'cargo miri setup' failed (no rust-src?)"

# Long loops skipped under Miri (each runs natively in `cargo test`); the registry's stress
# tests run fewer rounds under Miri instead (cfg!(miri)).
SKIP_UNIT=()
export MIRIFLAGS="${MIRIFLAGS:-}"
TARGET_DIR=target/miri
log=$(mktemp)
rc=0
run() {
  echo "miri: cargo miri test $*"
  cargo +nightly miri test --target-dir "$TARGET_DIR" "$@" 2>&1 | tee -a "$log" |
    { grep -E '^(test result|error|failures:)|panicked|Undefined Behavior' || true; }
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
}
run --lib -- "${SKIP_UNIT[@]+"${SKIP_UNIT[@]}"}"
run --test lifecycle_vmm_hooks --test lifecycle_session_free_in_callback \
    --test vfio_free_in_callback --test params_json
passed=$(grep -o '^test result: [a-zA-Z]*\. [0-9]* passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "=== miri: $passed tests passed, $failed failed (rc $rc)"
rm -f "$log"
exit $rc
