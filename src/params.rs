//! Migration parameters and capabilities (docs/qemu-model.md §Parameters), with the library's
//! own additions. Parsing and validation follow QEMU's HMP and QMP rules; sizes are parsed and
//! printed like QEMU's `qemu_strtosz_MiB` and `size_to_str`.
use crate::error::{Code, Error, Result};
use crate::session::{read, write};
use serde_json::{Map, Value};

/// QEMU's `MAX_MIGRATE_DOWNTIME`: the largest `downtime-limit`, in ms.
pub const MAX_MIGRATE_DOWNTIME_MS: u64 = 2000 * 1000;

/// Migration parameters. Units: ms for times, bytes/s for bandwidths, percent for margins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// `downtime-limit`, ms, at most 2 000 000.
    pub downtime_limit_ms: u64,
    /// `max-bandwidth`, bytes/s: the transfer rate limit before switchover.
    pub max_bandwidth: u64,
    /// `avail-switchover-bandwidth`, bytes/s; 0 = use the measured rate. Never throttles.
    pub avail_switchover_bandwidth: u64,
    /// `max-postcopy-bandwidth`, bytes/s; 0 = unlimited.
    pub max_postcopy_bandwidth: u64,
    /// `rollback-tolerance`, percent over the threshold a final query may show before a
    /// switchover steps back (capability `switchover-rollback`).
    pub rollback_tolerance_pct: u64,
    /// `stall-margin`, percent: how far below the best remaining a pass must get to count as
    /// progress.
    pub stall_margin_pct: u64,
    /// `stall-passes`: passes without progress that make a stall.
    pub stall_passes: u64,
    /// `downtime-headroom`, percent added to the expected downtime in the advice.
    pub downtime_headroom_pct: u64,
    /// `auto-downtime-max`, ms; 0 = never raise `downtime-limit` by itself.
    pub auto_downtime_max_ms: u64,
    /// `bandwidth-window`, ms: the bandwidth window closes at the first `update_counters` at
    /// least this long after it opened (100, QEMU's, by default). A caller that sees the
    /// transfer only from outside, in samples that do not line up with the sender's
    /// rate-limit bursts (switchover-watch over QMP), widens it to average over many bursts.
    pub bandwidth_window_ms: u64,
    // -- operator policy (issue 15); every default leaves QEMU's behaviour unchanged --
    /// `deadline`, ms since `migration_start`; 0 = no fixed part.
    pub deadline_ms: u64,
    /// `deadline-per-gib`, ms per GiB of guest RAM (the RAM model's `total`); 0 = none.
    pub deadline_per_gib_ms: u64,
    /// `deadline-action`: what happens at the deadline.
    pub deadline_action: PolicyAction,
    /// `stall-action`: what happens at a stall; `None` = only report it.
    pub stall_action: Option<PolicyAction>,
    /// `stall-action-passes`: passes without progress before the stall action (at least the
    /// stall itself, `stall-passes`).
    pub stall_action_passes: u64,
    /// `downtime-fixed`, ms: the part of the pause that does not depend on bytes (final
    /// vCPU/device state, reconnects). Counted in expected downtime, taken off the budget.
    pub downtime_fixed_ms: u64,
    /// `report-reason`: the reason line in `x-switchover` and HMP even without other
    /// extensions in use.
    pub report_reason: bool,
    /// `reuse-switchover-bandwidth`: at completion, the measured switchover bandwidth becomes
    /// `avail-switchover-bandwidth` for the next migration of the session.
    pub reuse_switchover_bandwidth: bool,
    /// `guest-dirty-rate`, bytes/s: the guest's write rate measured outside the migration's
    /// syncs over a short period (e.g. QEMU's `calc-dirty-rate`); 0 = not known. With it the
    /// stall advice is round-aware (`crate::stall::round_factor`); without it the advice is
    /// the expected downtime plus headroom.
    pub guest_dirty_rate: u64,
}

