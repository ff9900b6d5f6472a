//! JSON text exactly as QEMU's QMP writer prints it (compact form): `", "` between members,
//! `": "` after names, doubles as `%.17g`, strings escaped the way QEMU escapes them
//! (control characters and everything outside printable ASCII as `\uXXXX`, upper-case hex,
//! surrogate pairs beyond the BMP). The values themselves come from `serde_json`.
use serde_json::ser::{CharEscape, Formatter, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::io::{self, Write};

pub use crate::cfmt::format_g;

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
