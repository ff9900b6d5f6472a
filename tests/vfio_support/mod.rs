//! What the VFIO tests share: a VMM that cannot stop the guest and records every event the
//! library delivers (the VFIO warnings come as events).
use serde_json::Value;
use std::sync::Mutex;
use switchover::VmmHooks;

#[derive(Default)]
pub struct Events(pub Mutex<Vec<Value>>);

impl VmmHooks for Events {
    fn vm_stop(&self) -> i32 {
        -libc::ENOTSUP
    }
    fn vm_resume(&self) -> i32 {
        -libc::ENOTSUP
    }
    fn can_stop_vm(&self) -> bool {
        false
    }
    fn event(&self, event_json: &str) {
        self.0.lock().unwrap().push(serde_json::from_str(event_json).unwrap());
    }
}
