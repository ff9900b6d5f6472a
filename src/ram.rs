//! The built-in RAM model (issue: convergence engine), so a VMM need not write its own RAM
//! handler.
//!
//! A [`Ram`] registers a pending-data handler (idstr `ram`, instance 0) on its session. Its
//! fast query reports `dirty pages × page size`; its exact (and final) query first runs the
//! VMM's dirty-bitmap sync ([`DirtySync`]), which says how many dirty pages are left and how
//! many were newly dirtied since the previous sync. The bytes go to the precopy bucket, or to
//! the postcopy bucket while the `postcopy-ram` capability is on (docs/qemu-model.md §Pending
//! buckets).
//!
//! Page counts, the total, the page size and the dirty-pages rate feed `query-migrate`'s `ram`
//! members through [`RamSlot::figures`].
//!
//! Ownership: the handle ([`Ram`]) keeps its session alive with an `Arc`; the registered
//! handler only holds a `Weak` to it, so there is no cycle. Both share the figures
//! ([`RamState`]) through an `Arc`, and the session's [`RamSlot`] holds them too while the model
//! exists.
use crate::error::{Code, Error, Result};
use crate::pending::{HandlerFlags, Pending, PendingSource};
use crate::reentrancy;
use crate::Session;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use crate::locks::lock;

/// The idstr the RAM model registers under (QEMU's savevm id for RAM).
pub const RAM_IDSTR: &str = "ram";

/// The smallest page size accepted, in bytes (smaller than any target's page).
pub const MIN_PAGE_SIZE: u64 = 512;

/// The largest page size accepted, in bytes (1 GiB, the largest huge page).
pub const MAX_PAGE_SIZE: u64 = 1 << 30;

/// The dirty-pages rate is measured over windows of at least this many ms.
pub const DIRTY_RATE_WINDOW_MS: u64 = 1000;

/// RAM figures for reports (`query-migrate`'s `ram` members that belong to the RAM model).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RamFigures {
    /// Guest RAM size in bytes (`ram.total`).
    pub total_bytes: u64,
    /// Target page size in bytes (`ram.page-size`).
    pub page_size: u64,
    /// Pages sent with content (`ram.normal`); `normal-bytes` = normal * page_size.
    pub normal_pages: u64,
    /// Zero pages sent (`ram.duplicate`).
    pub zero_pages: u64,
    /// Dirty pages still to send (`ram.remaining` = dirty_pages * page_size).
    pub dirty_pages: u64,
    /// Pages dirtied per second, measured over windows of at least 1000 ms
    /// (`ram.dirty-pages-rate`).
    pub dirty_pages_rate: u64,
}

/// What one dirty-bitmap sync found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncResult {
    /// Dirty pages left to send after the sync.
    pub dirty_pages: u64,
    /// Pages newly dirtied since the previous sync.
    pub newly_dirtied: u64,
}

/// The VMM's dirty-bitmap sync, run by exact (and final) queries. It may run on whichever
/// thread queries, several at once, and never with a library lock held.
pub trait DirtySync: Send + Sync {
    fn sync_dirty(&self) -> SyncResult;
}

/// The dirty-pages-rate window: pages newly dirtied since `start_ms`.
#[derive(Default)]
struct RateWindow {
    /// Session clock at the first sync of the window; `None` until a sync opens one.
    start_ms: Option<u64>,
    newly_dirtied: u64,
    /// The rate of the last window that closed, pages per second.
    rate: u64,
}

/// The figures of one RAM model, shared by its handle, its handler and the session's slot.
pub struct RamState {
    total_bytes: u64,
    page_size: u64,
    total_pages: u64,
    dirty_pages: AtomicU64,
    normal_pages: AtomicU64,
    zero_pages: AtomicU64,
    rate: Mutex<RateWindow>,
    /// Set once a garbage size from `sync_dirty` was reported (re-armed by a reset).
    warned: AtomicBool,
}

fn saturating_add(counter: &AtomicU64, value: u64) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| Some(c.saturating_add(value)));
}

impl RamState {
    fn new(total_bytes: u64, page_size: u64) -> RamState {
        RamState {
            total_bytes,
            page_size,
            total_pages: total_bytes / page_size,
            dirty_pages: AtomicU64::new(0),
            normal_pages: AtomicU64::new(0),
            zero_pages: AtomicU64::new(0),
            rate: Mutex::new(RateWindow::default()),
            warned: AtomicBool::new(false),
        }
    }

    fn figures(&self) -> RamFigures {
        RamFigures {
            total_bytes: self.total_bytes,
            page_size: self.page_size,
            normal_pages: self.normal_pages.load(Ordering::Acquire),
            zero_pages: self.zero_pages.load(Ordering::Acquire),
            dirty_pages: self.dirty_pages.load(Ordering::Acquire),
            dirty_pages_rate: lock(&self.rate).rate,
        }
    }

