//! A VFIO device answers with the name it was created with (the handler's idstr, vfio.rs
//! `VfioDevice::new`), also in its `Debug` form.
mod vfio_support;
use vfio_support::StopCopy;
use std::sync::Arc;
use switchover::vfio::VfioDevice;
use switchover::Session;

#[test]
fn a_device_keeps_its_name() {
    let session = Arc::new(Session::new());
    let gpu = VfioDevice::new(&session, "0000:65:00.0", Box::new(StopCopy(1 << 20))).unwrap();
    let nic = VfioDevice::new(&session, "nic0", Box::new(StopCopy(1 << 20))).unwrap();
    assert_eq!(gpu.name(), "0000:65:00.0");
    assert_eq!(nic.name(), "nic0");
    let debug = format!("{gpu:?}");
    assert!(debug.starts_with("VfioDevice { name: \"0000:65:00.0\""), "{debug}");
    assert!(debug.contains("stopcopy_size: 1048576"), "{debug}");
}

/// Each device's handler id is the one the registry lists under its name, and unregistering
/// by it removes exactly that device's handler.
#[test]
fn each_device_has_its_own_handler_id() {
    let session = Arc::new(Session::new());
    let devices: Vec<VfioDevice> = ["gpu0", "gpu1", "nic0"]
        .iter()
        .map(|n| VfioDevice::new(&session, n, Box::new(StopCopy(1 << 20))).unwrap())
        .collect();
    let listed: Vec<(String, u64)> =
        session.registry().handlers().into_iter().map(|h| (h.idstr, h.id)).collect();
    let ours: Vec<(String, u64)> =
        devices.iter().map(|d| (d.name().to_owned(), d.handler_id())).collect();
    assert_eq!(listed, ours);
    assert_ne!(ours[1].1, ours[2].1);
    session.registry().unregister(devices[2].handler_id()).unwrap();
    let left: Vec<String> = session.registry().handlers().into_iter().map(|h| h.idstr).collect();
    assert_eq!(left, ["gpu0", "gpu1"]);
}
