//! A migration session: the handlers, parameters, counters, engine and events of one
//! outgoing migration. Shared by the VMM's threads (it is `Sync`).
//!
//! This is the one file with `impl Session`: the fields (what a session owns) and every call,
//! each delegating to a part that knows nothing of sessions: the handler registry
//! (`crate::pending::Registry`), the parameter store (`crate::params`), the migration engine
//! (`crate::engine`, which sees the session through its `Host` trait, implemented here), the
//! VFIO totals (`crate::vfio::model`), the reports (`crate::report`), events and hooks.
use crate::counters::{Channel, Counters};
use crate::engine::{
    Calls, Engine, Host, Lifecycle, Policy, Snapshot, Snapshots, Step, Steps, SwitchoverOutcome,
};
use crate::error::{Error, Result};
use crate::events::{self, EventQueue};
use crate::locks::{read, write};
use crate::params::{self, Capabilities, Parameter, Params, PolicyAction};
use crate::report::MigrationInfo;
use crate::pending::{Pending, QueryKind, Registry};
use crate::reentrancy::{self, CallbackScope};
use crate::state::{MigrationStatus, StatusCell};
use crate::ram::RamSlot;
use crate::vfio::model::VfioTotals;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub use crate::hooks::{InstalledHooks, VmmHooks};

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// One outgoing migration's state.
pub struct Session {
    pub(crate) id: u64,
    pub(crate) registry: Registry,
    pub(crate) params: RwLock<Params>,
    pub(crate) caps: RwLock<Capabilities>,
    pub(crate) status: StatusCell,
    /// System-wide remaining: the total of the last query, fast or exact.
    pub(crate) remaining: AtomicU64,
    /// The latest `now_ms` any call brought; events are stamped with it.
    pub(crate) clock_ms: AtomicU64,
    pub(crate) vmm: RwLock<Option<Arc<InstalledHooks>>>,
    pub(crate) events: EventQueue,
    pub(crate) counters: Counters,
    pub(crate) engine: Engine,
    pub(crate) ram: RamSlot,
    pub(crate) vfio: VfioTotals,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    pub fn new() -> Session {
        let id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
        Session {
            id,
            registry: Registry::new(id),
            params: RwLock::new(Params::default()),
            caps: RwLock::new(Capabilities::default()),
            status: StatusCell::default(),
            remaining: AtomicU64::new(0),
            clock_ms: AtomicU64::new(0),
            vmm: RwLock::new(None),
            events: EventQueue::default(),
            counters: Counters::default(),
            engine: Engine::default(),
            ram: RamSlot::default(),
            vfio: VfioTotals::default(),
        }
    }

    /// A process-unique id (never reused, unlike addresses).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The session's VFIO figures (`vfio.transferred`, device count).
    pub fn vfio_totals(&self) -> &VfioTotals {
        &self.vfio
    }

    pub fn params(&self) -> Params {
        read(&self.params).clone()
    }

    pub fn capabilities(&self) -> Capabilities {
        *read(&self.caps)
    }

    pub fn status(&self) -> MigrationStatus {
        self.status.get()
    }

    /// The system-wide remaining bytes: the total of the last query.
    pub fn remaining(&self) -> u64 {
        self.remaining.load(Ordering::Acquire)
    }

