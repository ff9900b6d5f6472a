//! Device garbage and faults as warnings: their kinds, the `DEVICE_SIZE_WARNING` event they
//! become (once per device and kind).
use serde_json::{json, Value};

/// The name of the warning event.
pub const WARNING_EVENT: &str = "DEVICE_SIZE_WARNING";

/// The kinds of device garbage, each warned about once per device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningKind {
    StopCopyOverflow,
    PrecopyInitOverflow,
    PrecopyDirtyOverflow,
    StopCopyQueryFailed,
    PrecopyQueryFailed,
    PrecopyInfoUnavailable,
    PrecopyExceedsStopCopy,
    ReadExceedsCache,
    PrecopyInitGrew,
}

impl WarningKind {
    /// The `kind` member of the warning event.
    pub fn name(self) -> &'static str {
        match self {
            WarningKind::StopCopyOverflow => "stop-copy-overflow",
            WarningKind::PrecopyInitOverflow => "precopy-init-overflow",
            WarningKind::PrecopyDirtyOverflow => "precopy-dirty-overflow",
            WarningKind::StopCopyQueryFailed => "stop-copy-query-failed",
            WarningKind::PrecopyQueryFailed => "precopy-query-failed",
            WarningKind::PrecopyInfoUnavailable => "precopy-info-unavailable",
            WarningKind::PrecopyExceedsStopCopy => "precopy-exceeds-stop-copy",
            WarningKind::ReadExceedsCache => "read-exceeds-cache",
            WarningKind::PrecopyInitGrew => "precopy-init-grew",
        }
    }

    /// The kind's bit in a device's set of kinds already warned about.
    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// One problem found in a re-read or a recorded read.
pub(crate) struct Warning {
    pub(crate) kind: WarningKind,
    pub(crate) value: u64,
    pub(crate) message: String,
}

impl Warning {
    /// The data of the warning event for device `device`.
    pub(crate) fn event_data(&self, device: &str) -> Value {
        json!({
            "device": device,
            "kind": self.kind.name(),
            "value": self.value,
            "message": self.message,
        })
    }
}
