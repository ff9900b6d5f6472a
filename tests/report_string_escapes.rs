//! Strings in `query-migrate` (here `error-desc`) escaped as QEMU's QMP writer does:
//! `qobject/json-writer.c` `quote_str` writes a code point above U+FFFF as a surrogate pair
//! `\uD800 + ((cp - 0x10000) >> 10)`, `\uDC00 + ((cp - 0x10000) & 0x3FF)`, and any other
//! one below U+0020 or from U+007F up as a single `\u%04X`.
use switchover::report::MigrationInfo;
use switchover::state::MigrationStatus;

fn failed_with(desc: &str) -> String {
    let mut info = MigrationInfo::empty();
    info.status = MigrationStatus::Failed;
    info.error_desc = Some(desc.into());
    info.to_qmp_json()
}

#[test]
fn the_last_character_of_the_bmp_is_one_escape() {
    // U+FFFF is not above 0xFFFF: `\uFFFF`.
    assert_eq!(failed_with("\u{FFFF}"), r#"{"status": "failed", "error-desc": "\uFFFF"}"#);
}

#[test]
fn the_first_character_beyond_the_bmp_is_a_surrogate_pair() {
    // U+10000: cp - 0x10000 = 0, so 0xD800 + 0 and 0xDC00 + 0.
    assert_eq!(failed_with("\u{10000}"), r#"{"status": "failed", "error-desc": "\uD800\uDC00"}"#);
}

#[test]
fn the_last_code_point_is_the_last_surrogate_pair() {
    // U+10FFFF: cp - 0x10000 = 0xFFFFF; >> 10 = 0x3FF, & 0x3FF = 0x3FF.
    assert_eq!(failed_with("\u{10FFFF}"), r#"{"status": "failed", "error-desc": "\uDBFF\uDFFF"}"#);
}

#[test]
fn tab_and_carriage_return_have_their_short_escapes() {
    // quote_str's `case '\r'` and `case '\t'`.
    assert_eq!(failed_with("a\tb\rc"), r#"{"status": "failed", "error-desc": "a\tb\rc"}"#);
}
