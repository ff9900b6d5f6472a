//! The session's VFIO device count (`VfioTotals::devices`, vfio.rs): one per open device,
//! counted from creation to `close`, `close` idempotent; `vfio.transferred` exists only while
//! there is one (QEMU's `populate_vfio_info`, migration/target.c: the `vfio` member only with a
//! VFIO device).
mod vfio_support;
use vfio_support::StopCopy;
use std::sync::Arc;
use switchover::vfio::VfioDevice;
use switchover::Session;

#[test]
fn the_device_count_follows_creation_and_close() {
    let session = Arc::new(Session::new());
    let totals = || (session.vfio_totals().devices(), session.vfio_totals().transferred());
    assert_eq!(totals(), (0, None));
    let gpu = VfioDevice::new(&session, "gpu0", Box::new(StopCopy(1 << 30))).unwrap();
    let nic = VfioDevice::new(&session, "nic0", Box::new(StopCopy(1 << 30))).unwrap();
    let vf = VfioDevice::new(&session, "vf0", Box::new(StopCopy(1 << 30))).unwrap();
    assert_eq!(totals(), (3, Some(0)));
    nic.close().unwrap();
    assert_eq!(totals(), (2, Some(0)));
    nic.close().unwrap();
    assert_eq!(totals(), (2, Some(0)), "a second close counts nothing");
    drop(vf);
    assert_eq!(totals(), (1, Some(0)));
    gpu.record_read(4096);
    assert_eq!(totals(), (1, Some(4096)));
    drop(gpu);
    assert_eq!(totals(), (0, None));
}
