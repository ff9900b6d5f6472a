//! `swo_record_transferred`'s three ways through the export (issue 13 defect 3's fast path):
//! the hot path (a small addend below the bound), the slow path it jumps to (an addend of
//! 2^32 or more, a counter at its bound), and refusals (NULL, an unknown channel) with their
//! codes and messages. Each byte is counted once, whichever way it went.
use std::ffi::CStr;
use std::ptr::null_mut;
use switchover::ffi::engine::{swo_get_info, swo_record_transferred, SwoInfo};
use switchover::ffi::session::{swo_session_free, swo_session_new};
use switchover::ffi::status::swo_last_error_message;
use switchover::ffi::*;

struct OwnedSession(*mut SwoSession);

impl OwnedSession {
    fn new() -> OwnedSession {
        let mut s = null_mut();
        // SAFETY: `s` is a live out-pointer.
        assert_eq!(unsafe { swo_session_new(&mut s) }, SWO_OK);
        OwnedSession(s)
    }

    fn record(&self, channel: u32, bytes: u64) -> SwoStatus {
        // SAFETY: a live session.
        unsafe { swo_record_transferred(self.0, channel, bytes) }
    }

    fn info(&self) -> SwoInfo {
        // SAFETY: SwoInfo is plain integers; all-zero is a valid value.
        let mut info: SwoInfo = unsafe { std::mem::zeroed() };
        info.struct_size = std::mem::size_of::<SwoInfo>() as u32;
        // SAFETY: a live session and a live, sized out-struct.
        assert_eq!(unsafe { swo_get_info(self.0, 0, &mut info) }, SWO_OK);
        info
    }
}

impl Drop for OwnedSession {
    fn drop(&mut self) {
        // SAFETY: from swo_session_new, freed once.
        unsafe { swo_session_free(self.0) }
    }
}

fn last_message() -> String {
    let mut buf = [0 as std::ffi::c_char; 256];
    let mut len = 0usize;
    // SAFETY: `buf` holds 256 bytes; `len` is a live usize.
    assert_eq!(unsafe { swo_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, SWO_OK);
    // SAFETY: the library wrote a NUL-terminated string into `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

#[test]
fn small_and_large_addends_are_each_counted_once() {
    let s = OwnedSession::new();
    assert_eq!(s.record(SWO_CHANNEL_MULTIFD, 4096), SWO_OK); // the hot path
    assert_eq!(s.record(SWO_CHANNEL_MULTIFD, 1 << 32), SWO_OK); // the slow path
    assert_eq!(s.record(SWO_CHANNEL_MAIN, (1 << 32) - 1), SWO_OK); // hot, main channel
    assert_eq!(s.record(SWO_CHANNEL_MAIN, 5 << 40), SWO_OK); // slow, main channel
    assert_eq!(s.info().transferred_bytes, 4096 + (1 << 32) + (1 << 32) - 1 + (5 << 40));
}

#[test]
fn a_counter_at_its_bound_stays_saturated_through_the_export() {
    let s = OwnedSession::new();
    assert_eq!(s.record(SWO_CHANNEL_MULTIFD, u64::MAX - 1), SWO_OK);
    assert_eq!(s.info().transferred_bytes, u64::MAX);
    for bytes in [0, 1, 4096, 1 << 32, u64::MAX] {
        assert_eq!(s.record(SWO_CHANNEL_MULTIFD, bytes), SWO_OK);
        assert_eq!(s.info().transferred_bytes, u64::MAX);
    }
}

#[test]
fn refusals_keep_their_codes_and_messages_and_count_nothing() {
    // SAFETY: NULL is allowed and refused.
    let status = unsafe { swo_record_transferred(null_mut(), SWO_CHANNEL_MAIN, 1) };
    assert_eq!(status, SWO_ERR_NULL_ARG);
    assert_eq!(last_message(), "'session' must not be NULL");
    let s = OwnedSession::new();
    assert_eq!(s.record(2, 4096), SWO_ERR_INVALID_ARG);
    assert_eq!(
        last_message(),
        "unknown channel 2 (SWO_CHANNEL_MAIN 0 or SWO_CHANNEL_MULTIFD 1 expected)"
    );
    assert_eq!(s.record(u32::MAX, 1 << 40), SWO_ERR_INVALID_ARG);
    assert_eq!(s.info().transferred_bytes, 0);
    // A success afterwards leaves the thread's last message alone, as every success does.
    assert_eq!(s.record(SWO_CHANNEL_MAIN, 1), SWO_OK);
    assert!(last_message().starts_with("unknown channel"));
}
