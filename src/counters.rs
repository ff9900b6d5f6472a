//! Transfer statistics and the 100 ms bandwidth window (QEMU-BEHAVIOUR.md §The 100 ms window).
//!
//! The byte counters are the hot path: `swo_record_transferred` is one relaxed atomic add on a
//! cache-padded counter, no lock, safe from any number of threads. The window (bandwidth,
//! threshold, pages per second) is closed by [`Counters::update`] on the migration thread,
//! under a short lock that no callback ever runs under.
//!
//! Every counter saturates at `u64::MAX` instead of wrapping, and never shows a wrapped value.
use crate::error::{Error, Result};
use crate::state::MigrationStatus;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A migration channel (`SWO_CHANNEL_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Channel {
    /// The main migration stream: its bytes count as precopy, downtime or postcopy bytes by
    /// the status at the time.
    Main = 0,
    /// A multifd channel: counted as `multifd-bytes`.
    Multifd = 1,
}

impl Channel {
    #[inline]
    pub fn from_u32(value: u32) -> Result<Channel> {
        match value {
            0 => Ok(Channel::Main),
            1 => Ok(Channel::Multifd),
            _ => Err(unknown_channel(value)),
        }
    }
}

/// Out of line and cold, so that `swo_record_transferred`'s hot path carries no formatting.
#[cold]
#[inline(never)]
fn unknown_channel(value: u32) -> Error {
    Error::invalid_arg(format!(
        "unknown channel {value} (SWO_CHANNEL_MAIN 0 or SWO_CHANNEL_MULTIFD 1 expected)"
    ))
}

/// What one closed window measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowFigures {
    /// Measured throughput in Mbit/s (10^6 bits per second).
    pub mbps: f64,
    /// Bytes per second the decision assumes for the switchover: `avail-switchover-bandwidth`
    /// when set, else the measured rate.
    pub switchover_bw: f64,
    /// Bytes that fit in `downtime-limit` at `switchover_bw`; 0 until the first window closes.
    pub threshold: u64,
    /// Pages (normal + zero) sent per second in the window.
    pub pages_per_second: u64,
}

#[derive(Default)]
struct Window {
    start_ms: u64,
    start_bytes: u64,
    start_pages: u64,
    figures: WindowFigures,
}

/// Atomic transfer counters of one session, and its bandwidth window.
#[derive(Default)]
pub struct Counters {
    precopy: CachePadded<AtomicU64>,
    downtime: CachePadded<AtomicU64>,
    postcopy: CachePadded<AtomicU64>,
    multifd: CachePadded<AtomicU64>,
    pages: CachePadded<AtomicU64>,
    postcopy_requests: CachePadded<AtomicU64>,
    window: Mutex<Window>,
}

/// A relaxed add that sticks at `u64::MAX` instead of wrapping, without ever storing a
/// wrapped sum: a compare-and-swap of the saturated sum. (A `fetch_add` followed by a store of
/// `u64::MAX` on overflow let a concurrent reader see the wrapped value in between, so
/// `transferred` could go backwards in a report.) Uncontended, this is one load and one
/// `lock cmpxchg`, about the cost of the `lock xadd` it replaces (benches/bench_pending.c
/// compares it with a relaxed C add); a saturated counter is not written again.
#[inline]
fn saturating_add(counter: &AtomicU64, n: u64) {
    let mut old = counter.load(Ordering::Relaxed);
    loop {
        let new = old.saturating_add(n);
        if new == old {
            return; // n == 0, or already saturated
        }
        match counter.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => old = seen,
        }
    }
}

/// Byte totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteTotals {
    /// Main-channel bytes sent while the guest ran (status setup / active).
    pub precopy: u64,
    /// Main-channel bytes sent with the guest stopped before the destination ran
    /// (status pre-switchover / device).
    pub downtime: u64,
    /// Main-channel bytes sent in postcopy.
    pub postcopy: u64,
    /// Bytes sent on multifd channels.
    pub multifd: u64,
}

impl ByteTotals {
    /// Everything sent on every channel (`ram.transferred`), saturating.
    pub fn transferred(&self) -> u64 {
        self.precopy
            .saturating_add(self.downtime)
            .saturating_add(self.postcopy)
            .saturating_add(self.multifd)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Counters {
    /// Counts `bytes` sent on `channel`. Main-channel bytes are filed by `status`: postcopy in
    /// `postcopy-active`, downtime in `pre-switchover` and `device` (the guest is stopped
    /// there), precopy otherwise. Lock-free.
    #[inline]
    pub fn record(&self, channel: Channel, status: MigrationStatus, bytes: u64) {
        self.record_with(channel, || status, bytes);
    }

    /// [`Counters::record`] with the status read by `status` only when the bucket depends on
    /// it (main channel): the hot path is then one status load at most and one relaxed add.
    #[inline]
    pub fn record_with(
        &self,
        channel: Channel,
        status: impl FnOnce() -> MigrationStatus,
        bytes: u64,
    ) {
        let counter = match channel {
            Channel::Multifd => &self.multifd,
            Channel::Main => match status() {
                MigrationStatus::PostcopyActive => &self.postcopy,
                MigrationStatus::PreSwitchover | MigrationStatus::Device => &self.downtime,
                _ => &self.precopy,
            },
        };
        saturating_add(counter, bytes);
    }

    /// Counts pages sent (normal + zero), for `pages-per-second`. Called by the RAM model's
    /// `swo_ram_record_sent`; lock-free.
    pub fn record_pages(&self, pages: u64) {
        saturating_add(&self.pages, pages);
    }

    /// Counts page requests from the destination in postcopy (`postcopy-requests`).
    pub fn record_postcopy_requests(&self, requests: u64) {
        saturating_add(&self.postcopy_requests, requests);
    }

    pub fn bytes(&self) -> ByteTotals {
        ByteTotals {
            precopy: self.precopy.load(Ordering::Relaxed),
            downtime: self.downtime.load(Ordering::Relaxed),
            postcopy: self.postcopy.load(Ordering::Relaxed),
            multifd: self.multifd.load(Ordering::Relaxed),
        }
    }

    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }

    pub fn postcopy_requests(&self) -> u64 {
        self.postcopy_requests.load(Ordering::Relaxed)
    }

    /// The figures of the last closed window (all 0 before the first one closes).
    pub fn window(&self) -> WindowFigures {
        lock(&self.window).figures
    }

    /// Zeroes every counter and opens the first window at `now_ms` (`migration_start`).
    pub fn reset(&self, now_ms: u64) {
        let mut w = lock(&self.window);
        for c in [
            &self.precopy,
            &self.downtime,
            &self.postcopy,
            &self.multifd,
            &self.pages,
            &self.postcopy_requests,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *w = Window { start_ms: now_ms, ..Window::default() };
    }

    /// Closes the window when `now_ms >= start + 100` (QEMU's `migration_update_counters`):
    /// measures the bandwidth over it, derives the switchover bandwidth and the threshold for
    /// `downtime_limit_ms`, and opens the next window at `now_ms`. Returns whether a window
    /// closed.
    ///
    /// A clock that goes backwards (`now_ms` before the window's start) closes nothing: the
    /// window restarts at `now_ms`, dropping the partial window's measurement (the bytes stay
    /// counted in the totals), and the last figures stay as they were. No figure can become
    /// negative or NaN.
    pub fn update(&self, now_ms: u64, downtime_limit_ms: u64, avail_switchover_bw: u64) -> bool {
        let mut w = lock(&self.window);
        let bytes = self.bytes().transferred();
        let pages = self.pages();
        if now_ms < w.start_ms {
            w.start_ms = now_ms;
            w.start_bytes = bytes;
            w.start_pages = pages;
            return false;
        }
        let time_spent = now_ms - w.start_ms;
        if time_spent < 100 {
            return false;
        }
        // Counters only move backwards across a reset; a window spanning one measures 0.
        let transferred = bytes.saturating_sub(w.start_bytes) as f64;
        let sent_pages = pages.saturating_sub(w.start_pages) as f64;
        let seconds = time_spent as f64 / 1000.0;
        let mbps = transferred * 8.0 / seconds / 1e6;
        // The measured rate in bytes/s is `mbps / 8 * 1e6`; computed straight from the bytes
        // it skips two roundings (the QEMU 7.2 replay in tests/ matches to the byte).
        let measured_bw = transferred * 1000.0 / time_spent as f64;
        let switchover_bw =
            if avail_switchover_bw != 0 { avail_switchover_bw as f64 } else { measured_bw };
        // `as` saturates and maps NaN to 0: a threshold never wraps.
        let threshold = (switchover_bw / 1000.0 * downtime_limit_ms as f64) as u64;
        w.figures = WindowFigures {
            mbps,
            switchover_bw,
            threshold,
            pages_per_second: (sent_pages / seconds) as u64,
        };
        w.start_ms = now_ms;
        w.start_bytes = bytes;
        w.start_pages = pages;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_channel_bytes_are_filed_by_status() {
        let c = Counters::default();
        c.record(Channel::Main, MigrationStatus::Active, 10);
        c.record(Channel::Main, MigrationStatus::Device, 20);
        c.record(Channel::Main, MigrationStatus::PreSwitchover, 1);
        c.record(Channel::Main, MigrationStatus::PostcopyActive, 30);
        c.record(Channel::Multifd, MigrationStatus::Active, 40);
        c.record(Channel::Multifd, MigrationStatus::Device, 2);
        let b = c.bytes();
        assert_eq!(b, ByteTotals { precopy: 10, downtime: 21, postcopy: 30, multifd: 42 });
        assert_eq!(b.transferred(), 103);
    }

    #[test]
    fn multifd_bytes_need_no_status_and_main_bytes_read_it_once() {
        let c = Counters::default();
        c.record_with(Channel::Multifd, || unreachable!("multifd bytes never read the status"), 7);
        let reads = std::cell::Cell::new(0);
        let status = || {
            reads.set(reads.get() + 1);
            MigrationStatus::Device
        };
        c.record_with(Channel::Main, status, 9);
        assert_eq!(reads.get(), 1);
        assert_eq!(c.bytes(), ByteTotals { precopy: 0, downtime: 9, postcopy: 0, multifd: 7 });
    }

    #[test]
    fn counters_saturate() {
        let c = Counters::default();
        c.record(Channel::Main, MigrationStatus::Active, u64::MAX - 1);
        c.record(Channel::Main, MigrationStatus::Active, 5);
        c.record(Channel::Multifd, MigrationStatus::Active, 5);
        assert_eq!(c.bytes().precopy, u64::MAX);
        assert_eq!(c.bytes().transferred(), u64::MAX);
    }

    /// Issue 13, defect 3: a saturated counter never shows a wrapped value, not even for a
    /// moment to a concurrent reader (`fetch_add` then a store of `u64::MAX` used to expose
    /// the wrapped sum in between, so `transferred` could go backwards in a report).
    #[test]
    fn a_saturated_counter_never_reads_wrapped() {
        let adds: u64 = if cfg!(miri) { 50 } else { 2_000_000 };
        let c = Counters::default();
        c.record(Channel::Main, MigrationStatus::Active, u64::MAX);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let (mut reads, mut wrapped) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) || reads == 0 {
                    if c.bytes().precopy != u64::MAX {
                        wrapped += 1;
                    }
                    reads += 1;
                }
                (reads, wrapped)
            });
            for _ in 0..adds {
                c.record(Channel::Main, MigrationStatus::Active, 1 << 40);
            }
            done.store(true, Ordering::Relaxed);
            let (reads, wrapped) = reader.join().unwrap();
            assert_eq!(wrapped, 0, "{wrapped} of {reads} reads saw a wrapped counter");
        });
        assert_eq!(c.bytes().precopy, u64::MAX);
    }

    #[test]
    fn backwards_clock_restarts_the_window_without_figures() {
        let c = Counters::default();
        c.reset(1000);
        c.record(Channel::Main, MigrationStatus::Active, 1_000_000);
        assert!(!c.update(500, 300, 0));
        assert_eq!(c.window(), WindowFigures::default());
        c.record(Channel::Main, MigrationStatus::Active, 1_000_000);
        assert!(c.update(600, 300, 0));
        assert_eq!(c.window().threshold, 3_000_000);
    }
}
