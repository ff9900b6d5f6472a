//! Unit tests of the parameter table.
use super::*;

#[test]
fn validation_checks_every_parameter_that_has_a_check_once() {
    for p in Parameter::ALL {
        let times = VALIDATION_ORDER.iter().filter(|q| **q == p).count();
        assert_eq!(times, usize::from(p.check() != Check::None), "{}", p.name());
    }
}

/// QEMU's own parameters (qapi/migration.json `MigrationParameters`), documented by QEMU;
/// the README documents the library's.
const QEMU_PARAMETERS: [Parameter; 4] = [
    Parameter::MaxBandwidth,
    Parameter::AvailSwitchoverBandwidth,
    Parameter::DowntimeLimit,
    Parameter::MaxPostcopyBandwidth,
];

/// The default as the README writes it: a number, an enum's name, `off`/`on`.
fn default_text(p: Parameter) -> String {
    let v = p.get(&Params::default());
    match p.kind() {
        ParamKind::Enum(names) => names[v as usize].to_owned(),
        ParamKind::Bool => (if v != 0 { "on" } else { "off" }).to_owned(),
        ParamKind::Size | ParamKind::Integer => v.to_string(),
    }
}

/// The first word of `text` (backticks dropped).
fn first_word(text: &str) -> String {
    let text = text.trim_start().trim_start_matches('`');
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '-').collect()
}

/// The default the README gives for `name`: a table row `| `name` | <default> | ...`, or
/// prose `` `name` (..., default <default> ...) ``.
fn readme_default(readme: &str, name: &str) -> Option<String> {
    let row = format!("| `{name}` |");
    if let Some(line) = readme.lines().find(|l| l.starts_with(&row)) {
        return Some(first_word(&line[row.len()..]));
    }
    let prose = format!("`{name}` (");
    readme.match_indices(&prose).find_map(|(at, _)| {
        let start = at + prose.len();
        let aside = &readme[start..start + readme[start..].find(')')?];
        Some(first_word(&aside[aside.find("default")? + "default".len()..]))
    })
}

#[test]
fn the_readme_gives_every_library_parameter_with_its_default() {
    // Read at compile time: no file access at run time (Miri isolates the file system).
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    for p in Parameter::ALL.into_iter().filter(|p| !QEMU_PARAMETERS.contains(p)) {
        assert_eq!(
            readme_default(readme, p.name()).as_deref(),
            Some(default_text(p).as_str()),
            "README.md on `{}`",
            p.name()
        );
    }
}
