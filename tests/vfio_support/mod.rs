//! What the VFIO tests share: a VMM that cannot stop the guest and records every event the
//! library delivers (the VFIO warnings come as events), and a device with a fixed stop-copy size.
#![allow(dead_code)] // each test file uses part of it
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

/// A device whose kernel reports a fixed stop-copy size and no precopy data.
pub struct StopCopy(pub u64);

impl switchover::vfio::SizeReader for StopCopy {
    fn stop_copy_size(&self) -> Result<u64, i32> {
        Ok(self.0)
    }
    fn precopy_info(&self) -> Result<(u64, u64), switchover::vfio::PrecopyFailure> {
        Ok((0, 0))
    }
}
