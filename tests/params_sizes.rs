//! QEMU's size_to_str and HMP size parsing (docs/qemu-model.md §HMP `<size>`, §Parameters).
use proptest::prelude::*;
use switchover::params::{parse_size, size_to_str};
use switchover::Code;

#[test]
fn size_to_str_matches_every_example_of_qemu_behaviour() {
    let examples: [(u64, &str); 8] = [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "0.977 KiB"),
        (4096, "4 KiB"),
        (104_857_600, "100 MiB"),
        (123_456_789, "118 MiB"),
        (1_460_288_880, "1.36 GiB"),
        (1_610_612_736, "1.5 GiB"),
    ];
    for (value, text) in examples {
        assert_eq!(size_to_str(value), text, "size_to_str({value})");
    }
}

#[test]
fn size_to_str_of_u64_max_is_16_eib() {
    assert_eq!(size_to_str(u64::MAX), "16 EiB");
}

#[test]
fn size_to_str_keeps_three_significant_digits_without_trailing_zeros() {
    assert_eq!(size_to_str(1024), "1 KiB");
    assert_eq!(size_to_str(1536), "1.5 KiB");
    assert_eq!(size_to_str(1 << 30), "1 GiB");
    assert_eq!(size_to_str(1 << 60), "1 EiB");
    assert_eq!(size_to_str(107_374_182_400), "100 GiB"); // VFIO's fallback stop-copy size
}

#[test]
fn parse_size_matches_every_example_of_qemu_behaviour() {
    let examples: [(&str, u64); 6] = [
        ("100", 104_857_600),
        ("1.5", 1_572_864),
        ("1.5G", 1_610_612_736),
        ("100B", 100),
        ("1k", 1024),
        ("0x10", 16 * 1024 * 1024),
    ];
    for (text, value) in examples {
        assert_eq!(parse_size(text, 'M'), Ok(value), "parse_size({text:?}, 'M')");
    }
}

#[test]
fn parse_size_suffixes_are_case_insensitive_powers_of_1024() {
    let cases = [("1b", 1u64), ("1K", 1 << 10), ("1m", 1 << 20), ("1g", 1 << 30), ("1T", 1 << 40)];
    for (text, value) in cases {
        assert_eq!(parse_size(text, 'B'), Ok(value), "{text}");
    }
    assert_eq!(parse_size("2p", 'B'), Ok(2 << 50));
    assert_eq!(parse_size("7E", 'B'), Ok(7 << 60));
}

#[test]
fn parse_size_default_suffix_applies_only_without_one() {
    assert_eq!(parse_size("100", 'B'), Ok(100));
    assert_eq!(parse_size("100", 'k'), Ok(102_400));
    assert_eq!(parse_size("100B", 'G'), Ok(100));
    assert_eq!(parse_size("0x10", 'B'), Ok(16));
}

#[test]
fn parse_size_fraction_rounds_half_up_to_whole_bytes() {
    // 0.5 KiB = 512 exactly; 1.0005 KiB = 1024.512 → 1025; 1.0004 KiB = 1024.4096 → 1024.
    assert_eq!(parse_size("0.5K", 'B'), Ok(512));
    assert_eq!(parse_size("1.0005K", 'B'), Ok(1025));
    assert_eq!(parse_size("1.0004K", 'B'), Ok(1024));
    // A fraction with no digits after the point, and one with no digits before it.
    assert_eq!(parse_size("1.k", 'B'), Ok(1024));
    assert_eq!(parse_size(".5M", 'B'), Ok(524_288));
}

fn assert_invalid(text: &str, code: Code) {
    let err = parse_size(text, 'M').expect_err(text);
    assert_eq!(err.code, code, "{text:?}: {}", err.message);
    assert_eq!(err.message, format!("Invalid size {text}"));
}

#[test]
fn parse_size_refuses_trailing_characters() {
    for text in ["1KiB", "1 M", "10MB", "1e3", "1x", "12abc", "1.5.5", "0x"] {
        assert_invalid(text, Code::Parse);
    }
}

#[test]
fn parse_size_refuses_a_fraction_of_a_byte() {
    assert_invalid("1.5B", Code::Parse);
    assert_invalid("0.1b", Code::Parse);
}

