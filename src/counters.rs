//! Transfer statistics and the 100 ms bandwidth window (QEMU-BEHAVIOUR.md §The 100 ms window).
//!
//! The byte counters are the hot path: `swo_record_transferred` is one relaxed atomic add on a
//! cache-padded counter, no lock, safe from any number of threads. The window (bandwidth,
//! threshold, pages per second) is closed by [`Counters::update`] on the migration thread,
//! under a short lock that no callback ever runs under.
//!
//! Every counter saturates at `u64::MAX` instead of wrapping.
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
    /// the guest's run state at the time ([`MainBucket`]).
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

/// A relaxed add that sticks at `u64::MAX` instead of wrapping. The add itself stays one
/// atomic instruction; only an overflow (garbage input) pays for the extra store.
#[inline]
fn saturating_add(counter: &AtomicU64, n: u64) {
    let old = counter.fetch_add(n, Ordering::Relaxed);
    if old.checked_add(n).is_none() {
        counter.store(u64::MAX, Ordering::Relaxed);
    }
}

/// Byte totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteTotals {
    /// Main-channel bytes sent while the guest ran.
    pub precopy: u64,
    /// Main-channel bytes sent with the guest stopped, outside postcopy.
    pub downtime: u64,
    /// Main-channel bytes sent in postcopy (the source guest stopped).
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

/// The bucket a main-channel byte is filed in (QEMU's `ram_transferred_add`,
/// migration/ram.c): by the guest's run state, not by the migration status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MainBucket {
    /// The guest runs (`runstate_is_running()`): `precopy-bytes`.
    Precopy,
    /// The guest is stopped and the migration is in postcopy: `postcopy-bytes`.
    Postcopy,
    /// The guest is stopped otherwise: `downtime-bytes`.
    Downtime,
}

impl MainBucket {
    /// QEMU's order: a running guest's bytes are precopy bytes whatever the status; a stopped
    /// guest's are postcopy bytes in postcopy and downtime bytes otherwise.
    #[inline]
    pub fn classify(guest_running: bool, status: MigrationStatus) -> MainBucket {
        if guest_running {
            MainBucket::Precopy
        } else if status == MigrationStatus::PostcopyActive {
            MainBucket::Postcopy
        } else {
            MainBucket::Downtime
        }
    }
}

impl Counters {
    /// Counts `bytes` sent on `channel`; main-channel bytes go to `bucket`. Lock-free.
    #[inline]
    pub fn record(&self, channel: Channel, bucket: MainBucket, bytes: u64) {
        self.record_with(channel, || bucket, bytes);
    }

