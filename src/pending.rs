//! Pending data: the three buckets of QEMU 11.1's merged `save_query_pending` callback, what
//! reports them ([`PendingSource`]) and what a query asks ([`QueryKind`]). The handlers of a
//! session are kept by [`Registry`] (in `registry`, with its concurrency contract).
use bitflags::bitflags;

mod registry;
pub use registry::Registry;

/// Bytes a device (or all devices) still has to send, by when they can move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Can move while the guest runs; must reach the destination before it starts.
    pub precopy: u64,
    /// Can only move with the source stopped: the switchover downtime.
    pub stopcopy: u64,
    /// May move after the destination starts (postcopy).
    pub postcopy: u64,
}

impl Pending {
    /// `precopy + stopcopy + postcopy`, saturating at `u64::MAX`.
    pub fn total(&self) -> u64 {
        self.precopy.saturating_add(self.stopcopy).saturating_add(self.postcopy)
    }

    /// Adds each bucket of `other` into `self`, saturating.
    pub fn accumulate(&mut self, other: &Pending) {
        self.precopy = self.precopy.saturating_add(other.precopy);
        self.stopcopy = self.stopcopy.saturating_add(other.stopcopy);
        self.postcopy = self.postcopy.saturating_add(other.postcopy);
    }
}

bitflags! {
    /// Handler flags; at the ABI these are `SWO_HANDLER_*` bits of a `uint32_t`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct HandlerFlags: u32 {
        /// The exact query must run with the guest stopped (see the engine).
        const EXACT_NEEDS_STOPPED_VM = 1 << 0;
        /// The device cannot take part in postcopy (VFIO).
        const NO_POSTCOPY = 1 << 1;
    }
}

/// Something with migration state: RAM, a VFIO device, a C handler.
pub trait PendingSource: Send + Sync {
    /// Adds this source's pending bytes into `pending` (which the registry zeroed).
    /// `exact` asks for a synchronised figure; `final_` is the last query at switchover,
    /// with the guest stopped.
    fn save_query_pending(&self, pending: &mut Pending, exact: bool, final_: bool);

    /// Inactive sources are skipped by every query.
    fn is_active(&self) -> bool {
        true
    }

    /// What a query asks of one source: its figures from
    /// [`save_query_pending`](Self::save_query_pending) into a zeroed [`Pending`] when
    /// [`is_active`](Self::is_active), else zeros. A source may override it to do exactly
    /// that in one call (the C handlers do: a query then makes one dynamic call per handler,
    /// and the result comes back by value, so the query's sum stays in registers).
    fn pending_if_active(&self, exact: bool, final_: bool) -> Pending {
        let mut own = Pending::default();
        if self.is_active() {
            self.save_query_pending(&mut own, exact, final_);
        }
        own
    }
}

/// What kind of query to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// Cheap, every pass; syncs nothing.
    Fast,
    /// Synchronised (dirty-bitmap sync, VFIO size ioctls).
    Exact,
    /// The last, exact query at switchover with the guest stopped.
    Final,
}

impl QueryKind {
    pub fn exact(self) -> bool {
        !matches!(self, QueryKind::Fast)
    }
    pub fn is_final(self) -> bool {
        matches!(self, QueryKind::Final)
    }
}

/// Description of a registered handler, for reports and decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerInfo {
    pub id: u64,
    pub idstr: String,
    pub instance_id: u32,
    pub flags: HandlerFlags,
}
