//! Shared helpers for the engine's integration tests: a device whose pending figures the test
//! sets, and a VMM that counts stops and resumes and keeps the events.
#![allow(dead_code)]
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use switchover::params::{Capabilities, Params};
use switchover::pending::QueryKind;
use switchover::{HandlerFlags, Pending, PendingSource, Session, VmmHooks};

/// A device reporting figures set by the test; logs every query.
#[derive(Clone, Default)]
pub struct Device {
    pub fast: Arc<Mutex<Pending>>,
    pub exact: Arc<Mutex<Pending>>,
    pub log: Arc<Mutex<Vec<QueryKind>>>,
    /// Set by the VMM: queries record whether the guest was stopped.
    pub guest_stopped: Arc<AtomicBool>,
    pub exact_while_stopped: Arc<AtomicU64>,
}

impl Device {
    /// The same figures for fast and exact queries.
    pub fn set(&self, p: Pending) {
        *self.fast.lock().unwrap() = p;
        *self.exact.lock().unwrap() = p;
    }
    pub fn set_fast(&self, p: Pending) {
        *self.fast.lock().unwrap() = p;
    }
    pub fn set_exact(&self, p: Pending) {
        *self.exact.lock().unwrap() = p;
    }
    pub fn queries(&self) -> Vec<QueryKind> {
        self.log.lock().unwrap().clone()
    }
}

impl PendingSource for Device {
    fn save_query_pending(&self, pending: &mut Pending, exact: bool, final_: bool) {
        let kind = match (exact, final_) {
            (false, _) => QueryKind::Fast,
            (true, false) => QueryKind::Exact,
            (true, true) => QueryKind::Final,
        };
        self.log.lock().unwrap().push(kind);
        if exact && self.guest_stopped.load(Ordering::SeqCst) {
            self.exact_while_stopped.fetch_add(1, Ordering::SeqCst);
        }
        let p = if exact { *self.exact.lock().unwrap() } else { *self.fast.lock().unwrap() };
        pending.accumulate(&p);
    }
}

pub fn pending(precopy: u64, stopcopy: u64, postcopy: u64) -> Pending {
    Pending { precopy, stopcopy, postcopy }
}

/// A VMM that counts `vm_stop` / `vm_resume` and keeps every event.
#[derive(Default)]
pub struct Vmm {
    pub stops: AtomicU64,
    pub resumes: AtomicU64,
    pub stop_rc: AtomicI32,
    /// What `vm_resume` returns (0: resumed; else the guest stays stopped).
    pub resume_rc: AtomicI32,
    pub can_stop: AtomicBool,
    pub events: Mutex<Vec<serde_json::Value>>,
    pub guest_stopped: Arc<AtomicBool>,
}

impl Vmm {
    pub fn new(guest_stopped: Arc<AtomicBool>) -> Arc<Vmm> {
        let v = Vmm { guest_stopped, ..Vmm::default() };
        v.can_stop.store(true, Ordering::SeqCst);
        Arc::new(v)
    }
    pub fn stops(&self) -> u64 {
        self.stops.load(Ordering::SeqCst)
    }
    pub fn resumes(&self) -> u64 {
        self.resumes.load(Ordering::SeqCst)
    }
    /// Events with this name, their `data` members.
    pub fn events(&self, name: &str) -> Vec<serde_json::Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == name)
            .map(|e| e["data"].clone())
            .collect()
    }
    pub fn statuses(&self) -> Vec<String> {
        self.events("MIGRATION").iter().map(|d| d["status"].as_str().unwrap().to_owned()).collect()
    }
}

impl VmmHooks for Vmm {
    fn vm_stop(&self) -> i32 {
        self.stops.fetch_add(1, Ordering::SeqCst);
        let rc = self.stop_rc.load(Ordering::SeqCst);
        if rc == 0 {
            self.guest_stopped.store(true, Ordering::SeqCst);
        }
        rc
    }
    fn vm_resume(&self) -> i32 {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        let rc = self.resume_rc.load(Ordering::SeqCst);
        if rc == 0 {
            self.guest_stopped.store(false, Ordering::SeqCst);
        }
        rc
    }
    fn can_stop_vm(&self) -> bool {
        self.can_stop.load(Ordering::SeqCst)
    }
    fn event(&self, event_json: &str) {
        self.events.lock().unwrap().push(serde_json::from_str(event_json).unwrap());
    }
}

/// A session with one device, a VMM hook and the `events` capability.
pub struct Rig {
    pub sess: Arc<Session>,
    pub dev: Device,
    pub vmm: Arc<Vmm>,
    pub now: u64,
}

impl Rig {
    pub fn new(flags: HandlerFlags) -> Rig {
        let sess = Arc::new(Session::new());
        let dev = Device::default();
        let vmm = Vmm::new(dev.guest_stopped.clone());
        sess.set_vmm(Some(vmm.clone())).unwrap();
        sess.registry().register("dev", 0, flags, Box::new(dev.clone())).unwrap();
        let rig = Rig { sess, dev, vmm, now: 0 };
        rig.caps(|c| c.events = true);
        rig
    }

    pub fn params(&self, f: impl FnOnce(&mut Params)) {
        let mut p = self.sess.params();
        f(&mut p);
        self.sess.set_params(p).unwrap();
    }

    pub fn caps(&self, f: impl FnOnce(&mut Capabilities)) {
        let mut c = self.sess.capabilities();
        f(&mut c);
        self.sess.set_capabilities(c).unwrap();
    }

    /// `migration_start` at 0, `setup_done` at 10; the first window then closes at 100.
    pub fn start(&mut self) {
        self.sess.migration_start(0).unwrap();
        self.sess.setup_done(10).unwrap();
        self.now = 0;
    }

    /// Advances 100 ms, sends `bytes` on the main channel, and closes the window.
    pub fn window(&mut self, bytes: u64) {
        self.sess.record_transferred(switchover::counters::Channel::Main, bytes);
        self.now += 100;
        assert!(self.sess.update_counters(self.now).unwrap());
    }

    pub fn step(&self) -> switchover::engine::Step {
        self.sess.iteration_step(self.now).unwrap()
    }
}
