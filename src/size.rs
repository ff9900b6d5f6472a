//! Sizes as QEMU reads and prints them: `qemu_strtosz` with a default suffix (HMP's sizes)
//! and `size_to_str` (the reports' human-readable figures).
use crate::error::{Code, Error, Result};

// ---------------------------------------------------------------------------------------------
// size_to_str

const SIZE_UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// QEMU's `size_to_str`: the value in the largest binary unit in which it prints below 1000,
/// with three significant digits (`%0.3g`), e.g. `1.36 GiB`, `0.977 KiB`, `16 EiB`.
pub fn size_to_str(value: u64) -> String {
    let v = value as f64;
    // The unit steps up once the value would reach 1000 of the current one, i.e. the unit is
    // floor(log2(v * 1024 / 1000)) / 10. Dividing by 1000/1024 (exactly 0.9765625) rather than
    // multiplying by 1.024 keeps QEMU's rounding at the unit boundaries.
    let scaled = v / (1000.0 / 1024.0);
    let unit = ((binary_exponent(scaled) - 1) / 10).clamp(0, 6) as usize;
    let shown = v / (1u64 << (10 * unit)) as f64;
    format!("{} {}", crate::cfmt::format_g(shown, 3), SIZE_UNITS[unit])
}

/// The exponent `frexp` gives: `x = m * 2^e` with `m` in [0.5, 1); 0 for 0.
fn binary_exponent(x: f64) -> i32 {
    if x == 0.0 || !x.is_finite() {
        return 0;
    }
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: cannot come from a u64, handled for completeness.
        return x.log2().floor() as i32 + 1;
    }
    biased - 1022
}


// ---------------------------------------------------------------------------------------------
// parse_size

/// The power of two a size suffix stands for (`B` 0, `K` 10, ... `E` 60), either case.
fn suffix_shift(c: char) -> Option<u32> {
    match c.to_ascii_uppercase() {
        'B' => Some(0),
        'K' => Some(10),
        'M' => Some(20),
        'G' => Some(30),
        'T' => Some(40),
        'P' => Some(50),
        'E' => Some(60),
        _ => None,
    }
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The syntax of a size, once it is known to be well-formed.
struct SizeSyntax<'a> {
    negative: bool,
    /// Hex digits after `0x`, or decimal digits (possibly empty before a fraction).
    integer: &'a str,
    hex: bool,
    /// Digits after the point (possibly empty, as in `1.k`); `None` without a point.
    fraction: Option<&'a str>,
    suffix: Option<char>,
}

fn scan_size(text: &str) -> Option<SizeSyntax<'_>> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative = b[i] == b'-';
        i += 1;
    }
    let digits = |from: usize, pred: fn(&u8) -> bool| {
        from + b[from..].iter().take_while(|c| pred(c)).count()
    };
    let int_start = i;
    i = digits(i, u8::is_ascii_digit);
    let mut syntax = SizeSyntax {
        negative,
        integer: &text[int_start..i],
        hex: false,
        fraction: None,
        suffix: None,
    };
    if syntax.integer == "0" && i < b.len() && (b[i] | 0x20) == b'x' {
        // Hex: an integer only; a fraction or an explicit suffix is an error (QEMU refuses
        // "0x1.8" and "0x20M"; B and E are hex digits anyway).
        let hex_start = i + 1;
        i = digits(hex_start, u8::is_ascii_hexdigit);
        syntax.integer = &text[hex_start..i];
        syntax.hex = true;
        return (!syntax.integer.is_empty() && i == b.len()).then_some(syntax);
    }
    if i < b.len() && b[i] == b'.' {
        let frac_start = i + 1;
        i = digits(frac_start, u8::is_ascii_digit);
        syntax.fraction = Some(&text[frac_start..i]);
    }
    let has_digits = !syntax.integer.is_empty() || syntax.fraction.is_some_and(|f| !f.is_empty());
    if !has_digits {
        return None;
    }
    if i < b.len() {
        syntax.suffix = Some(b[i] as char).filter(|&c| suffix_shift(c).is_some());
        if syntax.suffix.is_some() {
            i += 1;
        }
    }
    (i == b.len()).then_some(syntax)
}

/// Parses a size the way QEMU's HMP does (`qemu_strtosz` with a default suffix):
/// decimal digits with an optional `.fraction`, or a `0x` hex integer; then an optional
/// one-letter suffix B K M G T P E (either case; `default_suffix` when absent). The fraction
/// is scaled exactly and rounded half-up to whole bytes. Results above `INT64_MAX` are
/// refused, as HMP does.
///
/// Errors: `Invalid size <text>` with `SWO_ERR_PARSE` for bad syntax (trailing characters,
/// a non-zero fraction of bytes, a hex fraction or suffix), `SWO_ERR_OUT_OF_RANGE` for a
/// negative value or one that does not fit; `SWO_ERR_INVALID_ARG` when `default_suffix` is
/// not one of B K M G T P E.
pub fn parse_size(text: &str, default_suffix: char) -> Result<u64> {
    let default_shift = suffix_shift(default_suffix).ok_or_else(|| {
        Error::invalid_arg(format!(
            "default suffix '{}' is not one of B, K, M, G, T, P, E",
            default_suffix.escape_default()
        ))
    })?;
    let invalid = |code| Error::new(code, format!("Invalid size {text}"));
    let syntax = scan_size(text).ok_or_else(|| invalid(Code::Parse))?;
    let shift = syntax.suffix.and_then(suffix_shift).unwrap_or(default_shift);
    let out_of_range = || invalid(Code::OutOfRange);
    if syntax.negative {
        return Err(out_of_range());
    }

    let mut integer = if syntax.integer.is_empty() {
        0
    } else {
        u64::from_str_radix(syntax.integer, if syntax.hex { 16 } else { 10 })
            .map_err(|_| out_of_range())?
    };
    // The fraction as 64-bit fixed point (fraction * 2^64), from its nearest double, so
    // results match QEMU's to the byte.
    let mut fraction_fixed: u64 = 0;
    if let Some(digits) = syntax.fraction.filter(|d| !d.is_empty()) {
        let fraction: f64 = format!("0.{digits}").parse().map_err(|_| invalid(Code::Parse))?;
        if fraction >= 1.0 {
            integer = integer.checked_add(1).ok_or_else(out_of_range)?;
        } else {
            fraction_fixed = (fraction * 18_446_744_073_709_551_616.0) as u64;
            if fraction_fixed == 0 && digits.bytes().any(|d| d != b'0') {
                fraction_fixed = 1; // a tiny but non-zero fraction still counts as one
            }
        }
    }

    let bytes = if shift == 0 {
        if fraction_fixed != 0 {
            return Err(invalid(Code::Parse)); // no fractions of a byte
        }
        integer
    } else {
        let scaled_fraction = (fraction_fixed as u128) << shift;
        let round_half_up = (scaled_fraction >> 63) & 1;
        let total = ((integer as u128) << shift) + (scaled_fraction >> 64) + round_half_up;
        u64::try_from(total).map_err(|_| out_of_range())?
    };
    if bytes > i64::MAX as u64 {
        return Err(out_of_range());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_unit_steps_up_at_1000_of_the_current_unit() {
        // 1000 KiB = 1024000 B is the first value shown in MiB.
        assert_eq!(size_to_str(1_023_999), "1e+03 KiB");
        assert_eq!(size_to_str(1_024_000), "0.977 MiB");
    }
}
