//! Migration parameters and capabilities (docs/qemu-model.md §Parameters), with the library's
//! own additions. Parsing and validation follow QEMU's HMP and QMP rules; sizes are parsed and
//! printed like QEMU's `qemu_strtosz_MiB` and `size_to_str` (in [`crate::size`]).
//!
//! Every parameter is one row of the table below ([`parameters!`]): its QMP/HMP name, its
//! field of [`Params`] with its type and default, how HMP and QMP write it ([`ParamKind`]) and
//! its range ([`Check`]). Parsing (HMP and QMP), validation, defaults, the JSON of
//! `query-migrate-parameters` and the README's parameter lists (checked by a test) all come
//! from it.
use crate::error::{Error, Result};

mod json;
pub use json::{capabilities_to_json, merge_params_json, params_to_json};
pub(crate) use json::json_names;
pub use crate::size::{parse_size, size_to_str};

/// QEMU's `MAX_MIGRATE_DOWNTIME`: the largest `downtime-limit`, in ms.
pub const MAX_MIGRATE_DOWNTIME_MS: u64 = 2000 * 1000;
/// The largest `deadline`: a year, in ms.
pub const MAX_DEADLINE_MS: u64 = 365 * 24 * 3600 * 1000;
/// The largest `deadline-per-gib`: a day per GiB, in ms.
pub const MAX_DEADLINE_PER_GIB_MS: u64 = 24 * 3600 * 1000;

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

/// A field's value as a parameter stores it (`Parameter::get` / `set`): an enum as its
/// index among the parameter's names, a bool as 0/1.
trait Stored: Sized {
    fn to_stored(&self) -> u64;
    fn from_stored(value: u64) -> Self;
}

impl Stored for u64 {
    fn to_stored(&self) -> u64 {
        *self
    }
    fn from_stored(value: u64) -> Self {
        value
    }
}

impl Stored for bool {
    fn to_stored(&self) -> u64 {
        *self as u64
    }
    fn from_stored(value: u64) -> Self {
        value != 0
    }
}

/// `deadline-action`: the index in [`DEADLINE_ACTIONS`]; out of range (callers parse names,
/// so it cannot come from outside) is the first value.
impl Stored for PolicyAction {
    fn to_stored(&self) -> u64 {
        *self as u64
    }
    fn from_stored(value: u64) -> Self {
        PolicyAction::ALL.get(value as usize).copied().unwrap_or(PolicyAction::Cancel)
    }
}

/// `stall-action`: 0 is `none`, then the actions as for `deadline-action`.
impl Stored for Option<PolicyAction> {
    fn to_stored(&self) -> u64 {
        self.map_or(0, |a| a.to_stored() + 1)
    }
    fn from_stored(value: u64) -> Self {
        value.checked_sub(1).map(PolicyAction::from_stored)
    }
}

/// The upper end of a parameter's range and how QEMU's message spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A number, printed as such.
    Num(u64),
    /// A number QEMU's message prints as the C expression it is written as.
    Text(u64, &'static str),
    /// `SIZE_MAX`, printed as C's `stringify(SIZE_MAX)` reads on this platform.
    SizeMax,
}

/// `MAX_MIGRATE_DOWNTIME`, spelt as QEMU's message spells it.
const DOWNTIME_MAX: Bound = Bound::Text(MAX_MIGRATE_DOWNTIME_MS, "(2000 * 1000)");

impl Bound {
    fn value(self) -> u64 {
        match self {
            Bound::Num(v) | Bound::Text(v, _) => v,
            Bound::SizeMax => usize::MAX as u64,
        }
    }

    fn text(self) -> String {
        match self {
            Bound::Num(v) => v.to_string(),
            Bound::Text(_, text) => text.to_owned(),
            Bound::SizeMax => size_max_text(),
        }
    }
}