crate::abi_enum::abi_enum! {
    /// What the library does by itself at a deadline or a stall (`deadline-action`,
    /// `stall-action`). The numbers are the parameters' stored values; the C ABI's
    /// `SWO_POLICY_*` (in `SwoInfo.policy_action`) are these plus one, 0 being "none".
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum PolicyAction {
        /// Cancel the migration (the guest keeps running on the source).
        Cancel = 0 => "cancel",
        /// Switch over now, knowingly over `downtime-limit`.
        ForceSwitchover = 1 => "force-switchover",
        /// Start postcopy now (capability `postcopy-ram`, no `NO_POSTCOPY` handler).
        Postcopy = 2 => "postcopy",
    }
}

impl Params {
    /// The deadline in ms since `migration_start` for a guest of `ram_total_bytes` (`None`
    /// without a RAM model): `deadline + deadline-per-gib × GiB` (truncated to whole ms);
    /// `None` when both parts are 0. Saturates.
    pub fn effective_deadline_ms(&self, ram_total_bytes: Option<u64>) -> Option<u64> {
        let scaled = ram_total_bytes.map_or(0, |total| {
            let ms = (self.deadline_per_gib_ms as u128 * total as u128) >> 30;
            u64::try_from(ms).unwrap_or(u64::MAX)
        });
        let deadline = self.deadline_ms.saturating_add(scaled);
        (deadline != 0).then_some(deadline)
    }

    /// The part of `downtime-limit` left for bytes: `downtime-limit - downtime-fixed`, never
    /// below 0. The threshold is the switchover bandwidth times this budget.
    pub fn budget_ms(&self) -> u64 {
        self.downtime_limit_ms.saturating_sub(self.downtime_fixed_ms)
    }

    /// A deadline, a stall action, a fixed downtime or `report-reason` is set: the reports
    /// carry the reason line.
    pub fn policy_in_use(&self) -> bool {
        self.deadline_ms != 0
            || self.deadline_per_gib_ms != 0
            || self.stall_action.is_some()
            || self.downtime_fixed_ms != 0
            || self.report_reason
    }
}

impl Default for Params {
    fn default() -> Params {
        Params {
            downtime_limit_ms: 300,
            max_bandwidth: 134_217_728,
            avail_switchover_bandwidth: 0,
            max_postcopy_bandwidth: 0,
            rollback_tolerance_pct: 10,
            stall_margin_pct: 4,
            stall_passes: 5,
            downtime_headroom_pct: 10,
            auto_downtime_max_ms: 0,
            bandwidth_window_ms: 100,
            deadline_ms: 0,
            deadline_per_gib_ms: 0,
            deadline_action: PolicyAction::Cancel,
            stall_action: None,
            stall_action_passes: 0,
            downtime_fixed_ms: 0,
            report_reason: false,
            reuse_switchover_bandwidth: false,
            guest_dirty_rate: 0,
        }
    }
}

/// Migration capabilities; all off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `events`: emit `MIGRATION` and `MIGRATION_PASS`.
    pub events: bool,
    /// `pause-before-switchover`: wait in `pre-switchover` for `migrate-continue`.
    pub pause_before_switchover: bool,
    /// `switchover-ack`: wait for the destination's ack before switching over.
    pub switchover_ack: bool,
    /// `postcopy-ram`: RAM may move after the destination starts.
    pub postcopy_ram: bool,
    /// `switchover-rollback`: the final query may send the migration back to `active`.
    pub switchover_rollback: bool,
}

/// One parameter, by its QMP/HMP name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parameter {
    MaxBandwidth,
    AvailSwitchoverBandwidth,
    DowntimeLimit,
    MaxPostcopyBandwidth,
    RollbackTolerance,
    StallMargin,
    StallPasses,
    DowntimeHeadroom,
    AutoDowntimeMax,
    BandwidthWindow,
    Deadline,
    DeadlinePerGib,
    DeadlineAction,
    StallAction,
    StallActionPasses,
    DowntimeFixed,
    ReportReason,
    ReuseSwitchoverBandwidth,
    GuestDirtyRate,
}

/// How a parameter is written in HMP and QMP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A size (HMP: MiB by default); QMP `size`.
    Size,
    /// A plain decimal integer; QMP `uint64`.
    Integer,
    /// One of these names; QMP a string. The stored value is the index.
    Enum(&'static [&'static str]),
    /// HMP `on`/`off`; QMP `bool`. Stored as 0/1.
    Bool,
}

