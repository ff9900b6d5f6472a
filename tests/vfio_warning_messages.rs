//! The wording of the VFIO read-failure warnings (docs/qemu-model.md §VFIO): QEMU's
//! `vfio_query_stop_copy_size` / `vfio_query_precopy_size` (hw/vfio/migration.c) name the
//! errno with `strerror`; the library's message carries that text, the errno and the figure it
//! assumes instead (107374182400 bytes, QEMU's `VFIO_MIG_STOP_COPY_SIZE`, or 0).
mod vfio_support;
use vfio_support::Events;
use std::ffi::CStr;
use std::sync::Arc;
use switchover::vfio::{PrecopyFailure, SizeReader, VfioDevice, WARNING_EVENT};
use switchover::Session;

struct Failing(i32);

impl SizeReader for Failing {
    fn stop_copy_size(&self) -> Result<u64, i32> {
        Err(self.0)
    }
    fn precopy_info(&self) -> Result<(u64, u64), PrecopyFailure> {
        Err(PrecopyFailure::Errno(self.0))
    }
}

/// C's `strerror(errno)`, as QEMU prints it (glibc: "Input/output error" for EIO).
fn c_strerror(errno: i32) -> String {
    // SAFETY: strerror returns a valid NUL-terminated string (not kept past this call).
    unsafe { CStr::from_ptr(libc::strerror(errno)) }.to_string_lossy().into_owned()
}

#[test]
fn read_failures_name_the_errno_as_strerror_does() {
    let session = Arc::new(Session::new());
    let events = Arc::new(Events::default());
    session.set_vmm(Some(events.clone())).unwrap();
    let d = VfioDevice::new(&session, "gpu0", Box::new(Failing(libc::EIO))).unwrap();
    d.set_state(6).unwrap(); // PRE_COPY: the precopy info is read too
    let err = d.refresh().unwrap_err();
    session.flush_events();
    let messages: Vec<String> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == WARNING_EVENT)
        .map(|e| e["data"]["message"].as_str().unwrap().to_owned())
        .collect();
    let eio = c_strerror(libc::EIO);
    assert_eq!(eio, "Input/output error");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with(&format!("gpu0: Failed to query stop copy size: {eio}")),
        "{}",
        messages[0]
    );
    assert!(messages[0].ends_with("(errno 5); assuming 107374182400 bytes"), "{}", messages[0]);
    assert!(
        messages[1].starts_with(&format!("gpu0: Failed to query precopy info: {eio}")),
        "{}",
        messages[1]
    );
    assert!(messages[1].ends_with("(errno 5); assuming 0 bytes"), "{}", messages[1]);
    // The error refresh returns is the first problem, with the same text.
    assert_eq!(err.message, messages[0]);
}