/// What validation checks of a parameter (QEMU's `migrate_params_check` and the library's own
/// checks in its style).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Any value.
    None,
    /// `min ..= max`: else `Parameter '<name_with_underscores>' expects an integer in the
    /// range of <min> to <max>[ <unit>]`.
    Range { min: u64, max: Bound, unit: &'static str },
    /// One stored value (an enum's) is refused: `Parameter '<name>' does not accept value
    /// '<text>'`.
    Refuse { stored: u64, text: &'static str },
}

const fn upto(max: Bound, unit: &'static str) -> Check {
    Check::Range { min: 0, max, unit }
}

/// Declares the parameters: each row gives the `Parameter` variant, the QMP/HMP name, the
/// `Params` field with its documentation, type and default, its [`ParamKind`] and its
/// [`Check`]. Generates `Params`, its `Default`, `Parameter` with `ALL` (the rows' order) and
/// the per-parameter `name`, `kind`, `check`, `get` and `set`.
macro_rules! parameters {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $name:literal => $field:ident: $ty:ty = $default:expr, $kind:expr, $check:expr;
    )*) => {
        /// Migration parameters. Units: ms for times, bytes/s for bandwidths, percent for
        /// margins.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Params {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for Params {
            fn default() -> Params {
                Params { $( $field: $default, )* }
            }
        }

        /// One parameter, by its QMP/HMP name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Parameter {
            $( $variant, )*
        }

        impl Parameter {
            /// Every parameter, in the order `query-migrate-parameters` lists them (QEMU's
            /// own first, in QEMU's order, then the library's).
            pub const ALL: [Parameter; [$($name),*].len()] = [$( Parameter::$variant, )*];

            /// The QMP/HMP name, e.g. `downtime-limit`.
            pub fn name(self) -> &'static str {
                match self { $( Parameter::$variant => $name, )* }
            }

            /// How the parameter is written.
            pub fn kind(self) -> ParamKind {
                #[allow(unused_imports)]
                use ParamKind::*;
                match self { $( Parameter::$variant => $kind, )* }
            }

            /// What validation checks of it.
            pub fn check(self) -> Check {
                #[allow(unused_imports)]
                use Bound::*;
                match self { $( Parameter::$variant => $check, )* }
            }

            /// The stored value (an enum's index, a bool's 0/1).
            pub fn get(self, p: &Params) -> u64 {
                match self { $( Parameter::$variant => Stored::to_stored(&p.$field), )* }
            }

            /// Stores `value` (an enum's index, a bool's 0/1); an enum index out of range is
            /// stored as the first value (callers parse names, so it cannot come from outside).
            pub fn set(self, p: &mut Params, value: u64) {
                match self { $( Parameter::$variant => p.$field = Stored::from_stored(value), )* }
            }
        }
    };
}

