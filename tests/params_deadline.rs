//! The effective deadline (README §Deadlines and actions): `deadline` plus `deadline-per-gib`
//! times the guest's RAM in GiB (the RAM model's `total`), truncated to whole ms; no RAM model,
//! no scaled part; both parts 0, no deadline. The figures, worked by hand, use KubeVirt's
//! `completionTimeoutPerGiB` of 150 s/GiB.
use switchover::params::Params;

const GIB: u64 = 1 << 30;

fn params(deadline_ms: u64, per_gib_ms: u64) -> Params {
    Params { deadline_ms, deadline_per_gib_ms: per_gib_ms, ..Params::default() }
}

#[test]
fn the_scaled_part_is_per_gib_of_ram() {
    // 150 000 ms/GiB × 4 GiB = 600 000 ms.
    assert_eq!(params(0, 150_000).effective_deadline_ms(Some(4 * GIB)), Some(600_000));
    // 150 000 ms/GiB × 1.5 GiB = 225 000 ms; plus a fixed 1 000 ms.
    assert_eq!(params(1_000, 150_000).effective_deadline_ms(Some(3 * GIB / 2)), Some(226_000));
    // 150 000 ms/GiB × 512 MiB = 75 000 ms.
    assert_eq!(params(0, 150_000).effective_deadline_ms(Some(512 << 20)), Some(75_000));
}

#[test]
fn the_scaled_part_is_truncated_to_whole_ms() {
    // 1 ms/GiB × 1.5 GiB = 1.5 ms → 1; 3 ms/GiB × (1 GiB − 1 byte) = 2.999… ms → 2.
    assert_eq!(params(0, 1).effective_deadline_ms(Some(3 * GIB / 2)), Some(1));
    assert_eq!(params(0, 3).effective_deadline_ms(Some(GIB - 1)), Some(2));
    // Below a whole ms and no fixed part: no deadline at all.
    assert_eq!(params(0, 1).effective_deadline_ms(Some(GIB - 1)), None);
}

#[test]
fn without_a_ram_model_only_the_fixed_part_counts() {
    assert_eq!(params(90_000, 150_000).effective_deadline_ms(None), Some(90_000));
    assert_eq!(params(0, 150_000).effective_deadline_ms(None), None);
    assert_eq!(params(0, 0).effective_deadline_ms(Some(64 * GIB)), None);
}