    /// Installs (or with `None` removes) the VMM's hooks, and returns once no thread runs or
    /// can still start one of the hooks installed before (a caller that took them before the
    /// swap is waited for, as `swo_unregister_handler` waits for a handler's callbacks): what
    /// the old hooks use may be released then. From a callback of this session it would wait
    /// for itself: `Reentrant`, and nothing changes.
    pub fn set_vmm(&self, hooks: Option<Arc<dyn VmmHooks>>) -> Result<()> {
        reentrancy::check(self.id, "swo_session_set_vmm_ops")?;
        let new = hooks.map(|h| Arc::new(InstalledHooks(h)));
        let old = std::mem::replace(&mut *write(&self.vmm), new);
        if let Some(mut old) = old {
            // No new clone of `old` can be taken (it left the slot under the write lock);
            // `get_mut` succeeds once every other clone is dropped, with acquire ordering,
            // so whatever the hooks did happens before this returns.
            let mut spins = 0u32;
            while Arc::get_mut(&mut old).is_none() {
                spins = spins.saturating_add(1);
                if spins < 64 {
                    std::hint::spin_loop();
                } else if spins < 1024 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
        }
        Ok(())
    }

    /// The installed hooks; holding the result keeps [`Session::set_vmm`] waiting.
    pub fn vmm(&self) -> Option<Arc<InstalledHooks>> {
        read(&self.vmm).clone()
    }

    /// Notes the caller's clock; time never goes backwards for event stamps.
    pub fn observe_clock(&self, now_ms: u64) {
        self.clock_ms.fetch_max(now_ms, Ordering::AcqRel);
    }

    /// Runs a query over every active handler and stores its total as the system-wide
    /// remaining. Callers must hold no lock a handler callback could need.
    pub fn query_pending(&self, kind: QueryKind) -> Result<Pending> {
        let pending = self.registry.query(kind)?;
        self.remaining.store(pending.total(), Ordering::Release);
        // The ETA's drain rate, on the caller's latest clock (no handler runs past here, and
        // no caller holds the engine state while it queries).
        let now = self.clock_ms.load(Ordering::Acquire);
        self.engine_state().drain.observe(now, pending.total(), kind != QueryKind::Fast);
        Ok(pending)
    }

    /// Queues an event; it is delivered by [`Session::flush_events`].
    pub fn emit(&self, name: &str, data: Value) {
        let now = self.clock_ms.load(Ordering::Acquire);
        self.events.push(events::format_event(now, name, data));
    }

    /// Queues a `MIGRATION`-family event only when the `events` capability is on (QEMU gates
    /// `MIGRATION` and `MIGRATION_PASS` on it, `migrate_generate_event` and
    /// `migration_iteration_go_next`). The library's `MIGRATION_STALL`,
    /// `MIGRATION_DOWNTIME_ADJUSTED` and `MIGRATION_SWITCHOVER_ROLLBACK` follow the same
    /// capability, so a VMM with every extension at its default sees QEMU's events only;
    /// `DEVICE_SIZE_WARNING` goes out always (`emit`): it is the VMM's only warning channel.
    pub fn emit_if_events_on(&self, name: &str, data: Value) {
        if self.capabilities().events {
            self.emit(name, data);
        }
    }

    /// Delivers queued events to the VMM's `event` hook (dropped when there is none).
    /// Called by every entry point once it holds no lock. The hook is a callback like every
    /// other: the thread is marked as inside a callback of this session while it runs, so
    /// what may not run from a callback (freeing the session or a model of it, waiting calls)
    /// is refused there instead of freeing the session under this loop.
    pub fn flush_events(&self) {
        if self.events.is_empty() {
            return;
        }
        let hooks = self.vmm();
        let _scope = CallbackScope::enter(self.id);
        self.events.drain(|event| {
            if let Some(h) = &hooks {
                h.event(event);
            }
        });
    }

    // ---- parameters and capabilities (the store: `crate::params`) ----------------------------

    /// Replaces the whole parameter set after validating it; nothing changes on error.
    pub fn set_params(&self, params: Params) -> Result<()> {
        params::validate(&params)?;
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
        *params = params::with_value(&params, Parameter::DowntimeLimit, new_ms)?;
        Ok(true)
    }

    /// Replaces the capabilities.
    pub fn set_capabilities(&self, caps: Capabilities) -> Result<()> {
        *write(&self.caps) = caps;
        Ok(())
    }

    /// HMP `migrate_set_parameter <name> <value>` ([`params::parse_hmp`]). The result is
    /// validated as a whole; nothing changes on error. Allowed during a migration.
    pub fn set_parameter(&self, name: &str, value: &str) -> Result<()> {
        let (param, parsed) = params::parse_hmp(name, value)?;
        let mut params = write(&self.params);
        let updated = params::with_value(&params, param, parsed)?;
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
        let merged = params::merge_params_json(&params, json)?;
        if params::json_names(json, Parameter::DeadlineAction) {
            self.check_postcopy_action(&merged)?;
        }
        *params = merged;
        Ok(())
    }

    /// `query-migrate-parameters` as JSON.
    pub fn parameters_json(&self) -> String {
        params::params_to_json(&read(&self.params))
    }

    /// HMP `migrate_set_capability` / QMP `migrate-set-capabilities` for one capability.
    /// Refused while a migration is running, as QEMU does.
    pub fn set_capability(&self, name: &str, on: bool) -> Result<()> {
        let cap = params::parse_capability(name)?;
        let mut caps = write(&self.caps);
        if self.status().is_running() {
            return Err(Error::bad_state("There's a migration process in progress"));
        }
        cap.set(&mut caps, on);
        Ok(())
    }

    /// `query-migrate-capabilities` as JSON.
    pub fn capabilities_json(&self) -> String {
        params::capabilities_to_json(&read(&self.caps))
    }

    // ---- reports (`crate::report`, from the engine's snapshot) -------------------------------

    /// `query-migrate`'s data at `now_ms`. Any thread, any time; never calls a handler.
    pub fn migration_info(&self, now_ms: u64) -> MigrationInfo {
        MigrationInfo::from_snapshot(&self.snapshot(now_ms))
    }

    /// `query-migrate`'s return value as QMP JSON text.
    pub fn query_migrate_json(&self, now_ms: u64) -> String {
        self.migration_info(now_ms).to_qmp_json()
    }

    /// HMP `info migrate`.
    pub fn info_migrate_text(&self, now_ms: u64) -> String {
        self.migration_info(now_ms).to_hmp_text()
    }
}


// ---- the migration engine (`crate::engine`) --------------------------------------------------

impl Session {
    /// `migration_start`: from `none`, `completed`, `cancelled` or `failed` to `setup`,
    /// resetting every statistic ([`Lifecycle::migration_start`]).
    pub fn migration_start(&self, now_ms: u64) -> Result<()> {
        Lifecycle::migration_start(self, now_ms)
    }

