//! The layout rule every versioned out-struct keeps (docs/design.md, "How the ABI may
//! evolve"), checked for each of them. A module of its own: it names every out-struct, and
//! `versioned.rs`, which they all use, must not import them back. Also the struct-size
//! check and write of `versioned::Out`.
use crate::ffi::engine::{SwoAdvice, SwoInfo};
use crate::ffi::ram::SwoRamFigures;
use crate::ffi::versioned::{Out, OutStruct, SLOT};
use crate::ffi::vfio::SwoVfioSizes;
use crate::ffi::SwoStep;
use std::mem::{align_of, size_of};

fn layout_rule_holds<T: OutStruct>() {
    assert_eq!(align_of::<T>(), 8, "{}", T::NAME);
    assert_eq!(size_of::<T>() % SLOT, 0, "{}", T::NAME);
    assert_eq!(T::FIRST_SIZE % SLOT, 0, "{}", T::NAME);
    assert!(T::FIRST_SIZE <= size_of::<T>(), "{}", T::NAME);
    // Field by field (no implicit padding, no straddled slot): python/tests/test_layout.py
    // and the C tests' static asserts. Here: `struct_size` comes first.
    let v = T::sized();
    // SAFETY: reading the first 4 bytes of a live `T`.
    let first = unsafe { (&v as *const T).cast::<u32>().read() };
    assert_eq!(first as usize, size_of::<T>(), "{}", T::NAME);
}

#[test]
fn every_out_struct_keeps_the_layout_rule() {
    layout_rule_holds::<SwoStep>();
    layout_rule_holds::<SwoInfo>();
    layout_rule_holds::<SwoAdvice>();
    layout_rule_holds::<SwoRamFigures>();
    layout_rule_holds::<SwoVfioSizes>();
}

#[test]
fn the_first_versioned_layouts_are_the_0_2_sizes() {
    // Hand-counted from the 0.2.0 header: 4-byte struct_size + 4-byte fields in pairs,
    // then 8-byte fields.
    assert_eq!(SwoStep::FIRST_SIZE, 4 * 4 + 32 + 2 * 8);
    assert_eq!(SwoInfo::FIRST_SIZE, 4 * 4 + 11 * 8);
    assert_eq!(SwoAdvice::FIRST_SIZE, 4 * 4 + 3 * 8);
    assert_eq!(SwoRamFigures::FIRST_SIZE, 2 * 4 + 6 * 8);
    assert_eq!(SwoVfioSizes::FIRST_SIZE, 2 * 4 + 4 * 8);
}

#[test]
fn a_short_struct_size_is_refused_and_nothing_is_written() {
    let mut buf = [0xa5u8; 128];
    buf[..4].copy_from_slice(&(SwoAdvice::FIRST_SIZE as u32 - 8).to_le_bytes());
    let before = buf;
    let r = Out::<SwoAdvice>::check(buf.as_mut_ptr().cast(), "out");
    assert_eq!(r.err().unwrap().code, crate::error::Code::InvalidArg);
    assert_eq!(buf, before);
}

#[test]
fn a_larger_struct_size_gets_this_layout_and_keeps_its_tail() {
    let mut buf = [0x5au8; 128];
    buf[..4].copy_from_slice(&(size_of::<SwoAdvice>() as u32 + 20).to_le_bytes());
    let mut value = SwoAdvice::sized();
    value.best_remaining_bytes = 77;
    Out::<SwoAdvice>::check(buf.as_mut_ptr().cast(), "out").unwrap().write(&value);
    let n = size_of::<SwoAdvice>();
    assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize, n);
    assert!(buf[n..].iter().all(|&b| b == 0x5a));
}