    /// Dirty bytes; cannot overflow since dirty pages never exceed the total pages.
    fn dirty_bytes(&self) -> u64 {
        self.dirty_pages.load(Ordering::Acquire).saturating_mul(self.page_size)
    }

    fn reset(&self, now_ms: u64) {
        self.normal_pages.store(0, Ordering::Release);
        self.zero_pages.store(0, Ordering::Release);
        *lock(&self.rate) = RateWindow { start_ms: Some(now_ms), ..RateWindow::default() };
        self.warned.store(false, Ordering::Release);
    }

    /// Adds a sync's newly dirtied pages to the period and, once more than
    /// [`DIRTY_RATE_WINDOW_MS`] have passed since the period started (strictly), sets the rate
    /// to `pages × 1000 / elapsed` and starts the next period: QEMU's
    /// `migration_bitmap_sync` (migration/ram.c), `end_time > time_last_bitmap_sync + 1000`.
    /// The period starts at `migration_start` (QEMU's `ram_init_bitmaps` syncs at setup, which
    /// finds no newly dirtied page since every page starts dirty), or for a model created
    /// later at its first sync (QEMU: `if (!rs->time_last_bitmap_sync)`).
    fn note_newly_dirtied(&self, newly: u64, now_ms: u64) {
        let mut w = lock(&self.rate);
        let start = *w.start_ms.get_or_insert(now_ms);
        w.newly_dirtied = w.newly_dirtied.saturating_add(newly);
        if now_ms > start.saturating_add(DIRTY_RATE_WINDOW_MS) {
            let elapsed = now_ms - start;
            let rate = u128::from(w.newly_dirtied) * 1000 / u128::from(elapsed);
            w.rate = u64::try_from(rate).unwrap_or(u64::MAX);
            w.newly_dirtied = 0;
            w.start_ms = Some(now_ms);
        }
    }
}

/// Checks the sizes given to [`Ram::new`]: a power-of-two page size within
/// [`MIN_PAGE_SIZE`, `MAX_PAGE_SIZE`], a non-zero total that is a whole number of pages.
pub fn validate_sizes(total_bytes: u64, page_size: u64) -> Result<()> {
    if !page_size.is_power_of_two() {
        return Err(Error::invalid_arg(format!(
            "RAM page size {page_size} is not a power of two"
        )));
    }
    if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(Error::out_of_range(format!(
            "RAM page size {page_size} is outside {MIN_PAGE_SIZE}..{MAX_PAGE_SIZE} bytes"
        )));
    }
    if total_bytes == 0 {
        return Err(Error::invalid_arg("RAM total size must not be 0"));
    }
    if total_bytes % page_size != 0 {
        return Err(Error::invalid_arg(format!(
            "RAM total size {total_bytes} is not a multiple of the page size {page_size}"
        )));
    }
    Ok(())
}

/// The pending-data handler the model registers. Owned by the session's registry.
struct RamHandler {
    session: Weak<Session>,
    state: Arc<RamState>,
    sync: Option<Box<dyn DirtySync>>,
}

impl RamHandler {
    /// Runs the dirty-bitmap sync (no lock held) and takes its figures, clamping garbage.
    fn sync(&self, session: Option<&Session>) {
        let Some(sync) = &self.sync else { return };
        let found = sync.sync_dirty();
        let total = self.state.total_pages;
        let dirty = found.dirty_pages.min(total);
        let newly = found.newly_dirtied.min(total);
        self.state.dirty_pages.store(dirty, Ordering::Release);
        let Some(session) = session else { return };
        if (dirty != found.dirty_pages || newly != found.newly_dirtied)
            && !self.state.warned.swap(true, Ordering::AcqRel)
        {
            session.emit(
                "DEVICE_SIZE_WARNING",
                json!({
                    "device": RAM_IDSTR,
                    "kind": "dirty-pages-overflow",
                    "message": format!(
                        "{RAM_IDSTR}: sync_dirty reported more pages than the RAM has ({total}); clamped"
                    ),
                    "dirty-pages": found.dirty_pages,
                    "newly-dirtied": found.newly_dirtied,
                    "total-pages": total,
                }),
            );
        }
        let now = session.clock_ms.load(Ordering::Acquire);
        self.state.note_newly_dirtied(newly, now);
    }
}

impl PendingSource for RamHandler {
    fn save_query_pending(&self, pending: &mut Pending, exact: bool, _final: bool) {
        // The registry's caller holds the session, so this upgrade is never its last owner.
        let session = self.session.upgrade();
        if exact {
            self.sync(session.as_deref());
        }
        let bytes = self.state.dirty_bytes();
        let postcopy = session.as_deref().is_some_and(|s| s.capabilities().postcopy_ram);
        let mine = if postcopy {
            Pending { postcopy: bytes, ..Pending::default() }
        } else {
            Pending { precopy: bytes, ..Pending::default() }
        };
        pending.accumulate(&mine);
    }
}

