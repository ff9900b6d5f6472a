//! What management tools read: `query-migrate` (a QMP `MigrationInfo`) and HMP
//! `info migrate`, laid out byte for byte as QEMU 11.1 prints them, plus the library's own
//! `x-switchover` member and `Stalled:` line.
//!
//! [`MigrationInfo`] is the report's data model, with each member present exactly when QEMU
//! has it for the status (docs/qemu-model.md §query-migrate); the engine fills it from its
//! snapshot, and the two renderers only lay it out.
pub mod qmp;
mod session;

use crate::size::size_to_str;
use crate::state::MigrationStatus;
use serde_json::{Map, Value};
use std::fmt::Write;

/// `query-migrate`'s `ram` member (all members always present).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RamInfo {
    pub transferred: u64,
    pub remaining: u64,
    pub total: u64,
    pub duplicate: u64,
    pub normal: u64,
    pub normal_bytes: u64,
    pub dirty_pages_rate: u64,
    pub mbps: f64,
    pub dirty_sync_count: u64,
    pub postcopy_requests: u64,
    pub page_size: u64,
    pub multifd_bytes: u64,
    pub pages_per_second: u64,
    pub precopy_bytes: u64,
    pub downtime_bytes: u64,
    pub postcopy_bytes: u64,
    pub dirty_sync_missed_zero_copy: u64,
}

/// The library's own figures, reported as `x-switchover` after QEMU's members.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct XSwitchover {
    /// Bytes that may be left for a switchover within `downtime-limit`.
    pub threshold_bytes: u64,
    /// Bytes per second the decision uses (`avail-switchover-bandwidth` or measured).
    pub switchover_bandwidth: u64,
    /// Total of the last exact query.
    pub last_sync_bytes: u64,
    pub stalled: bool,
    pub passes_since_progress: u64,
    /// Lowest system-wide remaining seen at a pass (0 before the first pass).
    pub best_remaining: u64,
    /// Advised `downtime-limit` in ms; 0 when no change is advised.
    pub recommended_downtime: u64,
    /// Time until the switchover can happen, in ms ([`crate::eta`]); `u64::MAX` = never
    /// (the remaining does not fall, or no bandwidth is known yet).
    pub eta: u64,
    /// Not a `query-migrate` member: a library extension is in use, so HMP shows the
    /// library's own lines (the ETA) even when no stall is reported.
    pub extensions_in_use: bool,
    /// Operator policy members, only while a policy parameter is set (so with every
    /// parameter at its default the report is as before).
    pub policy: Option<XPolicy>,
}

/// `x-switchover`'s operator-policy members (issue 15), appended after the others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct XPolicy {
    /// `SWO_REASON_*` name.
    pub reason: &'static str,
    /// One line a person reads.
    pub reason_text: String,
    /// The deadline in ms since the start, when one is set.
    pub deadline: Option<u64>,
    /// The deadline or stall action taken (`cancel`, `force-switchover`, `postcopy`).
    pub policy_action: Option<&'static str>,
    /// Expected downtime (ms) when the switchover began; with the measured downtime once it
    /// ended.
    pub predicted_downtime: Option<i64>,
    pub measured_downtime: Option<u64>,
    /// Bytes sent between the stop and the end of the downtime.
    pub switchover_bytes: Option<u64>,
    /// `switchover-bytes` ÷ the downtime, bytes/s.
    pub measured_switchover_bandwidth: Option<u64>,
}

/// A `MigrationInfo`: `None` members are absent from the JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationInfo {
    pub status: MigrationStatus,
    pub ram: Option<RamInfo>,
    /// System-wide remaining bytes (live states only).
    pub remaining: Option<u64>,
    /// `vfio.transferred` (only while a VFIO device exists).
    pub vfio_transferred: Option<u64>,
    pub total_time: Option<u64>,
    pub expected_downtime: Option<i64>,
    pub downtime: Option<u64>,
    pub setup_time: Option<u64>,
    pub error_desc: Option<String>,
    pub x_switchover: Option<XSwitchover>,
}

impl MigrationInfo {
    /// The `none` report: `{}` in JSON.
    pub fn empty() -> MigrationInfo {
        MigrationInfo {
            status: MigrationStatus::None,
            ram: None,
            remaining: None,
            vfio_transferred: None,
            total_time: None,
            expected_downtime: None,
            downtime: None,
            setup_time: None,
            error_desc: None,
            x_switchover: None,
        }
    }

