//! A VFIO read of exactly the cached stop-copy size (docs/qemu-model.md §VFIO, QEMU's
//! `vfio_update_estimated_pending_data`: the cache shrinks by what was read): the device has
//! sent all it estimated, the cache reaches 0 and nothing is wrong, so no
//! `read-exceeds-cache` warning (that is for a read *larger* than the cache, vfio.rs table).
mod vfio_support;
use vfio_support::{Events, StopCopy};
use serde_json::Value;
use std::sync::Arc;
use switchover::vfio::{VfioDevice, WARNING_EVENT};
use switchover::Session;

#[test]
fn a_read_of_exactly_the_cache_empties_it_without_a_warning() {
    let session = Arc::new(Session::new());
    let events = Arc::new(Events::default());
    session.set_vmm(Some(events.clone())).unwrap();
    let d = VfioDevice::new(&session, "gpu0", Box::new(StopCopy(1000))).unwrap();
    d.record_read(1000);
    let s = d.sizes();
    assert_eq!((s.stopcopy_size, s.transferred), (0, 1000));
    session.flush_events();
    let warnings: Vec<Value> =
        events.0.lock().unwrap().iter().filter(|e| e["event"] == WARNING_EVENT).cloned().collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    // One byte more than the (now empty) cache is the garbage case.
    d.record_read(1);
    session.flush_events();
    let kinds: Vec<Value> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == WARNING_EVENT)
        .map(|e| e["data"]["kind"].clone())
        .collect();
    assert_eq!(kinds, ["read-exceeds-cache"]);
}
