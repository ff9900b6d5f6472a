//! Review (review2): freeing a VFIO device from a callback of its own session.
//!
//! `swo_vfio_free` documents that the caller may release the readers' `opaque` (and the fds)
//! once it returns; from a callback of the same session it "detaches" the handler instead and
//! promises that the handler "calls no reader". But detaching does not wait for a reader call
//! that another thread's query is already making (nor for one that passed the `detached` check
//! and is about to start), so the VMM frees `opaque` under a running reader: a use-after-free
//! in the VMM. (DESIGN.md §Threading: after unregistering returns "the caller may free
//! `opaque`".)
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use switchover::pending::QueryKind;
use switchover::vfio::{PrecopyFailure, SizeReader, VfioDevice};
use switchover::{HandlerFlags, Pending, PendingSource, Session};

/// The VMM's reader. Once `armed`, a call blocks until `open`; a call still running after the
/// VMM "freed" the opaque (`freed`) counts as late.
#[derive(Clone, Default)]
struct Reader {
    armed: Arc<AtomicBool>,
    inside: Arc<AtomicU64>,
    open: Arc<AtomicBool>,
    freed: Arc<AtomicBool>,
    late: Arc<AtomicU64>,
}

impl SizeReader for Reader {
    fn stop_copy_size(&self) -> Result<u64, i32> {
        if self.armed.load(Ordering::SeqCst) {
            self.inside.fetch_add(1, Ordering::SeqCst);
            while !self.open.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        }
        if self.freed.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        Ok(1 << 20)
    }
    fn precopy_info(&self) -> Result<(u64, u64), PrecopyFailure> {
        Ok((0, 0))
    }
}

/// A device-model handler that frees the VFIO device (drops its handle) when told to, from
/// inside its own callback: what `swo_vfio_free` does when called there.
struct Freer {
    device: Arc<Mutex<Option<VfioDevice>>>,
    free_now: Arc<AtomicBool>,
}

impl PendingSource for Freer {
    fn save_query_pending(&self, _p: &mut Pending, _exact: bool, _final: bool) {
        if self.free_now.swap(false, Ordering::SeqCst) {
            drop(self.device.lock().unwrap().take());
        }
    }
}

#[test]
fn vfio_free_from_a_callback_returns_while_another_thread_still_runs_its_reader() {
    let session = Arc::new(Session::new());
    let reader = Reader::default();
    let device = VfioDevice::new(&session, "vgpu", Box::new(reader.clone())).unwrap();
    let device = Arc::new(Mutex::new(Some(device)));
    let free_now = Arc::new(AtomicBool::new(false));
    session
        .registry()
        .register(
            "freer",
            0,
            HandlerFlags::empty(),
            Box::new(Freer { device: device.clone(), free_now: free_now.clone() }),
        )
        .unwrap();

    // The migration thread's exact query sits in the device's reader.
    reader.armed.store(true, Ordering::SeqCst);
    let migration = {
        let session = session.clone();
        std::thread::spawn(move || session.query_pending(QueryKind::Exact).unwrap())
    };
    while reader.inside.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }

    // Another thread frees the device from a callback of the same session.
    free_now.store(true, Ordering::SeqCst);
    session.query_pending(QueryKind::Fast).unwrap();
    assert!(device.lock().unwrap().is_none(), "the device was freed inside the callback");

    // swo_vfio_free returned: the VMM releases the readers' opaque, as documented.
    reader.freed.store(true, Ordering::SeqCst);
    reader.open.store(true, Ordering::SeqCst);
    migration.join().unwrap();
    assert_eq!(
        reader.late.load(Ordering::SeqCst),
        0,
        "a reader call was still running after the device was freed (its opaque released)"
    );
}