    /// The JSON value, members in QEMU's order; `none` is `{}`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        if self.status == MigrationStatus::None {
            return Value::Object(m);
        }
        m.insert("status".into(), self.status.name().into());
        if let Some(ram) = &self.ram {
            m.insert("ram".into(), ram_value(ram));
        }
        if let Some(remaining) = self.remaining {
            m.insert("remaining".into(), remaining.into());
        }
        if let Some(t) = self.vfio_transferred {
            let mut vfio = Map::new();
            vfio.insert("transferred".into(), t.into());
            m.insert("vfio".into(), Value::Object(vfio));
        }
        if let Some(v) = self.total_time {
            m.insert("total-time".into(), v.into());
        }
        if let Some(v) = self.expected_downtime {
            m.insert("expected-downtime".into(), v.into());
        }
        if let Some(v) = self.downtime {
            m.insert("downtime".into(), v.into());
        }
        if let Some(v) = self.setup_time {
            m.insert("setup-time".into(), v.into());
        }
        if let Some(v) = &self.error_desc {
            m.insert("error-desc".into(), v.as_str().into());
        }
        if let Some(x) = &self.x_switchover {
            m.insert("x-switchover".into(), x_value(x));
        }
        Value::Object(m)
    }

    /// `query-migrate`'s return value as QMP text.
    pub fn to_qmp_json(&self) -> String {
        qmp::to_string(&self.to_value())
    }

    /// HMP `info migrate` (QEMU 11.1 layout). `downtime_limit_ms` is not printed by QEMU; the
    /// `Stalled:` line uses the advice instead. The library's own lines follow `Remaining:`
    /// in `active`: `Stalled:` while a stall is reported; else, only while an extension is in
    /// use, `ETA:` (`never`, `<n> ms`, `<s>.<d> s`). With neither the text is QEMU's.
    pub fn to_hmp_text(&self) -> String {
        let mut t = String::new();
        // QEMU's `hmp_info_migrate` prints from `query-migrate`'s members, and in `none`
        // `fill_source_migration_info` returns before setting any: nothing at all.
        if self.status == MigrationStatus::None {
            return t;
        }
        self.hmp_status_and_times(&mut t);
        self.hmp_switchover_lines(&mut t);
        if let Some(ram) = &self.ram {
            hmp_ram_info(&mut t, ram, self.vfio_transferred);
        }
        t
    }

    /// `Status:`, `Time (ms):` and `Remaining:`, as QEMU prints them.
    fn hmp_status_and_times(&self, t: &mut String) {
        // `writeln!` into a String cannot fail.
        let _ = write!(t, "Status: \t\t{}", self.status.name());
        // QEMU prints only the failed status's reason here (and for postcopy-paused, a status
        // this library does not have).
        match (&self.error_desc, self.status) {
            (Some(desc), MigrationStatus::Failed) => {
                let _ = writeln!(t, " ({desc})");
            }
            _ => t.push('\n'),
        }
        if let Some(total) = self.total_time.filter(|&v| v != 0) {
            let _ = write!(t, "Time (ms): \t\ttotal={total}");
            if let Some(v) = self.setup_time {
                let _ = write!(t, ", setup={v}");
            }
            if let Some(v) = self.expected_downtime {
                let _ = write!(t, ", exp_down={v}");
            }
            if let Some(v) = self.downtime {
                let _ = write!(t, ", down={v}");
            }
            t.push('\n');
        }
        if let Some(remaining) = self.remaining {
            let _ = writeln!(t, "Remaining: \t\t{}", size_to_str(remaining));
        }
    }

    /// The library's lines: `Reason:` (a policy parameter set), `ETA:` (extensions in use,
    /// not stalled) and `Stalled:`; none of them with every extension at its default.
    fn hmp_switchover_lines(&self, t: &mut String) {
        // The library's reason line, only while a policy parameter is set.
        if let Some(p) = self.x_switchover.as_ref().and_then(|x| x.policy.as_ref()) {
            let _ = writeln!(t, "Reason: \t\t{}", p.reason_text);
        }
        let live = self.status == MigrationStatus::Active;
        if let Some(x) = self.x_switchover.as_ref().filter(|x| live && !x.stalled && x.extensions_in_use) {
            let _ = writeln!(t, "ETA: \t\t\t{}", eta_text(x.eta));
        }
        // The stall, while one is reported (with no extension in use and no stall the text is
        // QEMU's).
        if let Some(x) = self.x_switchover.as_ref().filter(|x| x.stalled) {
            let _ = write!(
                t,
                "Stalled: \t\t{} passes, best remaining {}, ",
                x.passes_since_progress,
                size_to_str(x.best_remaining)
            );
            // No advice (0): the expected downtime is unknown, or above every allowed limit.
            let _ = match x.recommended_downtime {
                0 => writeln!(t, "no downtime-limit would converge"),
                ms => writeln!(t, "downtime-limit {ms} ms would converge"),
            };
        }
    }
}

