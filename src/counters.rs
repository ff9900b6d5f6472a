//! Transfer statistics and the 100 ms bandwidth window (docs/qemu-model.md §The 100 ms window).
//!
//! The byte counters are the hot path: `swo_record_transferred` is a relaxed load and one
//! relaxed atomic add on a cache-padded counter, no lock, safe from any number of threads. The
//! window (bandwidth, threshold, pages per second) is closed by [`Counters::update`] on the
//! migration thread, under a short lock that no callback ever runs under.
//!
//! Every counter saturates instead of wrapping, and never shows a wrapped value: it is exact
//! below 2^64 − 2^56 and reads `u64::MAX` from there on ([`saturating_add`] says why).
use crate::error::{Error, Result};
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use crate::locks::lock;

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
        Channel::known(value).ok_or_else(|| unknown_channel(value))
    }

    /// The channel with this number, if there is one (no error built: the hot path's check).
    #[inline]
    pub fn known(value: u32) -> Option<Channel> {
        match value {
            0 => Some(Channel::Main),
            1 => Some(Channel::Multifd),
            _ => None,
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

/// Raw counter values from here up read as saturated (`u64::MAX`): a counter is exact below
/// 2^64 − 2^56 (16 EiB − 64 PiB) and reads `u64::MAX` from there on. The 2^56 above it is
/// headroom that [`saturating_add`]'s fast path may fill but never wrap (see there).
pub(crate) const SATURATED: u64 = u64::MAX - HEADROOM + 1;
/// Addends below this may take the fast path (`fetch_add`); larger ones compare-and-swap.
pub(crate) const FAST_ADD_LIMIT: u64 = 1 << 32;
/// Adds that can be in flight at once, between their load and their `fetch_add`: one per
/// thread and nesting level. Linux caps a system's threads at 2^22 (`PID_MAX_LIMIT`,
/// include/linux/threads.h), so 2^24 also covers three signal handlers nested in each
/// thread, each inside a `swo_record_transferred`.
pub(crate) const IN_FLIGHT_LIMIT: u64 = 1 << 24;
/// What the fast adds still in flight when a counter saturates can add on top of it.
const HEADROOM: u64 = FAST_ADD_LIMIT * IN_FLIGHT_LIMIT;

/// A relaxed add that saturates instead of wrapping and never stores a wrapped sum (a
/// `fetch_add` followed by a store of `u64::MAX` on overflow let a concurrent reader see the
/// wrapped value in between, so `transferred` could go backwards in a report).
///
/// Fast path: a relaxed load, then one `fetch_add` (`lock xadd`, what a relaxed C add is) when
/// the counter is below [`SATURATED`] and `n` below [`FAST_ADD_LIMIT`]. The bound: once the
/// counter is at or above `SATURATED`, every later load sees that (it only grows until a
/// reset) and takes the slow path, which never adds; so what can still land on it is the
/// adds whose load came before — at most [`IN_FLIGHT_LIMIT`] of them, the one that crossed
/// included, each below `FAST_ADD_LIMIT`. The largest raw value is then below
/// `SATURATED + IN_FLIGHT_LIMIT × FAST_ADD_LIMIT` = `SATURATED + HEADROOM` = 2^64: no wrap.
/// [`read`] shows every raw value from `SATURATED` up as `u64::MAX`.
///
/// Slow path (a large `n`, or a saturated counter): a compare-and-swap of the exact sum, capped
/// at `SATURATED`; a saturated counter is not written again.
#[inline]
fn saturating_add(counter: &AtomicU64, n: u64) {
    if !fast_add(counter, n) {
        saturating_add_slow(counter, n);
    }
}

/// [`saturating_add`]'s fast path alone: adds and returns `true`, or changes nothing and returns
/// `false` when the add needs the slow path.
#[inline]
fn fast_add(counter: &AtomicU64, n: u64) -> bool {
    let fast = n < FAST_ADD_LIMIT && counter.load(Ordering::Relaxed) < SATURATED;
    if fast {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    fast
}

/// `extern "C"` for what that ABI promises the compiler: this cannot unwind (nothing in it can
/// panic; if it did, the process would abort). The hot path that calls it then needs no unwind
/// landing pad, nor the stack frame one costs (`swo_record_transferred` runs inside the
/// library's panic boundary, which is free only when nothing under it can unwind).
#[cold]
#[inline(never)]
extern "C" fn saturating_add_slow(counter: &AtomicU64, n: u64) {
    let mut old = counter.load(Ordering::Relaxed);
    loop {
        if old >= SATURATED {
            return;
        }
        let new = old.saturating_add(n).min(SATURATED);
        if new == old {
            return; // n == 0
        }
        match counter.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => old = seen,
        }
    }
}

/// A counter's value: the raw value below [`SATURATED`], `u64::MAX` from there up.
#[inline]
fn read(counter: &AtomicU64) -> u64 {
    match counter.load(Ordering::Relaxed) {
        raw if raw >= SATURATED => u64::MAX,
        raw => raw,
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

pub use crate::state::MainBucket;

impl Counters {
    /// Counts `bytes` sent on `channel`; main-channel bytes go to `bucket`. Lock-free.
    #[inline]
    pub fn record(&self, channel: Channel, bucket: MainBucket, bytes: u64) {
        self.record_with(channel, || bucket, bytes);
    }

    /// [`Counters::record`] with the bucket worked out by `bucket` only when it matters (main
    /// channel): the hot path is then one atomic load for the bucket at most
    /// ([`crate::state::StatusCell::main_bucket`]), the counter's load and one relaxed add.
    #[inline]
    pub fn record_with(&self, channel: Channel, bucket: impl FnOnce() -> MainBucket, bytes: u64) {
        saturating_add(self.counter(channel, bucket), bytes);
    }

    /// [`Counters::record_with`]'s fast path alone: `true` when the bytes are counted, `false`
    /// (nothing counted) when the add needs the slow path (an addend of 2^32 or more, or a
    /// counter at its bound); the caller then calls `record_with`, out of its hot path, so that
    /// the hot path makes no call at all.
    #[inline]
    pub fn try_record_fast(
        &self,
        channel: Channel,
        bucket: impl FnOnce() -> MainBucket,
        bytes: u64,
    ) -> bool {
        fast_add(self.counter(channel, bucket), bytes)
    }

    #[inline]
    fn counter(&self, channel: Channel, bucket: impl FnOnce() -> MainBucket) -> &AtomicU64 {
        match channel {
            Channel::Multifd => &self.multifd,
            // Two selects rather than a three-way match: the compiler turns this into
            // conditional moves, with no branch and no second decode of the bucket.
            Channel::Main => {
                let bucket = bucket();
                let stopped = match bucket {
                    MainBucket::Precopy => &self.precopy,
                    _ => &self.downtime,
                };
                match bucket {
                    MainBucket::Postcopy => &self.postcopy,
                    _ => stopped,
                }
            }
        }
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
            precopy: read(&self.precopy),
            downtime: read(&self.downtime),
            postcopy: read(&self.postcopy),
            multifd: read(&self.multifd),
        }
    }

    pub fn pages(&self) -> u64 {
        read(&self.pages)
    }

    pub fn postcopy_requests(&self) -> u64 {
        read(&self.postcopy_requests)
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
        self.update_window(now_ms, downtime_limit_ms, avail_switchover_bw, 100)
    }

    /// [`Counters::update`] with a window of at least `window_ms` (parameter
    /// `bandwidth-window`; never below QEMU's 100 ms).
    pub fn update_window(
        &self,
        now_ms: u64,
        downtime_limit_ms: u64,
        avail_switchover_bw: u64,
        window_ms: u64,
    ) -> bool {
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
        if time_spent < window_ms.max(100) {
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
    use crate::state::MigrationStatus;

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

    /// Issue 13, defect 3: a saturated counter never shows a wrapped value, not even for a
    /// moment to a concurrent reader (`fetch_add` then a store of `u64::MAX` used to expose
    /// the wrapped sum in between, so `transferred` could go backwards in a report).
    #[test]
    fn a_saturated_counter_never_reads_wrapped() {
        let adds: u64 = if cfg!(miri) { 50 } else { 2_000_000 };
        let c = Counters::default();
        c.record(Channel::Main, MainBucket::Precopy, u64::MAX);
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
                c.record(Channel::Main, MainBucket::Precopy, 1 << 40);
            }
            done.store(true, Ordering::Relaxed);
            let (reads, wrapped) = reader.join().unwrap();
            assert_eq!(wrapped, 0, "{wrapped} of {reads} reads saw a wrapped counter");
        });
        assert_eq!(c.bytes().precopy, u64::MAX);
    }

    /// The fast path's bound, worked by hand: the worst case is a counter one below
    /// `SATURATED` when every possible in-flight adder has loaded it, and each then adds the
    /// largest fast addend; the sum must still fit in 64 bits. Linux's `PID_MAX_LIMIT` (2^22
    /// on 64-bit, include/linux/threads.h) times four nesting levels fits in the in-flight
    /// bound.
    #[test]
    fn the_fast_paths_headroom_holds_every_in_flight_add() {
        const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;
        const { assert!(PID_MAX_LIMIT * 4 <= IN_FLIGHT_LIMIT) };
        assert_eq!(SATURATED, (1u128 << 64).wrapping_sub(1 << 56) as u64);
        let worst = u128::from(SATURATED - 1)
            + u128::from(IN_FLIGHT_LIMIT) * u128::from(FAST_ADD_LIMIT - 1);
        assert!(worst <= u128::from(u64::MAX), "{worst:#x} would wrap");
        // The slow path's crossing (a store of exactly `SATURATED`) leaves one adder less in
        // flight, so it is covered too.
        let worst_cas = u128::from(SATURATED)
            + u128::from(IN_FLIGHT_LIMIT - 1) * u128::from(FAST_ADD_LIMIT - 1);
        assert!(worst_cas <= u128::from(u64::MAX));
    }

    /// Below `SATURATED` a counter is exact, on either path; from there on it reads
    /// `u64::MAX`, however the adds that land above it (stale fast adds) move the raw value.
    #[test]
    fn counters_are_exact_below_the_bound_and_saturated_from_it() {
        let c = Counters::default();
        // Slow path (a large addend), exact.
        c.record(Channel::Multifd, MainBucket::Precopy, FAST_ADD_LIMIT);
        assert_eq!(c.bytes().multifd, FAST_ADD_LIMIT);
        c.record(Channel::Multifd, MainBucket::Precopy, SATURATED - 1 - FAST_ADD_LIMIT - 4096);
        assert_eq!(c.bytes().multifd, SATURATED - 1 - 4096);
        // Fast path up to one below the bound, exact.
        c.record(Channel::Multifd, MainBucket::Precopy, 4096);
        assert_eq!(c.bytes().multifd, SATURATED - 1);
        c.record(Channel::Multifd, MainBucket::Precopy, 0);
        assert_eq!(c.bytes().multifd, SATURATED - 1);
        // One more byte reaches the bound: saturated.
        c.record(Channel::Multifd, MainBucket::Precopy, 1);
        assert_eq!(c.bytes().multifd, u64::MAX);
        assert_eq!(c.multifd.load(Ordering::Relaxed), SATURATED);
        // What in-flight fast adds do to a saturated counter: raw values above the bound, up to
        // the headroom's end, all read `u64::MAX`.
        for raw in [SATURATED + 1, SATURATED + (FAST_ADD_LIMIT - 1) * 1000, u64::MAX] {
            c.multifd.store(raw, Ordering::Relaxed);
            assert_eq!(c.bytes().multifd, u64::MAX);
            assert_eq!(c.bytes().transferred(), u64::MAX);
            c.record(Channel::Multifd, MainBucket::Precopy, 4096);
            c.record(Channel::Multifd, MainBucket::Precopy, FAST_ADD_LIMIT);
            let unchanged = c.multifd.load(Ordering::Relaxed);
            assert_eq!(unchanged, raw, "a saturated counter is not written");
        }
        // Pages and postcopy requests saturate the same way.
        c.record_pages(u64::MAX);
        c.record_postcopy_requests(SATURATED);
        assert_eq!((c.pages(), c.postcopy_requests()), (u64::MAX, u64::MAX));
    }

    /// The fast path alone counts what it takes and leaves what it does not take untouched,
    /// so that the caller's slow path counts it exactly once.
    #[test]
    fn try_record_fast_takes_small_adds_below_the_bound_only() {
        let c = Counters::default();
        let unused = || unreachable!("multifd bytes never need a bucket");
        assert!(c.try_record_fast(Channel::Multifd, unused, FAST_ADD_LIMIT - 1));
        assert_eq!(c.bytes().multifd, FAST_ADD_LIMIT - 1);
        assert!(!c.try_record_fast(Channel::Multifd, unused, FAST_ADD_LIMIT));
        assert_eq!(c.bytes().multifd, FAST_ADD_LIMIT - 1);
        assert!(c.try_record_fast(Channel::Main, || MainBucket::Downtime, 7));
        assert_eq!(c.bytes().downtime, 7);
        c.record(Channel::Main, MainBucket::Downtime, SATURATED);
        assert!(!c.try_record_fast(Channel::Main, || MainBucket::Downtime, 1));
        assert_eq!(c.downtime.load(Ordering::Relaxed), SATURATED);
    }

    /// The near-limit path boundary under contention: three threads add fast-path amounts
    /// across the bound while a fourth adds slow-path amounts; a reader sees the counter only
    /// grow, never a wrapped (smaller) value, and it ends saturated.
    #[test]
    fn adds_across_the_bound_never_read_wrapped() {
        let adds: u64 = if cfg!(miri) { 20 } else { 200_000 };
        const STEP: u64 = 1 << 20;
        const SLOW_ADDS: u64 = 4;
        let c = Counters::default();
        // Start so that the counter crosses the bound half-way through.
        let start = SATURATED - (3 * adds * STEP + SLOW_ADDS * FAST_ADD_LIMIT) / 2;
        c.record(Channel::Multifd, MainBucket::Precopy, start);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let (mut reads, mut last, mut backwards) = (0u64, start, 0u64);
                while !done.load(Ordering::Relaxed) || reads == 0 {
                    let now = c.bytes().multifd;
                    if now < last {
                        backwards += 1;
                    }
                    last = now;
                    reads += 1;
                }
                (reads, backwards)
            });
            let adders: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        for _ in 0..adds {
                            c.record(Channel::Multifd, MainBucket::Precopy, STEP);
                        }
                    })
                })
                .collect();
            for _ in 0..SLOW_ADDS {
                c.record(Channel::Multifd, MainBucket::Precopy, FAST_ADD_LIMIT);
                std::thread::yield_now();
            }
            for a in adders {
                a.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
            let (reads, backwards) = reader.join().unwrap();
            assert_eq!(backwards, 0, "{backwards} of {reads} reads went backwards (wrapped)");
        });
        assert_eq!(c.bytes().multifd, u64::MAX);
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