/// `deadline-action` values, in their stored order.
pub const DEADLINE_ACTIONS: [&str; 3] = ["cancel", "force-switchover", "postcopy"];
/// `stall-action` values, in their stored order.
pub const STALL_ACTIONS: [&str; 3] = ["none", "cancel", "force-switchover"];

impl Parameter {
    /// Every parameter, in the order `query-migrate-parameters` lists them (QEMU's own first,
    /// in QEMU's order, then the library's).
    pub const ALL: [Parameter; 19] = [
        Parameter::MaxBandwidth,
        Parameter::AvailSwitchoverBandwidth,
        Parameter::DowntimeLimit,
        Parameter::MaxPostcopyBandwidth,
        Parameter::RollbackTolerance,
        Parameter::StallMargin,
        Parameter::StallPasses,
        Parameter::DowntimeHeadroom,
        Parameter::AutoDowntimeMax,
        Parameter::BandwidthWindow,
        Parameter::Deadline,
        Parameter::DeadlinePerGib,
        Parameter::DeadlineAction,
        Parameter::StallAction,
        Parameter::StallActionPasses,
        Parameter::DowntimeFixed,
        Parameter::ReportReason,
        Parameter::ReuseSwitchoverBandwidth,
        Parameter::GuestDirtyRate,
    ];

