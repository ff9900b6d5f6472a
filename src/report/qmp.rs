//! JSON text exactly as QEMU's QMP writer prints it (compact form): `", "` between members,
//! `": "` after names, doubles as `%.17g`, strings escaped the way QEMU escapes them
//! (control characters and everything outside printable ASCII as `\uXXXX`, upper-case hex,
//! surrogate pairs beyond the BMP). The values themselves come from `serde_json`.
use serde_json::ser::{CharEscape, Formatter, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::io::{self, Write};

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

/// QEMU's compact JSON layout.
struct QmpFormatter;

impl Formatter for QmpFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(format_g(value, 17).as_bytes())
    }
    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        for c in fragment.chars() {
            let cp = c as u32;
            if (0x20..0x7f).contains(&cp) {
                w.write_all(&[cp as u8])?;
            } else if cp > 0xffff {
                let v = cp - 0x10000;
                write!(w, "\\u{:04X}\\u{:04X}", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff))?;
            } else {
                write!(w, "\\u{cp:04X}")?;
            }
        }
        Ok(())
    }
    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        let text: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(w, "\\u{:04X}", byte),
        };
        w.write_all(text)
    }
}

/// Serialises `value` as QEMU's QMP does.
pub fn to_string(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, QmpFormatter);
    value.serialize(&mut ser).expect("serialising a Value into memory cannot fail");
    String::from_utf8(out).expect("QMP text is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn layout_is_qemus() {
        let v = json!({"status": "active", "ram": {"mbps": 840.5, "total": 4}, "list": [1, 2]});
        assert_eq!(
            to_string(&v),
            r#"{"status": "active", "ram": {"mbps": 840.5, "total": 4}, "list": [1, 2]}"#
        );
    }

    #[test]
    fn strings_escape_like_qemu() {
        let v = json!({"error-desc": "a\"b\\c\nd\u{1}é😀\u{7f}"});
        assert_eq!(
            to_string(&v),
            "{\"error-desc\": \"a\\\"b\\\\c\\nd\\u0001\\u00E9\\uD83D\\uDE00\\u007F\"}"
        );
    }
}
