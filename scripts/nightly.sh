# Sourced (not run) by the nightly-toolchain checks (scripts/fuzz.sh, miri.sh, tsan.sh): the
# loud skip and the nightly toolchain they all need. Set NIGHTLY_WHAT (the check's name, used
# in every line) before sourcing.
#
#   NIGHTLY_WHAT=fuzz; . scripts/nightly.sh; need_nightly

# Says loudly why the check cannot run here and exits 0 (a component truly cannot be had).
skip() {
  echo "######################################################################"
  echo "SKIPPED: $NIGHTLY_WHAT: $*"
  echo "######################################################################"
  exit 0
}

# A nightly Rust toolchain: installed with rustup (minimal profile) when missing, else skip.
need_nightly() {
  if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "$NIGHTLY_WHAT: installing a nightly Rust toolchain (rustup, minimal profile)"
    rustup toolchain install nightly --profile minimal ||
      skip "no nightly Rust toolchain: 'rustup toolchain install nightly' failed"
  fi
}