    /// The QMP/HMP name, e.g. `downtime-limit`.
    pub fn name(self) -> &'static str {
        match self {
            Parameter::MaxBandwidth => "max-bandwidth",
            Parameter::AvailSwitchoverBandwidth => "avail-switchover-bandwidth",
            Parameter::DowntimeLimit => "downtime-limit",
            Parameter::MaxPostcopyBandwidth => "max-postcopy-bandwidth",
            Parameter::RollbackTolerance => "rollback-tolerance",
            Parameter::StallMargin => "stall-margin",
            Parameter::StallPasses => "stall-passes",
            Parameter::DowntimeHeadroom => "downtime-headroom",
            Parameter::AutoDowntimeMax => "auto-downtime-max",
            Parameter::BandwidthWindow => "bandwidth-window",
            Parameter::Deadline => "deadline",
            Parameter::DeadlinePerGib => "deadline-per-gib",
            Parameter::DeadlineAction => "deadline-action",
            Parameter::StallAction => "stall-action",
            Parameter::StallActionPasses => "stall-action-passes",
            Parameter::DowntimeFixed => "downtime-fixed",
            Parameter::ReportReason => "report-reason",
            Parameter::ReuseSwitchoverBandwidth => "reuse-switchover-bandwidth",
            Parameter::GuestDirtyRate => "guest-dirty-rate",
        }
    }

    /// The parameter with this exact name.
    pub fn from_name(name: &str) -> Option<Parameter> {
        Parameter::ALL.into_iter().find(|p| p.name() == name)
    }

    /// True for the bandwidths, which HMP takes as sizes (MiB by default).
    pub fn is_size(self) -> bool {
        self.kind() == ParamKind::Size
    }

    /// How the parameter is written.
    pub fn kind(self) -> ParamKind {
        match self {
            Parameter::MaxBandwidth
            | Parameter::AvailSwitchoverBandwidth
            | Parameter::MaxPostcopyBandwidth
            | Parameter::GuestDirtyRate => ParamKind::Size,
            Parameter::DeadlineAction => ParamKind::Enum(&DEADLINE_ACTIONS),
            Parameter::StallAction => ParamKind::Enum(&STALL_ACTIONS),
            Parameter::ReportReason | Parameter::ReuseSwitchoverBandwidth => ParamKind::Bool,
            _ => ParamKind::Integer,
        }
    }

    pub fn get(self, p: &Params) -> u64 {
        match self {
            Parameter::MaxBandwidth => p.max_bandwidth,
            Parameter::AvailSwitchoverBandwidth => p.avail_switchover_bandwidth,
            Parameter::DowntimeLimit => p.downtime_limit_ms,
            Parameter::MaxPostcopyBandwidth => p.max_postcopy_bandwidth,
            Parameter::RollbackTolerance => p.rollback_tolerance_pct,
            Parameter::StallMargin => p.stall_margin_pct,
            Parameter::StallPasses => p.stall_passes,
            Parameter::DowntimeHeadroom => p.downtime_headroom_pct,
            Parameter::AutoDowntimeMax => p.auto_downtime_max_ms,
            Parameter::BandwidthWindow => p.bandwidth_window_ms,
            Parameter::Deadline => p.deadline_ms,
            Parameter::DeadlinePerGib => p.deadline_per_gib_ms,
            Parameter::DeadlineAction => p.deadline_action as u64,
            Parameter::StallAction => p.stall_action.map_or(0, |a| a as u64 + 1),
            Parameter::StallActionPasses => p.stall_action_passes,
            Parameter::DowntimeFixed => p.downtime_fixed_ms,
            Parameter::ReportReason => p.report_reason as u64,
            Parameter::ReuseSwitchoverBandwidth => p.reuse_switchover_bandwidth as u64,
            Parameter::GuestDirtyRate => p.guest_dirty_rate,
        }
    }

    /// Stores `value` (an enum's index, a bool's 0/1); an enum index out of range is stored
    /// as the first value (callers parse names, so it cannot come from outside).
    pub fn set(self, p: &mut Params, value: u64) {
        let action = |i: u64| PolicyAction::ALL.get(i as usize).copied().unwrap_or(PolicyAction::Cancel);
        let field = match self {
            Parameter::DeadlineAction => return p.deadline_action = action(value),
            Parameter::StallAction => {
                return p.stall_action = value.checked_sub(1).map(action);
            }
            Parameter::ReportReason => return p.report_reason = value != 0,
            Parameter::ReuseSwitchoverBandwidth => return p.reuse_switchover_bandwidth = value != 0,
            Parameter::Deadline => &mut p.deadline_ms,
            Parameter::DeadlinePerGib => &mut p.deadline_per_gib_ms,
            Parameter::StallActionPasses => &mut p.stall_action_passes,
            Parameter::DowntimeFixed => &mut p.downtime_fixed_ms,
            Parameter::MaxBandwidth => &mut p.max_bandwidth,
            Parameter::AvailSwitchoverBandwidth => &mut p.avail_switchover_bandwidth,
            Parameter::GuestDirtyRate => &mut p.guest_dirty_rate,
            Parameter::DowntimeLimit => &mut p.downtime_limit_ms,
            Parameter::MaxPostcopyBandwidth => &mut p.max_postcopy_bandwidth,
            Parameter::RollbackTolerance => &mut p.rollback_tolerance_pct,
            Parameter::StallMargin => &mut p.stall_margin_pct,
            Parameter::StallPasses => &mut p.stall_passes,
            Parameter::DowntimeHeadroom => &mut p.downtime_headroom_pct,
            Parameter::AutoDowntimeMax => &mut p.auto_downtime_max_ms,
            Parameter::BandwidthWindow => &mut p.bandwidth_window_ms,
        };
        *field = value;
    }
}

/// One capability, by its QMP/HMP name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    Events,
    PostcopyRam,
    PauseBeforeSwitchover,
    SwitchoverAck,
    SwitchoverRollback,
}

impl Capability {
    /// Every capability, in the order `query-migrate-capabilities` lists them (QEMU's enum
    /// order, then the library's own).
    pub const ALL: [Capability; 5] = [
        Capability::Events,
        Capability::PostcopyRam,
        Capability::PauseBeforeSwitchover,
        Capability::SwitchoverAck,
        Capability::SwitchoverRollback,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Events => "events",
            Capability::PostcopyRam => "postcopy-ram",
            Capability::PauseBeforeSwitchover => "pause-before-switchover",
            Capability::SwitchoverAck => "switchover-ack",
            Capability::SwitchoverRollback => "switchover-rollback",
        }
    }

    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    fn field(self, caps: &mut Capabilities) -> &mut bool {
        match self {
            Capability::Events => &mut caps.events,
            Capability::PostcopyRam => &mut caps.postcopy_ram,
            Capability::PauseBeforeSwitchover => &mut caps.pause_before_switchover,
            Capability::SwitchoverAck => &mut caps.switchover_ack,
            Capability::SwitchoverRollback => &mut caps.switchover_rollback,
        }
    }

    pub fn get(self, caps: &Capabilities) -> bool {
        let mut copy = *caps;
        *self.field(&mut copy)
    }
}

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