/// `RAM info:` and its lines, as QEMU's `hmp_info_migrate` prints them; the VFIO bytes go on
/// the `Channels:` line.
fn hmp_ram_info(t: &mut String, ram: &RamInfo, vfio_transferred: Option<u64>) {
    let _ = writeln!(t, "RAM info:");
    let _ = writeln!(t, "  Throughput (Mbps): \t{:.2}", finite(ram.mbps));
    let _ = writeln!(
        t,
        "  Sizes: \t\tpagesize={}, total={}",
        size_to_str(ram.page_size),
        size_to_str(ram.total)
    );
    let _ = writeln!(
        t,
        "  Transfers: \t\ttransferred={}, remain={}",
        size_to_str(ram.transferred),
        size_to_str(ram.remaining)
    );
    let _ = write!(
        t,
        "    Channels: \t\tprecopy={}, multifd={}, postcopy={}",
        size_to_str(ram.precopy_bytes),
        size_to_str(ram.multifd_bytes),
        size_to_str(ram.postcopy_bytes)
    );
    if let Some(v) = vfio_transferred {
        let _ = write!(t, ", vfio={}", size_to_str(v));
    }
    t.push('\n');
    let _ = writeln!(t, "    Page Types: \tnormal={}, zero={}", ram.normal, ram.duplicate);
    let _ = write!(t, "  Page Rates (pps): \ttransfer={}", ram.pages_per_second);
    if ram.dirty_pages_rate != 0 {
        let _ = write!(t, ", dirty={}", ram.dirty_pages_rate);
    }
    t.push('\n');
    let _ = write!(t, "  Others: \t\tdirty_syncs={}", ram.dirty_sync_count);
    if ram.postcopy_requests != 0 {
        let _ = write!(t, ", postcopy_req={}", ram.postcopy_requests);
    }
    if ram.downtime_bytes != 0 {
        let _ = write!(t, ", downtime_bytes={}", ram.downtime_bytes);
    }
    if ram.dirty_sync_missed_zero_copy != 0 {
        let _ = write!(t, ", zerocopy_fallbacks={}", ram.dirty_sync_missed_zero_copy);
    }
    t.push('\n');
}

/// `never`, `<n> ms` below a second, else seconds with one decimal (`12.3 s`).
fn eta_text(eta_ms: u64) -> String {
    match eta_ms {
        crate::eta::ETA_NEVER => "never".to_string(),
        ms if ms < 1000 => format!("{ms} ms"),
        ms => format!("{}.{} s", ms / 1000, ms % 1000 / 100),
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

fn ram_value(r: &RamInfo) -> Value {
    let mut m = Map::new();
    let members: [(&str, Value); 17] = [
        ("transferred", r.transferred.into()),
        ("remaining", r.remaining.into()),
        ("total", r.total.into()),
        ("duplicate", r.duplicate.into()),
        ("normal", r.normal.into()),
        ("normal-bytes", r.normal_bytes.into()),
        ("dirty-pages-rate", r.dirty_pages_rate.into()),
        ("mbps", finite(r.mbps).into()),
        ("dirty-sync-count", r.dirty_sync_count.into()),
        ("postcopy-requests", r.postcopy_requests.into()),
        ("page-size", r.page_size.into()),
        ("multifd-bytes", r.multifd_bytes.into()),
        ("pages-per-second", r.pages_per_second.into()),
        ("precopy-bytes", r.precopy_bytes.into()),
        ("downtime-bytes", r.downtime_bytes.into()),
        ("postcopy-bytes", r.postcopy_bytes.into()),
        ("dirty-sync-missed-zero-copy", r.dirty_sync_missed_zero_copy.into()),
    ];
    for (k, v) in members {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

fn x_value(x: &XSwitchover) -> Value {
    let mut m = Map::new();
    m.insert("threshold".into(), x.threshold_bytes.into());
    m.insert("switchover-bandwidth".into(), x.switchover_bandwidth.into());
    m.insert("last-sync-bytes".into(), x.last_sync_bytes.into());
    m.insert("stalled".into(), x.stalled.into());
    m.insert("passes-since-progress".into(), x.passes_since_progress.into());
    m.insert("best-remaining".into(), x.best_remaining.into());
    m.insert("recommended-downtime".into(), x.recommended_downtime.into());
    m.insert("eta".into(), x.eta.into());
    if let Some(p) = &x.policy {
        m.insert("reason".into(), p.reason.into());
        m.insert("reason-text".into(), p.reason_text.as_str().into());
        let optional: [(&str, Option<Value>); 6] = [
            ("deadline", p.deadline.map(Value::from)),
            ("policy-action", p.policy_action.map(Value::from)),
            ("predicted-downtime", p.predicted_downtime.map(Value::from)),
            ("measured-downtime", p.measured_downtime.map(Value::from)),
            ("switchover-bytes", p.switchover_bytes.map(Value::from)),
            ("measured-switchover-bandwidth", p.measured_switchover_bandwidth.map(Value::from)),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
    }
    Value::Object(m)
}