    /// `setup` to `active` ([`Lifecycle::setup_done`]).
    pub fn setup_done(&self, now_ms: u64) -> Result<()> {
        Lifecycle::setup_done(self, now_ms)
    }

    /// Counts bytes sent on `channel` ([`Lifecycle::record_transferred`]).
    pub fn record_transferred(&self, channel: Channel, bytes: u64) {
        Lifecycle::record_transferred(self, channel, bytes)
    }

    /// `record_transferred`'s lock-free fast path alone; false when it cannot take it
    /// ([`Lifecycle::try_record_transferred_fast`]).
    pub fn try_record_transferred_fast(&self, channel: Channel, bytes: u64) -> bool {
        Lifecycle::try_record_transferred_fast(self, channel, bytes)
    }

    /// Closes the bandwidth window when it is due; true when it closed
    /// ([`Lifecycle::update_counters`]).
    pub fn update_counters(&self, now_ms: u64) -> Result<bool> {
        Lifecycle::update_counters(self, now_ms)
    }

    /// Starts the switchover: pause, final query, rollback or proceed
    /// ([`Lifecycle::switchover_begin`]).
    pub fn switchover_begin(&self, now_ms: u64) -> Result<SwitchoverOutcome> {
        Lifecycle::switchover_begin(self, now_ms)
    }

    /// QMP `migrate-continue` ([`Lifecycle::migrate_continue`]).
    pub fn migrate_continue(&self, expected: MigrationStatus) -> Result<()> {
        Lifecycle::migrate_continue(self, expected)
    }