    /// [`Counters::record`] with the bucket worked out by `bucket` only when it matters (main
    /// channel): the hot path is then a couple of atomic loads at most and one relaxed add.
    #[inline]
    pub fn record_with(&self, channel: Channel, bucket: impl FnOnce() -> MainBucket, bytes: u64) {
        let counter = match channel {
            Channel::Multifd => &self.multifd,
            Channel::Main => match bucket() {
                MainBucket::Postcopy => &self.postcopy,
                MainBucket::Downtime => &self.downtime,
                MainBucket::Precopy => &self.precopy,
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

    /// Closes the window when `now_ms >= start + 100` (QEMU's `migration_update_counters`,
    /// migration/migration.c): measures the bandwidth over it in QEMU's order of operations,
    /// derives the threshold for `downtime_limit_ms` from the switchover bandwidth
    /// ([`switchover_bw`]), and opens the next window at `now_ms`. Returns whether a window
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
        let transferred = bytes.saturating_sub(w.start_bytes);
        let sent_pages = pages.saturating_sub(w.start_pages);
        let mbps = window_mbps(transferred, time_spent);
        let bw = switchover_bw(avail_switchover_bw, mbps);
        w.figures = WindowFigures {
            mbps,
            switchover_bw: bw,
            threshold: threshold_bytes(bw, downtime_limit_ms),
            // QEMU: `(double) transferred_pages / ((double) time_spent / 1000.0)` into a double
            // that `query-migrate` prints as an integer (truncated).
            pages_per_second: (sent_pages as f64 / (time_spent as f64 / 1000.0)) as u64,
        };
        w.start_ms = now_ms;
        w.start_bytes = bytes;
        w.start_pages = pages;
        true
    }
}

/// A window's throughput in Mbit/s, in QEMU's order of operations
/// (`migration_update_counters`): `((transferred * 8.0) / (time_spent / 1000.0)) / 1000.0 /
/// 1000.0`. A different order moves the last bit, and the threshold by a byte.
pub fn window_mbps(transferred: u64, time_spent_ms: u64) -> f64 {
    (((transferred as f64) * 8.0) / ((time_spent_ms as f64) / 1000.0)) / 1000.0 / 1000.0
}

/// The switchover bandwidth in bytes/s (QEMU's `migration_get_switchover_bw`):
/// `avail-switchover-bandwidth` when non-zero, else `mbps / 8 * 1000 * 1000`. QEMU reads it
/// whenever it is used, so callers pass the parameter's current value.
pub fn switchover_bw(avail_switchover_bw: u64, mbps: f64) -> f64 {
    if avail_switchover_bw != 0 {
        return avail_switchover_bw as f64;
    }
    mbps / 8.0 * 1000.0 * 1000.0
}

/// The threshold in bytes (QEMU's `migration_update_counters`):
/// `(switchover_bw / 1000) * downtime_limit`, converted from double. Rust's `as` saturates
/// and maps NaN to 0, so a threshold never wraps.
pub fn threshold_bytes(switchover_bw: f64, downtime_limit_ms: u64) -> u64 {
    ((switchover_bw / 1000.0) * downtime_limit_ms as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's `ram_transferred_add`: running → precopy, else postcopy in postcopy, else
    /// downtime; the status alone does not decide.
    #[test]
    fn ram_transferred_add_files_main_bytes_by_the_guests_run_state() {
        use MigrationStatus::*;
        assert_eq!(MainBucket::classify(true, Active), MainBucket::Precopy);
        assert_eq!(MainBucket::classify(false, Active), MainBucket::Downtime);
        assert_eq!(MainBucket::classify(false, Device), MainBucket::Downtime);
        assert_eq!(MainBucket::classify(false, PreSwitchover), MainBucket::Downtime);
        assert_eq!(MainBucket::classify(false, PostcopyActive), MainBucket::Postcopy);
        let c = Counters::default();
        c.record(Channel::Main, MainBucket::Precopy, 10);
        c.record(Channel::Main, MainBucket::Downtime, 21);
        c.record(Channel::Main, MainBucket::Postcopy, 30);
        c.record(Channel::Multifd, MainBucket::Precopy, 40);
        c.record(Channel::Multifd, MainBucket::Downtime, 2);
        let b = c.bytes();
        assert_eq!(b, ByteTotals { precopy: 10, downtime: 21, postcopy: 30, multifd: 42 });
        assert_eq!(b.transferred(), 103);
    }

    #[test]
    fn multifd_bytes_need_no_bucket_and_main_bytes_work_it_out_once() {
        let c = Counters::default();
        c.record_with(Channel::Multifd, || unreachable!("multifd bytes never need a bucket"), 7);
        let reads = std::cell::Cell::new(0);
        let bucket = || {
            reads.set(reads.get() + 1);
            MainBucket::Downtime
        };
        c.record_with(Channel::Main, bucket, 9);
        assert_eq!(reads.get(), 1);
        assert_eq!(c.bytes(), ByteTotals { precopy: 0, downtime: 9, postcopy: 0, multifd: 7 });
    }

    #[test]
    fn counters_saturate() {
        let c = Counters::default();
        c.record(Channel::Main, MainBucket::Precopy, u64::MAX - 1);
        c.record(Channel::Main, MainBucket::Precopy, 5);
        c.record(Channel::Multifd, MainBucket::Precopy, 5);
        assert_eq!(c.bytes().precopy, u64::MAX);
        assert_eq!(c.bytes().transferred(), u64::MAX);
    }

    #[test]
    fn backwards_clock_restarts_the_window_without_figures() {
        let c = Counters::default();
        c.reset(1000);
        c.record(Channel::Main, MainBucket::Precopy, 1_000_000);
        assert!(!c.update(500, 300, 0));
        assert_eq!(c.window(), WindowFigures::default());
        c.record(Channel::Main, MainBucket::Precopy, 1_000_000);
        assert!(c.update(600, 300, 0));
        assert_eq!(c.window().threshold, 3_000_000);
    }
}