parameters! {
    /// `max-bandwidth`, bytes/s: the transfer rate limit before switchover.
    MaxBandwidth "max-bandwidth" => max_bandwidth: u64 = 134_217_728,
        Size, upto(SizeMax, "bytes/second");
    /// `avail-switchover-bandwidth`, bytes/s; 0 = use the measured rate. Never throttles.
    AvailSwitchoverBandwidth "avail-switchover-bandwidth" => avail_switchover_bandwidth: u64 = 0,
        Size, upto(SizeMax, "bytes/second");
    /// `downtime-limit`, ms, at most 2 000 000.
    DowntimeLimit "downtime-limit" => downtime_limit_ms: u64 = 300,
        Integer, upto(DOWNTIME_MAX, "ms");
    /// `max-postcopy-bandwidth`, bytes/s; 0 = unlimited.
    MaxPostcopyBandwidth "max-postcopy-bandwidth" => max_postcopy_bandwidth: u64 = 0,
        Size, Check::None; // QEMU does not bound it.
    /// `rollback-tolerance`, percent over the threshold a final query may show before a
    /// switchover steps back (capability `switchover-rollback`).
    RollbackTolerance "rollback-tolerance" => rollback_tolerance_pct: u64 = 10,
        Integer, upto(Num(1000), "percent");
    /// `stall-margin`, percent: how far below the best remaining a pass must get to count as
    /// progress.
    StallMargin "stall-margin" => stall_margin_pct: u64 = 4,
        Integer, upto(Num(100), "percent");
    /// `stall-passes`: passes without progress that make a stall.
    StallPasses "stall-passes" => stall_passes: u64 = 5,
        Integer, Check::Range { min: 1, max: Num(1000), unit: "" };
    /// `downtime-headroom`, percent added to the expected downtime in the advice.
    DowntimeHeadroom "downtime-headroom" => downtime_headroom_pct: u64 = 10,
        Integer, upto(Num(1000), "percent");
    /// `auto-downtime-max`, ms; 0 = never raise `downtime-limit` by itself.
    AutoDowntimeMax "auto-downtime-max" => auto_downtime_max_ms: u64 = 0,
        Integer, upto(DOWNTIME_MAX, "ms");
    /// `bandwidth-window`, ms: the bandwidth window closes at the first `update_counters` at
    /// least this long after it opened (100, QEMU's, by default). A caller that sees the
    /// transfer only from outside, in samples that do not line up with the sender's
    /// rate-limit bursts (switchover-watch over QMP), widens it to average over many bursts.
    BandwidthWindow "bandwidth-window" => bandwidth_window_ms: u64 = 100,
        Integer, Check::Range { min: 100, max: Num(60_000), unit: "ms" };
    // -- operator policy (issue 15); every default leaves QEMU's behaviour unchanged --
    /// `deadline`, ms since `migration_start`; 0 = no fixed part.
    Deadline "deadline" => deadline_ms: u64 = 0,
        Integer, upto(Num(MAX_DEADLINE_MS), "ms");
    /// `deadline-per-gib`, ms per GiB of guest RAM (the RAM model's `total`); 0 = none.
    DeadlinePerGib "deadline-per-gib" => deadline_per_gib_ms: u64 = 0,
        Integer, upto(Num(MAX_DEADLINE_PER_GIB_MS), "ms");
    /// `deadline-action`: what happens at the deadline.
    DeadlineAction "deadline-action" => deadline_action: PolicyAction = PolicyAction::Cancel,
        Enum(&DEADLINE_ACTIONS), Check::None;
    /// `stall-action`: what happens at a stall; `None` = only report it.
    StallAction "stall-action" => stall_action: Option<PolicyAction> = None,
        Enum(&STALL_ACTIONS),
        Check::Refuse { stored: PolicyAction::Postcopy as u64 + 1, text: "postcopy" };
    /// `stall-action-passes`: passes without progress before the stall action (at least the
    /// stall itself, `stall-passes`).
    StallActionPasses "stall-action-passes" => stall_action_passes: u64 = 0,
        Integer, upto(Num(1000), "");
    /// `downtime-fixed`, ms: the part of the pause that does not depend on bytes (final
    /// vCPU/device state, reconnects). Counted in expected downtime, taken off the budget.
    DowntimeFixed "downtime-fixed" => downtime_fixed_ms: u64 = 0,
        Integer, upto(DOWNTIME_MAX, "ms");
    /// `report-reason`: the reason line in `x-switchover` and HMP even without other
    /// extensions in use.
    ReportReason "report-reason" => report_reason: bool = false, Bool, Check::None;
    /// `reuse-switchover-bandwidth`: at completion, the measured switchover bandwidth becomes
    /// `avail-switchover-bandwidth` for the next migration of the session.
    ReuseSwitchoverBandwidth "reuse-switchover-bandwidth" => reuse_switchover_bandwidth: bool = false,
        Bool, Check::None;
    /// `guest-dirty-rate`, bytes/s: the guest's write rate measured outside the migration's
    /// syncs over a short period (e.g. QEMU's `calc-dirty-rate`); 0 = not known. With it the
    /// stall advice is round-aware (`crate::stall::round_factor`); without it the advice is
    /// the expected downtime plus headroom.
    GuestDirtyRate "guest-dirty-rate" => guest_dirty_rate: u64 = 0,
        Size, upto(SizeMax, "bytes/second");
}