#[test]
fn parse_size_refuses_hex_fractions_and_hex_suffixes() {
    assert_invalid("0x1.5", Code::Parse);
    assert_invalid("0x20M", Code::Parse);
}

#[test]
fn parse_size_refuses_empty_and_non_numbers() {
    for text in ["", " ", "M", ".", "abc", "-", "+", "inf", "nan"] {
        assert_invalid(text, Code::Parse);
    }
}

#[test]
fn parse_size_negative_is_out_of_range() {
    assert_invalid("-1", Code::OutOfRange);
    assert_invalid("-0.5K", Code::OutOfRange);
}

#[test]
fn parse_size_overflow_is_out_of_range() {
    assert_invalid("18446744073709551616", Code::OutOfRange); // 2^64 bytes... in MiB even more
    assert_invalid("16E", Code::OutOfRange);
    assert_invalid("0x1ffffffffffffffff", Code::OutOfRange);
    assert_invalid("99999999999999999999999999", Code::OutOfRange);
}

#[test]
fn parse_size_above_int64_max_is_refused() {
    // INT64_MAX = 9223372036854775807 is the largest accepted size.
    assert_eq!(parse_size("9223372036854775807B", 'M'), Ok(9_223_372_036_854_775_807));
    assert_invalid("9223372036854775808B", Code::OutOfRange);
    assert_invalid("8E", Code::OutOfRange); // 2^63
    assert_eq!(parse_size("7.5E", 'M'), Ok(15 << 59));
}

#[test]
fn parse_size_default_suffix_must_be_a_size_letter() {
    for bad in ['X', 'i', '0', '\0', ' ', 'é'] {
        let err = parse_size("1", bad).unwrap_err();
        assert_eq!(err.code, Code::InvalidArg, "{bad:?}");
    }
}

const SUFFIXES: [(char, u32); 14] = [
    ('B', 0), ('K', 10), ('M', 20), ('G', 30), ('T', 40), ('P', 50), ('E', 60),
    ('b', 0), ('k', 10), ('m', 20), ('g', 30), ('t', 40), ('p', 50), ('e', 60),
];