/// Parses a plain decimal `u64` for an integer parameter set through HMP, with QEMU's HMP
/// wording (`Parameter '<name>' expects uint64`).
fn parse_hmp_integer(name: &str, text: &str) -> Result<u64> {
    let message = || format!("Parameter '{name}' expects uint64");
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::parse(message()));
    }
    if digits.len() != text.len() {
        return Err(Error::out_of_range(message()));
    }
    text.parse::<u64>().map_err(|_| Error::out_of_range(message()))
}

// ---------------------------------------------------------------------------------------------
// validation

/// How C's `stringify(SIZE_MAX)` reads on this platform (glibc spelling).
fn size_max_text() -> String {
    if usize::BITS == 64 {
        format!("({}UL)", usize::MAX)
    } else {
        format!("({}U)", usize::MAX)
    }
}

fn expects(name: &str, what: &str) -> Error {
    Error::out_of_range(format!("Parameter '{name}' expects {what}"))
}

/// Checks a whole parameter set (QEMU's `migrate_params_check`), with QEMU's wording; the
/// library's own parameters are checked in the same style.
pub fn validate(params: &Params) -> Result<()> {
    let size_max = usize::MAX as u64;
    let bandwidth_range = || format!("an integer in the range of 0 to {} bytes/second", size_max_text());
    if params.max_bandwidth > size_max {
        return Err(expects("max_bandwidth", &bandwidth_range()));
    }
    if params.avail_switchover_bandwidth > size_max {
        return Err(expects("avail_switchover_bandwidth", &bandwidth_range()));
    }
    if params.guest_dirty_rate > size_max {
        return Err(expects("guest_dirty_rate", &bandwidth_range()));
    }
    if params.downtime_limit_ms > MAX_MIGRATE_DOWNTIME_MS {
        return Err(expects("downtime_limit", "an integer in the range of 0 to (2000 * 1000) ms"));
    }
    // QEMU does not bound max-postcopy-bandwidth.
    if params.rollback_tolerance_pct > 1000 {
        return Err(expects("rollback_tolerance", "an integer in the range of 0 to 1000 percent"));
    }
    if params.stall_margin_pct > 100 {
        return Err(expects("stall_margin", "an integer in the range of 0 to 100 percent"));
    }
    if !(1..=1000).contains(&params.stall_passes) {
        return Err(expects("stall_passes", "an integer in the range of 1 to 1000"));
    }
    if !(100..=60_000).contains(&params.bandwidth_window_ms) {
        return Err(expects("bandwidth_window", "an integer in the range of 100 to 60000 ms"));
    }
    if params.downtime_headroom_pct > 1000 {
        return Err(expects("downtime_headroom", "an integer in the range of 0 to 1000 percent"));
    }
    if params.auto_downtime_max_ms > MAX_MIGRATE_DOWNTIME_MS {
        return Err(expects(
            "auto_downtime_max",
            "an integer in the range of 0 to (2000 * 1000) ms",
        ));
    }
    if params.deadline_ms > MAX_DEADLINE_MS {
        return Err(expects("deadline", "an integer in the range of 0 to 31536000000 ms"));
    }
    if params.deadline_per_gib_ms > MAX_DEADLINE_PER_GIB_MS {
        return Err(expects("deadline_per_gib", "an integer in the range of 0 to 86400000 ms"));
    }
    if params.stall_action == Some(PolicyAction::Postcopy) {
        return Err(Error::invalid_arg(
            "Parameter 'stall-action' does not accept value 'postcopy'",
        ));
    }
    if params.stall_action_passes > 1000 {
        return Err(expects("stall_action_passes", "an integer in the range of 0 to 1000"));
    }
    if params.downtime_fixed_ms > MAX_MIGRATE_DOWNTIME_MS {
        return Err(expects("downtime_fixed", "an integer in the range of 0 to (2000 * 1000) ms"));
    }
    Ok(())
}