/// The built-in RAM model of one session. Dropping it unregisters it (see [`Ram::close`]).
pub struct Ram {
    session: Arc<Session>,
    state: Arc<RamState>,
    /// The registry id while registered.
    handler_id: Mutex<Option<u64>>,
}

impl Ram {
    /// Creates the session's RAM model and registers its handler (`ram`, instance 0).
    /// `sync` is the dirty-bitmap sync run by exact queries; without one, exact queries sync
    /// nothing and the dirty count only changes through [`Ram::set_dirty_pages`] and
    /// [`Ram::record_sent`]. The model starts with no dirty pages.
    ///
    /// Errors: sizes as [`validate_sizes`]; `Exists` when the session already has a RAM
    /// model (or another handler `ram`/0); `Reentrant` from a callback of the session.
    pub fn new(
        session: &Arc<Session>,
        total_bytes: u64,
        page_size: u64,
        sync: Option<Box<dyn DirtySync>>,
    ) -> Result<Ram> {
        validate_sizes(total_bytes, page_size)?;
        let state = Arc::new(RamState::new(total_bytes, page_size));
        let handler =
            RamHandler { session: Arc::downgrade(session), state: state.clone(), sync };
        let id = session
            .registry()
            .register(RAM_IDSTR, 0, HandlerFlags::empty(), Box::new(handler))
            .map_err(|e| match e.code {
                Code::Exists => Error::exists(format!(
                    "the session already has a RAM model (handler '{RAM_IDSTR}' instance 0)"
                )),
                _ => e,
            })?;
        session.ram.install(state.clone());
        Ok(Ram { session: session.clone(), state, handler_id: Mutex::new(Some(id)) })
    }

    /// Sets the dirty page count (e.g. from the VMM's own bitmap). More pages than the RAM
    /// has is `OutOfRange`, and nothing changes. Any thread.
    pub fn set_dirty_pages(&self, pages: u64) -> Result<()> {
        if pages > self.state.total_pages {
            return Err(Error::out_of_range(format!(
                "{pages} dirty pages is more than the RAM's {} pages",
                self.state.total_pages
            )));
        }
        self.state.dirty_pages.store(pages, Ordering::Release);
        Ok(())
    }

    /// Records pages sent: adds to the normal and zero (`duplicate`) page counts
    /// (saturating), lowers the dirty count by the pages sent (floor 0), and counts them for
    /// `pages-per-second`. Any thread.
    pub fn record_sent(&self, normal_pages: u64, zero_pages: u64) {
        let sent = normal_pages.saturating_add(zero_pages);
        saturating_add(&self.state.normal_pages, normal_pages);
        saturating_add(&self.state.zero_pages, zero_pages);
        let _ = self
            .state
            .dirty_pages
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| Some(d.saturating_sub(sent)));
        self.session.counters.record_pages(sent);
    }

    /// The model's current figures.
    pub fn figures(&self) -> RamFigures {
        self.state.figures()
    }

    /// The session the model belongs to.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Unregisters the handler, waiting until no query runs its callback (after this returns
    /// `sync` is never called again), and empties the session's RAM slot. Idempotent.
    /// From a callback of the same session it cannot wait: `Reentrant`, and the model stays
    /// registered and working.
    pub fn close(&self) -> Result<()> {
        reentrancy::check(self.session.id(), "swo_ram_free")?;
        let mut id = lock(&self.handler_id);
        if let Some(handler) = *id {
            match self.session.registry().unregister(handler) {
                Ok(()) | Err(Error { code: Code::NotFound, .. }) => {}
                Err(e) => return Err(e),
            }
            *id = None;
            self.session.ram.remove(&self.state);
        }
        Ok(())
    }
}

impl Drop for Ram {
    /// Unregisters like [`Ram::close`]. Dropped inside a callback of its session, the handler
    /// stays registered (and its sync owned by it) until the session goes.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The session's RAM model, when the VMM created one (figures for reports).
#[derive(Default)]
pub struct RamSlot {
    current: Mutex<Option<Arc<RamState>>>,
}

impl RamSlot {
    /// The figures of the session's RAM model, `None` when there is none.
    pub fn figures(&self) -> Option<RamFigures> {
        lock(&self.current).as_ref().map(|s| s.figures())
    }

    fn install(&self, state: Arc<RamState>) {
        *lock(&self.current) = Some(state);
    }

    /// Empties the slot if it still holds `state`.
    fn remove(&self, state: &Arc<RamState>) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, state)) {
            *current = None;
        }
    }
}

