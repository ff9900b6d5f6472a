//! The C ABI's channel numbers (docs/design.md §ABI): `SWO_CHANNEL_MAIN 0`,
//! `SWO_CHANNEL_MULTIFD 1`, anything else refused with its number named.
use switchover::counters::Channel;
use switchover::Code;

/// counters.rs `Channel::from_u32`: the C ABI's channel numbers (docs/design.md §ABI,
/// `SWO_CHANNEL_MAIN 0`, `SWO_CHANNEL_MULTIFD 1`); anything else is refused, naming it.
/// (Deleting either match arm survived: only the C and Python tests used the numbers.)
#[test]
fn channel_numbers_are_the_abis() {
    assert_eq!(Channel::from_u32(0).unwrap(), Channel::Main);
    assert_eq!(Channel::from_u32(1).unwrap(), Channel::Multifd);
    for bad in [2, 3, u32::MAX] {
        let e = Channel::from_u32(bad).unwrap_err();
        assert_eq!(e.code, Code::InvalidArg);
        assert!(e.message.contains(&format!("unknown channel {bad}")), "{}", e.message);
    }
}