proptest! {
    #[test]
    fn parse_size_of_any_text_is_a_bounded_size_or_a_coded_error(text in ".{0,40}", suffix in any::<char>()) {
        match parse_size(&text, suffix) {
            Ok(v) => {
                prop_assert!(v <= i64::MAX as u64, "{:?} -> {}", text, v);
                prop_assert!("BKMGTPEbkmgtpe".contains(suffix), "accepted default suffix {:?}", suffix);
                // Only digits, '.', 'x', hex digits and one suffix letter can make a size.
                prop_assert!(text.chars().all(|c| c.is_ascii_hexdigit() || ".xXbkmgtpeBKMGTPE+ ".contains(c)),
                    "{:?} -> {}", text, v);
            }
            Err(e) if e.code == Code::InvalidArg => {
                prop_assert!(!"BKMGTPEbkmgtpe".contains(suffix), "{:?}, {:?}: {}", text, suffix, e.message);
            }
            Err(e) => {
                prop_assert!(e.code == Code::Parse || e.code == Code::OutOfRange, "{:?}: {:?}", text, e.code);
                prop_assert_eq!(e.message, format!("Invalid size {text}"));
            }
        }
    }

    #[test]
    fn parse_size_of_size_like_text_is_a_bounded_size_or_a_coded_error(text in "[-+ ]?[0-9]{0,22}(\\.[0-9]{0,22})?[bkmgtpeBKMGTPExX]?[0-9a-f]{0,3}") {
        match parse_size(&text, 'M') {
            Ok(v) => prop_assert!(v <= i64::MAX as u64, "{:?} -> {}", text, v),
            Err(e) => {
                prop_assert!(e.code == Code::Parse || e.code == Code::OutOfRange, "{:?}: {:?}", text, e.code);
                prop_assert_eq!(e.message, format!("Invalid size {text}"));
            }
        }
    }

    /// docs/qemu-model.md §HMP `<size>`: the fractional product rounds half-up to whole bytes.
    /// Worked exactly in integers: (I·10^d + F)·2^shift / 10^d, + ½, truncated. Suffixes up
    /// to T, at most 3 fraction digits and I·2^shift below 2^42 keep the product far inside a
    /// double's 53 bits, so no implementation choice (double or integer) changes the figure.
    #[test]
    fn fraction_with_suffix_is_the_rounded_exact_product(i in 0u64..1_048_576, f in 0u64..1000, d in 1u32..=3, which in 0..SUFFIXES.len()) {
        let (suffix, shift) = SUFFIXES[which];
        prop_assume!(shift > 0 && shift <= 40);
        let i = i % (1u64 << (42 - shift).min(20));
        let f = f % 10u64.pow(d);
        let text = format!("{i}.{f:0width$}{suffix}", width = d as usize);
        let den = 10u128.pow(d);
        let num = ((i as u128) * den + f as u128) << shift;
        let expected = (2 * num + den) / (2 * den);
        let result = parse_size(&text, 'B');
        if expected <= i64::MAX as u128 {
            prop_assert_eq!(result, Ok(expected as u64), "{}", text);
        } else {
            prop_assert_eq!(result.unwrap_err().code, Code::OutOfRange, "{}", text);
        }
    }

    #[test]
    fn integer_with_suffix_is_shifted_exactly(n in any::<u64>(), which in 0..SUFFIXES.len()) {
        let (suffix, shift) = SUFFIXES[which];
        let expected = (n as u128) << shift;
        let result = parse_size(&format!("{n}{suffix}"), 'B');
        if expected <= i64::MAX as u128 {
            prop_assert_eq!(result, Ok(expected as u64));
        } else {
            prop_assert_eq!(result.unwrap_err().code, Code::OutOfRange);
        }
    }

    #[test]
    fn small_integer_with_suffix_is_shifted_exactly(n in 0u64..100_000, which in 0..SUFFIXES.len()) {
        let (suffix, shift) = SUFFIXES[which];
        let expected = (n as u128) << shift;
        let result = parse_size(&format!("{n}{suffix}"), 'M');
        if expected <= i64::MAX as u128 {
            prop_assert_eq!(result, Ok(expected as u64));
        } else {
            prop_assert_eq!(result.unwrap_err().code, Code::OutOfRange);
        }
    }

    #[test]
    fn size_to_str_is_short_and_ends_in_a_unit(value in any::<u64>()) {
        let text = size_to_str(value);
        prop_assert!(text.len() <= 9, "{:?}", text);
        let units = [" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"];
        prop_assert!(units.iter().any(|u| text.ends_with(u)), "{:?}", text);
    }

    #[test]
    fn size_to_str_of_a_power_of_two_is_exact(shift in 0u32..64) {
        let value = 1u64 << shift;
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let expected = format!("{} {}", 1u64 << (shift % 10), units[(shift / 10) as usize]);
        prop_assert_eq!(size_to_str(value), expected);
    }
}

/// `qemu_strtosz` reads the number with `strtoull`/`strtod`, which skip leading white space
/// (C's `isspace`: space, \t, \n, \v, \f, \r) before the optional sign; trailing white space
/// is not skipped (the suffix must end the text: `do_strtosz` refuses what follows).
#[test]
fn parse_size_skips_leading_white_space_as_strtoull_does() {
    for (text, bytes) in [(" 1M", 1u64 << 20), ("\t\n\x0b\x0c\r 2k", 2048), ("  3", 3 << 20), (" +4K", 4096)] {
        assert_eq!(parse_size(text, 'M').unwrap(), bytes, "{text:?}");
    }
    for text in ["1M ", "1 M", " "] {
        assert_eq!(parse_size(text, 'M').unwrap_err().code, Code::Parse, "{text:?}");
    }
}

/// A fraction of only zeros is no fraction: `do_strtosz` (util/cutils.c) turns `fraction`
/// 0.0 into `valf` 0, and only a non-zero `valf` with a byte scale (`mul == 1`) is refused —
/// so "1.0B" is 1 byte while "1.5B" stays an error.
#[test]
fn parse_size_takes_a_zero_fraction_of_bytes() {
    for (text, bytes) in [("1.0B", 1u64), ("5.000b", 5), ("7.0", 7)] {
        assert_eq!(parse_size(text, 'B').unwrap(), bytes, "{text:?}");
    }
    assert_eq!(parse_size("1.5B", 'B').unwrap_err().code, Code::Parse);
    assert_eq!(parse_size("1.00000000000000000000001B", 'B').unwrap_err().code, Code::Parse);
}