impl RamSlot {
    /// Resets the RAM statistics (pages sent, dirty rate) at `migration_start` (`now_ms`),
    /// where the dirty-rate period starts. Total, page size and dirty pages stay; the
    /// garbage-size warning is re-armed.
    pub fn reset(&self, now_ms: u64) {
        if let Some(state) = lock(&self.current).as_ref() {
            state.reset(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_validated_with_the_offending_number_in_the_message() {
        assert!(validate_sizes(1 << 30, 4096).is_ok());
        let e = validate_sizes(1 << 30, 4000).unwrap_err();
        assert_eq!(e.code, Code::InvalidArg);
        assert!(e.message.contains("4000"), "{}", e.message);
        assert_eq!(validate_sizes(1 << 30, 0).unwrap_err().code, Code::InvalidArg);
        assert_eq!(validate_sizes(1 << 30, 256).unwrap_err().code, Code::OutOfRange);
        assert_eq!(validate_sizes(1 << 40, 1 << 31).unwrap_err().code, Code::OutOfRange);
        assert_eq!(validate_sizes(0, 4096).unwrap_err().code, Code::InvalidArg);
        let e = validate_sizes(4096 * 3 + 1, 4096).unwrap_err();
        assert_eq!(e.code, Code::InvalidArg);
        assert!(e.message.contains("12289"), "{}", e.message);
    }

    /// QEMU's `migration_bitmap_sync`: the rate changes only when more than 1000 ms have
    /// passed since the period started (strictly), over the whole period.
    #[test]
    fn migration_bitmap_sync_updates_the_rate_only_after_more_than_1000_ms() {
        let s = RamState::new(1 << 32, 4096);
        s.note_newly_dirtied(100, 0);
        s.note_newly_dirtied(100, 999);
        s.note_newly_dirtied(100, 1000);
        assert_eq!(s.figures().dirty_pages_rate, 0, "1000 ms is not more than 1000 ms");
        s.note_newly_dirtied(200, 2000);
        // 500 pages over 2000 ms
        assert_eq!(s.figures().dirty_pages_rate, 250);
    }

    /// The example (QEMU's `ram_init_bitmaps` + `migration_bitmap_sync`): setup at 0,
    /// syncs at 1500 ms (+30 pages), 2500 ms (+50) and 2600 ms (+0) report 20, 20, 45.
    #[test]
    fn ram_init_bitmaps_starts_the_period_at_setup() {
        let s = RamState::new(1 << 32, 4096);
        s.reset(0);
        let mut seen = Vec::new();
        for (at, pages) in [(1500, 30), (2500, 50), (2600, 0)] {
            s.note_newly_dirtied(pages, at);
            seen.push(s.figures().dirty_pages_rate);
        }
        assert_eq!(seen, [20, 20, 45]);
    }

    #[test]
    fn slot_follows_the_model_and_reset_keeps_sizes_and_dirty_pages() {
        let s = Arc::new(Session::new());
        assert_eq!(s.ram.figures(), None);
        let ram = Ram::new(&s, 1 << 30, 4096, None).unwrap();
        ram.set_dirty_pages(1000).unwrap();
        ram.record_sent(10, 20);
        ram.state.note_newly_dirtied(5000, 0);
        ram.state.note_newly_dirtied(0, 1001);
        ram.state.warned.store(true, Ordering::SeqCst);
        let f = s.ram.figures().unwrap();
        assert_eq!((f.normal_pages, f.zero_pages, f.dirty_pages, f.dirty_pages_rate), (10, 20, 970, 4995));
        s.ram.reset(5000);
        assert_eq!(
            s.ram.figures().unwrap(),
            RamFigures { total_bytes: 1 << 30, page_size: 4096, dirty_pages: 970, ..Default::default() }
        );
        assert!(!ram.state.warned.load(Ordering::SeqCst));
        // The period restarts at the reset (migration_start).
        ram.state.note_newly_dirtied(100, 5500);
        ram.state.note_newly_dirtied(100, 6000);
        assert_eq!(s.ram.figures().unwrap().dirty_pages_rate, 0);
        ram.close().unwrap();
        assert_eq!(s.ram.figures(), None);
        ram.close().unwrap(); // idempotent
    }

    #[test]
    fn closing_an_old_model_does_not_empty_a_newer_models_slot() {
        let s = Arc::new(Session::new());
        let old = Ram::new(&s, 1 << 30, 4096, None).unwrap();
        old.close().unwrap();
        let new = Ram::new(&s, 2 << 30, 4096, None).unwrap();
        drop(old);
        assert_eq!(s.ram.figures().unwrap().total_bytes, 2 << 30);
        drop(new);
        assert_eq!(s.ram.figures(), None);
    }
}
