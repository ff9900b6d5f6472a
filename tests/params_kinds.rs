//! Which parameters are sizes (docs/qemu-model.md §Parameters): QEMU's QAPI schema
//! (qapi/migration.json, `MigrationParameters`) types `max-bandwidth`,
//! `avail-switchover-bandwidth` and `max-postcopy-bandwidth` as `size`, which HMP reads in MiB
//! by default; the library's `guest-dirty-rate` is a bandwidth too. Every other parameter is
//! not a size.
use switchover::params::Parameter;

#[test]
fn the_bandwidths_and_only_they_are_sizes() {
    let sizes: Vec<&str> =
        Parameter::ALL.iter().filter(|p| p.is_size()).map(|p| p.name()).collect();
    assert_eq!(
        sizes,
        ["max-bandwidth", "avail-switchover-bandwidth", "max-postcopy-bandwidth", "guest-dirty-rate"]
    );
    assert!(!Parameter::DowntimeLimit.is_size());
}
