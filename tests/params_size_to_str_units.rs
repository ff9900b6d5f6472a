//! `size_to_str` right below a unit boundary, where the unit comes from the binary exponent
//! (QEMU's `size_to_str`, util/cutils.c: `frexp(val / (1000.0 / 1024.0), &i); i = (i - 1) /
//! 10;` then `"%0.3g %s"` of `val / 2^(10 i)`).
//!
//! Worked by hand: v = 1000 × 2^50 − 128 = 1 125 899 906 842 623 872 is exact as a double;
//! v / (125/128) = 2^60 − 131.07…, which rounds to the double 2^60 − 128, just below 2^60, so
//! frexp gives i = 60 and the unit is (60 − 1) / 10 = 5, PiB; v / 2^50 = 999.99999999999989,
//! which `%0.3g` prints as `1e+03`. A log2 of that double rounds to exactly 60.0 and would
//! give exponent 61, unit 6, `0.977 EiB`.
use switchover::params::size_to_str;

#[test]
fn just_below_2_pow_60_scaled_is_still_pib() {
    assert_eq!(size_to_str(1_125_899_906_842_623_872), "1e+03 PiB");
    // 1000 × 2^50 itself scales to exactly 2^60: the next unit.
    assert_eq!(size_to_str(1_125_899_906_842_624_000), "0.977 EiB");
}