    /// QMP `migrate-start-postcopy` ([`Lifecycle::postcopy_request`]).
    pub fn postcopy_request(&self) -> Result<()> {
        Lifecycle::postcopy_request(self)
    }

    /// Starts postcopy ([`Lifecycle::postcopy_start`]).
    pub fn postcopy_start(&self, now_ms: u64) -> Result<()> {
        Lifecycle::postcopy_start(self, now_ms)
    }

    /// The migration completed ([`Lifecycle::complete`]).
    pub fn complete(&self, now_ms: u64) -> Result<()> {
        Lifecycle::complete(self, now_ms)
    }

    /// QMP `migrate_cancel` ([`Lifecycle::cancel`]).
    pub fn cancel(&self, now_ms: u64) -> Result<()> {
        Lifecycle::cancel(self, now_ms)
    }

    /// The migration failed, with QEMU's `error-desc` ([`Lifecycle::fail`]).
    pub fn fail(&self, now_ms: u64, error_desc: Option<&str>) -> Result<()> {
        Lifecycle::fail(self, now_ms, error_desc)
    }

    /// The destination's switchover ack (`switchover-ack`) ([`Lifecycle::set_switchover_acked`]).
    pub fn set_switchover_acked(&self, acked: bool) {
        Lifecycle::set_switchover_acked(self, acked)
    }

    /// The VMM's word on whether the guest runs ([`Lifecycle::set_vm_running`]).
    pub fn set_vm_running(&self, running: bool) {
        Lifecycle::set_vm_running(self, running)
    }

    /// One pass of the migration loop ([`Steps::iteration_step`]).
    pub fn iteration_step(&self, now_ms: u64) -> Result<Step> {
        Steps::iteration_step(self, now_ms)
    }

    /// Every figure the reports need, at `now_ms` ([`Snapshots::snapshot`]). Never calls a
    /// handler.
    pub fn snapshot(&self, now_ms: u64) -> Snapshot {
        Snapshots::snapshot(self, now_ms)
    }
}

/// What the engine sees of a session.
impl Host for Session {
    fn id(&self) -> u64 {
        self.id
    }
    fn status_cell(&self) -> &StatusCell {
        &self.status
    }
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn engine(&self) -> &Engine {
        &self.engine
    }
    fn registry(&self) -> &Registry {
        &self.registry
    }
    fn ram_slot(&self) -> &RamSlot {
        &self.ram
    }
    fn vfio_totals(&self) -> &VfioTotals {
        &self.vfio
    }
    fn remaining_cell(&self) -> &AtomicU64 {
        &self.remaining
    }
    fn clock_cell(&self) -> &AtomicU64 {
        &self.clock_ms
    }
    fn remaining(&self) -> u64 {
        Session::remaining(self)
    }
    fn params(&self) -> Params {
        Session::params(self)
    }
    fn capabilities(&self) -> Capabilities {
        Session::capabilities(self)
    }
    fn set_params(&self, params: Params) -> Result<()> {
        Session::set_params(self, params)
    }
    fn raise_downtime_limit_if(&self, expected_ms: u64, auto_max_ms: u64, new_ms: u64) -> Result<bool> {
        Session::raise_downtime_limit_if(self, expected_ms, auto_max_ms, new_ms)
    }
    fn vmm(&self) -> Option<Arc<InstalledHooks>> {
        Session::vmm(self)
    }
    fn observe_clock(&self, now_ms: u64) {
        Session::observe_clock(self, now_ms)
    }
    fn query_pending(&self, kind: QueryKind) -> Result<Pending> {
        Session::query_pending(self, kind)
    }
    fn emit(&self, name: &str, data: Value) {
        Session::emit(self, name, data)
    }
    fn emit_if_events_on(&self, name: &str, data: Value) {
        Session::emit_if_events_on(self, name, data)
    }
    fn flush_events(&self) {
        Session::flush_events(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

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
