//! Numbers formatted as C's printf formats them, for output that must match QEMU's
//! byte for byte (`%.17g` in QMP JSON, `%0.3g` in `size_to_str`).

/// C's `%.{precision}g` for a finite double (the caller keeps NaN and infinities out of
/// reports; they print as `0` here, never as invalid JSON).
pub fn format_g(value: f64, precision: usize) -> String {
    if !value.is_finite() {
        return "0".to_owned();
    }
    let precision = precision.max(1);
    if value == 0.0 {
        return if value.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Round to `precision` significant digits first: the exponent of the *rounded* value
    // decides between fixed and exponential notation, as in C.
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if exp < -4 || exp >= precision as i32 {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{value:.decimals$}")).to_owned()
    }
}

fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_g_3(x: f64) -> String {
        format_g(x, 3)
    }

    #[test]
    fn g3_follows_c_rules() {
        assert_eq!(format_g_3(0.0), "0");
        assert_eq!(format_g_3(999.0), "999");
        assert_eq!(format_g_3(1.125), "1.12"); // exact tie: to even, like glibc
        assert_eq!(format_g_3(999.6), "1e+03");
        assert_eq!(format_g_3(0.9765625), "0.977");
        assert_eq!(format_g_3(16.0), "16");
        assert_eq!(format_g_3(1.5), "1.5");
    }


    #[test]
    fn g17_matches_c_printf() {
        // Expected texts are what glibc's printf("%.17g") prints for these doubles.
        assert_eq!(format_g(840.5, 17), "840.5");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1e21, 17), "1e+21");
        assert_eq!(format_g(123456789012345678.0, 17), "1.2345678901234568e+17");
        assert_eq!(format_g(0.0001, 17), "0.0001");
        assert_eq!(format_g(0.00001, 17), "1.0000000000000001e-05");
        assert_eq!(format_g(268.65, 17), "268.64999999999998");
        assert_eq!(format_g(0.0, 17), "0");
        assert_eq!(format_g(3.0, 17), "3");
    }

    #[test]
    fn g3_matches_c_printf() {
        assert_eq!(format_g(0.9765625, 3), "0.977");
        assert_eq!(format_g(4.0, 3), "4");
        assert_eq!(format_g(1.3600000143051147, 3), "1.36");
        assert_eq!(format_g(117.73756885528564, 3), "118");
        assert_eq!(format_g(999.0, 3), "999");
        assert_eq!(format_g(999.9, 3), "1e+03");
    }
}