/// The order validation checks the parameters in (the first failure is reported): QEMU's
/// `migrate_params_check` order for its own, then the library's. Every parameter with a
/// [`Check`] appears once (a test makes sure).
const VALIDATION_ORDER: [Parameter; 15] = [
    Parameter::MaxBandwidth,
    Parameter::AvailSwitchoverBandwidth,
    Parameter::GuestDirtyRate,
    Parameter::DowntimeLimit,
    Parameter::RollbackTolerance,
    Parameter::StallMargin,
    Parameter::StallPasses,
    Parameter::BandwidthWindow,
    Parameter::DowntimeHeadroom,
    Parameter::AutoDowntimeMax,
    Parameter::Deadline,
    Parameter::DeadlinePerGib,
    Parameter::StallAction,
    Parameter::StallActionPasses,
    Parameter::DowntimeFixed,
];

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

impl Parameter {
    /// The parameter with this exact name.
    pub fn from_name(name: &str) -> Option<Parameter> {
        Parameter::ALL.into_iter().find(|p| p.name() == name)
    }

    /// True for the bandwidths, which HMP takes as sizes (MiB by default).
    pub fn is_size(self) -> bool {
        self.kind() == ParamKind::Size
    }

    /// The stored value's failure of its [`Check`], with QEMU's wording.
    fn validate(self, params: &Params) -> Result<()> {
        let value = self.get(params);
        match self.check() {
            Check::None => Ok(()),
            Check::Range { min, max, unit } => {
                if value >= min && value <= max.value() {
                    return Ok(());
                }
                let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
                Err(expects(
                    &self.name().replace('-', "_"),
                    &format!("an integer in the range of {min} to {}{unit}", max.text()),
                ))
            }
            Check::Refuse { stored, text } if value == stored => Err(Error::invalid_arg(format!(
                "Parameter '{}' does not accept value '{text}'",
                self.name()
            ))),
            Check::Refuse { .. } => Ok(()),
        }
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

    pub fn set(self, caps: &mut Capabilities, on: bool) {
        *self.field(caps) = on;
    }
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
    VALIDATION_ORDER.into_iter().try_for_each(|p| p.validate(params))
}

/// The index of `text` among an enum parameter's `names` (QAPI's wording when absent).
pub(crate) fn enum_index(name: &str, names: &[&str], text: &str) -> Result<u64> {
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

pub(crate) fn unknown_parameter(name: &str) -> Error {
    Error::not_found(format!("Parameter '{name}' is unexpected"))
}

/// What HMP `migrate_set_parameter <name> <value>` asks: the parameter, and the value to
/// store (bandwidths are sizes, MiB by default, `Invalid size <value>` on error; the others
/// plain decimal integers, enum names or on/off).
pub fn parse_hmp(name: &str, value: &str) -> Result<(Parameter, u64)> {
    let param = Parameter::from_name(name).ok_or_else(|| unknown_parameter(name))?;
    let parsed = match param.kind() {
        ParamKind::Size => parse_size(value, 'M')?,
        ParamKind::Integer => parse_hmp_integer(name, value)?,
        ParamKind::Enum(names) => enum_index(name, names, value)?,
        ParamKind::Bool => parse_hmp_bool(name, value)?,
    };
    Ok((param, parsed))
}

/// `current` with `param` set to `value`, validated as a whole.
pub fn with_value(current: &Params, param: Parameter, value: u64) -> Result<Params> {
    let mut updated = current.clone();
    param.set(&mut updated, value);
    validate(&updated)?;
    Ok(updated)
}

/// The capability named `name` (QEMU's wording when there is none).
pub fn parse_capability(name: &str) -> Result<Capability> {
    Capability::from_name(name).ok_or_else(|| {
        Error::not_found(format!("Parameter 'capability' does not accept value '{name}'"))
    })
}

#[cfg(test)]
mod tests;
