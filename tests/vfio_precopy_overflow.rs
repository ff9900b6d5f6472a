//! A precopy figure above `INT64_MAX` on its own (vfio.rs module table, docs/qemu-model.md
//! §VFIO: QEMU's `vfio_migration_check_overflow` warns about each figure): `refresh` reports
//! `SWO_ERR_OUT_OF_RANGE` naming that figure whichever of the two it is, and the cache holds it
//! clamped to `INT64_MAX`.
use std::sync::Arc;
use switchover::vfio::{PrecopyFailure, SizeReader, VfioDevice};
use switchover::{Code, Session};

const GIB: u64 = 1 << 30;
const INT64_MAX: u64 = 9_223_372_036_854_775_807;

struct Precopy(u64, u64);

impl SizeReader for Precopy {
    fn stop_copy_size(&self) -> Result<u64, i32> {
        Ok(GIB)
    }
    fn precopy_info(&self) -> Result<(u64, u64), PrecopyFailure> {
        Ok((self.0, self.1))
    }
}

fn refresh_in_pre_copy(init: u64, dirty: u64) -> (switchover::Error, (u64, u64)) {
    let session = Arc::new(Session::new());
    let d = VfioDevice::new(&session, "gpu0", Box::new(Precopy(init, dirty))).unwrap();
    d.set_state(6).unwrap();
    let err = d.refresh().unwrap_err();
    let s = d.sizes();
    (err, (s.precopy_init_size, s.precopy_dirty_size))
}

#[test]
fn dirty_bytes_alone_above_int64_max_are_out_of_range() {
    let (err, cache) = refresh_in_pre_copy(4096, INT64_MAX + 1);
    assert_eq!(err.code, Code::OutOfRange);
    assert_eq!(err.message, "gpu0: Estimated precopy dirty size overflow: 0x8000000000000000");
    assert_eq!(cache, (4096, INT64_MAX));
}

#[test]
fn initial_bytes_alone_above_int64_max_are_out_of_range() {
    let (err, cache) = refresh_in_pre_copy(u64::MAX, 0);
    assert_eq!(err.code, Code::OutOfRange);
    assert_eq!(err.message, "gpu0: Estimated precopy init size overflow: 0xffffffffffffffff");
    assert_eq!(cache, (INT64_MAX, 0));
}
