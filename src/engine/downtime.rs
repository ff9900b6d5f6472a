//! The downtime formulas: QEMU's expected downtime, with the library's fixed part, and the
//! switchover bandwidth a finished downtime measured.
use super::EngineState;
use crate::params::Params;

/// Expected downtime in ms (QEMU's `migration_downtime_calc_expected`, migration/migration.c):
/// the `downtime-limit` while `pass <= 1` (before the first exact pass), else `trunc(last_sync_bytes / switchover_bw * 1000)`, and `INT64_MAX` when that
/// is NaN, infinite or at least 2^63 (no bandwidth measured yet).
pub fn expected_downtime_ms(pass: u64, last_sync_bytes: u64, switchover_bw: f64, limit_ms: u64) -> i64 {
    if pass <= 1 {
        return i64::try_from(limit_ms).unwrap_or(i64::MAX);
    }
    // Literally QEMU's order of operations (seconds first, then ms), so the truncation lands
    // where QEMU's does: 70,000 B at 3,333,333.33 B/s is 20.999... ms → 20, not 21.
    let ms = last_sync_bytes as f64 / switchover_bw * 1000.0;
    if ms.is_nan() || ms >= 9_223_372_036_854_775_808.0 {
        return i64::MAX;
    }
    // A negative bandwidth cannot happen (it is a count over a positive time); clamp anyway.
    ms.max(0.0) as i64
}

/// The expected downtime with the fixed part (`downtime-fixed`) added: the bytes' time, plus
/// the pause that does not depend on bytes. QEMU's placeholder before the first exact pass
/// (the limit) and its "unknown" (`INT64_MAX`) stay as they are.
pub fn expected_with_fixed(pass: u64, last_sync_bytes: u64, bw: f64, params: &Params) -> i64 {
    let bytes_ms = expected_downtime_ms(pass, last_sync_bytes, bw, params.downtime_limit_ms);
    if pass <= 1 || bytes_ms == i64::MAX {
        return bytes_ms;
    }
    bytes_ms.saturating_add(i64::try_from(params.downtime_fixed_ms).unwrap_or(i64::MAX))
}

/// The switchover bandwidth seen: bytes sent between the stop and the end of the downtime
/// divided by that time, in bytes/s; `None` before the downtime ended or when it lasted 0 ms.
pub(crate) fn measured_switchover_bw(st: &EngineState) -> Option<f64> {
    let bytes = st.switchover_bytes?;
    let ms = st.downtime_ms.filter(|&ms| ms != 0)?;
    Some(bytes as f64 * 1000.0 / ms as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_downtime_follows_the_behaviour_list() {
        assert_eq!(expected_downtime_ms(0, 5, 0.0, 300), 300);
        assert_eq!(expected_downtime_ms(1, 1 << 40, 1.0, 300), 300);
        // 1,000,000 B at 80 Mbps (10,000,000 B/s) → 100 ms; at 4,000,000 B/s → 250 ms.
        assert_eq!(expected_downtime_ms(2, 1_000_000, 80.0 / 8.0 * 1e6, 300), 100);
        assert_eq!(expected_downtime_ms(2, 1_000_000, 4_000_000.0, 300), 250);
        assert_eq!(expected_downtime_ms(2, 1_000_000, 0.0, 300), i64::MAX);
        assert_eq!(expected_downtime_ms(2, 0, 0.0, 300), i64::MAX);
        assert_eq!(expected_downtime_ms(2, u64::MAX, 1e-3, 300), i64::MAX);
        // 0 / 0 is NaN.
        assert_eq!(expected_downtime_ms(2, 0, 0.0, 300), i64::MAX);
        // Seconds first, then ms: 70,000 / (1e7 / 3) = 0.020999999999999998 s → 20 ms.
        assert_eq!(expected_downtime_ms(2, 70_000, 1e7 / 3.0, 300), 20);
    }

    #[test]
    fn fixed_downtime_adds_to_a_computed_expectation_only() {
        let mut p = Params::default();
        p.downtime_fixed_ms = 50;
        // 1,000,000 B at 10,000,000 B/s = 100 ms, + 50 ms fixed.
        assert_eq!(expected_with_fixed(2, 1_000_000, 1e7, &p), 150);
        // Before the first exact pass QEMU's placeholder is the limit itself.
        assert_eq!(expected_with_fixed(1, 1_000_000, 1e7, &p), 300);
        assert_eq!(expected_with_fixed(2, 1_000_000, 0.0, &p), i64::MAX);
    }
}