/// The largest `deadline`: a year, in ms.
pub const MAX_DEADLINE_MS: u64 = 365 * 24 * 3600 * 1000;
/// The largest `deadline-per-gib`: a day per GiB, in ms.
pub const MAX_DEADLINE_PER_GIB_MS: u64 = 24 * 3600 * 1000;

// ---------------------------------------------------------------------------------------------
// JSON forms

/// The parameters as `query-migrate-parameters` returns them: every member, fixed order.
pub fn params_to_json(params: &Params) -> String {
    let members: Map<String, Value> = Parameter::ALL
        .iter()
        .map(|p| {
            let v = p.get(params);
            let value = match p.kind() {
                ParamKind::Enum(names) => Value::from(names[v as usize]),
                ParamKind::Bool => Value::from(v != 0),
                ParamKind::Size | ParamKind::Integer => Value::from(v),
            };
            (p.name().to_owned(), value)
        })
        .collect();
    crate::report::qmp::to_string(&Value::Object(members))
}

/// The capabilities as `query-migrate-capabilities` returns them.
pub fn capabilities_to_json(caps: &Capabilities) -> String {
    let list: Vec<Value> = Capability::ALL
        .iter()
        .map(|c| {
            let mut entry = Map::new();
            entry.insert("capability".into(), Value::from(c.name()));
            entry.insert("state".into(), Value::from(c.get(caps)));
            Value::Object(entry)
        })
        .collect();
    crate::report::qmp::to_string(&Value::Array(list))
}

/// One QMP member's value as a `u64` (QAPI `uint64` / `size`), with QEMU's wording. `raw` is
/// the member's text: an integer literal that does not fit (negative, or beyond `uint64`,
/// which serde_json reads as a float) is `SWO_ERR_OUT_OF_RANGE`; anything that is not an
/// integer literal (`1.5`, `1e3`, a string) is the wrong type, `SWO_ERR_INVALID_ARG`.
fn qmp_u64(name: &str, value: &Value, raw: &str) -> Result<u64> {
    let message = || format!("Parameter '{name}' expects uint64");
    if let Some(v) = value.as_u64() {
        return Ok(v);
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let integer_literal = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match (value, integer_literal) {
        // "-0" (read as the float -0.0) is the integer 0, as QEMU's parser reads it.
        (Value::Number(_), true) if digits.bytes().all(|b| b == b'0') => Ok(0),
        // QEMU takes negative integers and wraps them; the library refuses them.
        (Value::Number(_), true) => Err(Error::out_of_range(message())),
        _ => Err(Error::invalid_arg(message())),
    }
}

/// The message of QEMU's QMP parser for a key that appears twice in one object: `parse_pair`
/// (qobject/json-parser.c) calls `parse_error(ctxt, token, "duplicate key")`, which words it
/// `JSON parse error, %s`.
const DUPLICATE_KEY: &str = "duplicate key";

/// Any JSON value, read only to refuse a key that appears twice in any of its objects (at
/// any depth, as QEMU's parser does); serde_json would keep the last one silently.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

/// Merges a `migrate-set-parameters` object over `current`: members are read in schema
/// order (so a mistyped known member is reported before an unknown one, as QAPI does), then
/// the whole result is validated. A key that appears twice anywhere is refused before any of
/// that (`JSON parse error, duplicate key`, as QEMU's QMP parser refuses it).
pub fn merge_params_json(current: &Params, json: &str) -> Result<Params> {
    let parse_error = |e: serde_json::Error| {
        let text = e.to_string();
        if e.is_data() && text.starts_with(DUPLICATE_KEY) {
            Error::parse(format!("JSON parse error, {DUPLICATE_KEY}"))
        } else {
            Error::parse(format!("JSON parse error, {e}"))
        }
    };
    serde_json::from_str::<NoDuplicateKeys>(json).map_err(parse_error)?;
    let value: Value = serde_json::from_str(json).map_err(parse_error)?;
    let Value::Object(members) = value else {
        return Err(Error::parse("Invalid parameter type for 'parameters', expected: object"));
    };
    // The members' texts, to tell an integer too large for `u64` from a float.
    let raw: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(json).map_err(parse_error)?;
    let mut merged = current.clone();
    for p in Parameter::ALL {
        if let Some(v) = members.get(p.name()) {
            let value = match p.kind() {
                ParamKind::Enum(names) => match v {
                    Value::String(text) => enum_index(p.name(), names, text)?,
                    _ => return Err(Error::invalid_arg(format!("Invalid parameter type for '{}', expected: string", p.name()))),
                },
                ParamKind::Bool => match v {
                    Value::Bool(b) => *b as u64,
                    _ => return Err(Error::invalid_arg(format!("Invalid parameter type for '{}', expected: boolean", p.name()))),
                },
                ParamKind::Size | ParamKind::Integer => {
                    let text = raw.get(p.name()).map_or("", |r| r.get());
                    qmp_u64(p.name(), v, text)?
                }
            };
            p.set(&mut merged, value);
        }
    }
    if let Some(unknown) = members.keys().find(|k| Parameter::from_name(k).is_none()) {
        return Err(unknown_parameter(unknown));
    }
    validate(&merged)?;
    Ok(merged)
}

/// The index of `text` among an enum parameter's `names` (QAPI's wording when absent).
fn enum_index(name: &str, names: &[&str], text: &str) -> Result<u64> {
    names.iter().position(|n| *n == text).map(|i| i as u64).ok_or_else(|| {
        Error::invalid_arg(format!("Parameter '{name}' does not accept value '{text}'"))
    })
}

/// HMP's boolean words (QEMU's `qapi_bool_parse`: on/yes/true/y, off/no/false/n).
fn parse_hmp_bool(name: &str, text: &str) -> Result<u64> {
    match text {
        "on" | "yes" | "true" | "y" => Ok(1),
        "off" | "no" | "false" | "n" => Ok(0),
        _ => Err(Error::parse(format!("Parameter '{name}' expects 'on' or 'off'"))),
    }
}

/// The (already parsed and valid) JSON object names `param`.
fn json_names(json: &str, param: Parameter) -> bool {
    serde_json::from_str::<Map<String, Value>>(json).is_ok_and(|m| m.contains_key(param.name()))
}

fn unknown_parameter(name: &str) -> Error {
    Error::not_found(format!("Parameter '{name}' is unexpected"))
}

impl crate::Session {
    /// Replaces the whole parameter set after validating it; nothing changes on error.
    pub fn set_params(&self, params: Params) -> Result<()> {
        validate(&params)?;
        *write(&self.params) = params;
        Ok(())
    }

    /// Compare-and-set of `downtime-limit` alone, for the automatic raise: sets it to `new_ms`
    /// when it still is `expected_ms` and `auto-downtime-max` still is `auto_max_ms` (the
    /// figures the decision was made on), under the parameter lock. `Ok(false)` when either
    /// changed meanwhile; every other parameter is left as it is now.
    pub fn raise_downtime_limit_if(&self, expected_ms: u64, auto_max_ms: u64, new_ms: u64) -> Result<bool> {
        let mut params = write(&self.params);
        if params.downtime_limit_ms != expected_ms || params.auto_downtime_max_ms != auto_max_ms {
            return Ok(false);
        }
        let mut updated = params.clone();
        updated.downtime_limit_ms = new_ms;
        validate(&updated)?;
        *params = updated;
        Ok(true)
    }

    /// Replaces the capabilities.
    pub fn set_capabilities(&self, caps: Capabilities) -> Result<()> {
        *write(&self.caps) = caps;
        Ok(())
    }

    /// HMP `migrate_set_parameter <name> <value>`: bandwidths are sizes (MiB by default,
    /// `Invalid size <value>` on error), the others plain decimal integers. The result is
    /// validated as a whole; nothing changes on error. Allowed during a migration.
    pub fn set_parameter(&self, name: &str, value: &str) -> Result<()> {
        let param = Parameter::from_name(name).ok_or_else(|| unknown_parameter(name))?;
        let parsed = match param.kind() {
            ParamKind::Size => parse_size(value, 'M')?,
            ParamKind::Integer => parse_hmp_integer(name, value)?,
            ParamKind::Enum(names) => enum_index(name, names, value)?,
            ParamKind::Bool => parse_hmp_bool(name, value)?,
        };
        let mut params = write(&self.params);
        let mut updated = params.clone();
        param.set(&mut updated, parsed);
        validate(&updated)?;
        if param == Parameter::DeadlineAction {
            self.check_postcopy_action(&updated)?;
        }
        *params = updated;
        Ok(())
    }

    /// `deadline-action postcopy` needs capability `postcopy-ram` and no handler flagged
    /// `NO_POSTCOPY` when it is set (`SWO_ERR_UNSUPPORTED`). A `NO_POSTCOPY` handler
    /// registered later, or the capability turned off later, is met at the deadline: the
    /// action becomes `cancel` and the `MIGRATION_DEADLINE` event says why.
    fn check_postcopy_action(&self, params: &Params) -> Result<()> {
        if params.deadline_action != PolicyAction::Postcopy {
            return Ok(());
        }
        if !read(&self.caps).postcopy_ram {
            return Err(Error::unsupported(
                "Parameter 'deadline-action' value 'postcopy' needs capability postcopy-ram",
            ));
        }
        self.refuse_postcopy_devices().map_err(|e| {
            Error::unsupported(format!("Parameter 'deadline-action' value 'postcopy': {}", e.message))
        })
    }

    /// QMP `migrate-set-parameters`: merges the members of a JSON object over the current
    /// set, validates the whole result and applies all or nothing.
    pub fn set_parameters_json(&self, json: &str) -> Result<()> {
        let mut params = write(&self.params);
        let merged = merge_params_json(&params, json)?;
        if json_names(json, Parameter::DeadlineAction) {
            self.check_postcopy_action(&merged)?;
        }
        *params = merged;
        Ok(())
    }

    /// `query-migrate-parameters` as JSON.
    pub fn parameters_json(&self) -> String {
        params_to_json(&read(&self.params))
    }

    /// HMP `migrate_set_capability` / QMP `migrate-set-capabilities` for one capability.
    /// Refused while a migration is running, as QEMU does.
    pub fn set_capability(&self, name: &str, on: bool) -> Result<()> {
        let cap = Capability::from_name(name).ok_or_else(|| {
            Error::not_found(format!("Parameter 'capability' does not accept value '{name}'"))
        })?;
        let mut caps = write(&self.caps);
        if self.status().is_running() {
            return Err(Error::bad_state("There's a migration process in progress"));
        }
        *cap.field(&mut caps) = on;
        Ok(())
    }

    /// `query-migrate-capabilities` as JSON.
    pub fn capabilities_json(&self) -> String {
        capabilities_to_json(&read(&self.caps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MigrationStatus;
    use crate::Session;

    #[test]
    fn size_unit_steps_up_at_1000_of_the_current_unit() {
        // 1000 KiB = 1024000 B is the first value shown in MiB.
        assert_eq!(size_to_str(1_023_999), "1e+03 KiB");
        assert_eq!(size_to_str(1_024_000), "0.977 MiB");
    }

    #[test]
    fn capability_refused_while_running_with_qemu_message() {
        let sess = Session::new();
        sess.status.set(MigrationStatus::Active);
        let err = sess.set_capability("events", true).unwrap_err();
        assert_eq!(err.code, Code::BadState);
        assert_eq!(err.message, "There's a migration process in progress");
        assert!(!sess.capabilities().events);
        for status in [MigrationStatus::Setup, MigrationStatus::Device, MigrationStatus::Cancelling] {
            sess.status.set(status);
            assert_eq!(sess.set_capability("postcopy-ram", true).unwrap_err().code, Code::BadState);
        }
        sess.status.set(MigrationStatus::Completed);
        sess.set_capability("events", true).unwrap();
        assert!(sess.capabilities().events);
    }

    #[test]
    fn parameters_change_while_running() {
        let sess = Session::new();
        sess.status.set(MigrationStatus::Active);
        sess.set_parameter("downtime-limit", "1500").unwrap();
        assert_eq!(sess.params().downtime_limit_ms, 1500);
        sess.set_parameters_json(r#"{"downtime-limit": 2000}"#).unwrap();
        assert_eq!(sess.params().downtime_limit_ms, 2000);
    }
}
