"""A page-level model of QEMU 7.2's pre-copy rounds, to see which downtime-limit set at a sync
(where switchover-watch applies its advice) converges, and why it depends on the phase of a
sequential writer against QEMU's scan (docs/watch.md, "The advice against the smallest limit
that converges"). An analysis tool, not a test.

- QEMU: ``ram_find_and_save_block`` sends dirty pages in address order from where it stopped,
  one ``max-bandwidth`` × 100 ms quota per 100 ms (``migration_rate_limit``);
  ``ram_save_pending`` syncs as soon as the bitmap is below the threshold
  ``max-bandwidth × downtime-limit``; ``migration_bitmap_sync`` ORs the dirty log (every page
  written since the last sync, sent meanwhile or not) into the bitmap; the migration completes
  when the bitmap is still below the threshold after the sync.
- The guest (tests/e2e/dirtier.c): ``rate_mib`` MiB/s over a ``region_mib`` region,
  ``sequential`` (a sweep), ``uniform`` or ``hotspot`` (90 % on a tenth of the region), plus
  ``other_rate`` MiB/s on ``other_mib`` MiB of other pages (the ~9 MiB the real syncs find
  beyond the region).
- The run: ``warm_rounds`` syncs at 300 ms (the plateau), then ``limit_ms`` set at a sync;
  converged within ``horizon_s``?

    python3 tests/e2e/page_model.py [sequential|uniform|hotspot] [LIMIT_MS...]

prints, for 8 starting phases of the guest's sweep, which limits converge, after how long and
how many syncs (``4500:Y10.6s/10``) or not (``3500:-``).
"""
import numpy as np, sys

PAGE = 4096
MiB = 1 << 20

def run(limit_ms, *, region_mib=256, other_mib=9, other_rate=1.1, rate_mib=40, bw_mib=32,
        g0=0.0, p0=0.0, warm_rounds=4, horizon_s=35, pattern="sequential", seed=0, tick=0.1, verbose=False):
    rng = np.random.default_rng(seed)
    N = region_mib * MiB // PAGE
    O = other_mib * MiB // PAGE
    M = N + O                      # region first, then "other" pages after it in address order
    bmap = np.ones(M, bool)        # after a full round the whole region + others are dirty
    log = np.zeros(M, bool)
    quota = int(bw_mib * MiB * tick / PAGE)
    per_tick = rate_mib * MiB * tick / PAGE
    other_per_tick = other_rate * MiB * tick / PAGE
    g = g0 * N                     # guest position in the region
    scan = int(p0 * M)
    T = (bw_mib * MiB * 300 / 1000) / PAGE
    t = 0.0
    syncs = 0
    raised_at = None
    acc = 0.0
    while t < 400:
        # ram_save_pending: remaining below the threshold -> sync
        if bmap.sum() < T:
            bmap |= log; log[:] = False; syncs += 1
            if raised_at is not None and bmap.sum() < T:
                return True, t - raised_at, syncs - raised_syncs, bmap.sum()*PAGE/MiB
            if raised_at is None and syncs >= warm_rounds:
                T = (bw_mib * MiB * limit_ms / 1000) / PAGE
                raised_at, raised_syncs, found = t, syncs, bmap.sum()*PAGE/MiB
                if verbose:
                    print(f"  plateau sync found {found:.1f} MiB at {t:.1f} s")
                if bmap.sum() < T:
                    return True, 0.0, 0, found
        if raised_at is not None and t - raised_at > horizon_s:
            return False, None, syncs - raised_syncs, None
        # one burst: up to quota dirty pages from the scan position
        idx = np.flatnonzero(np.roll(bmap, -scan))[:quota]
        if len(idx):
            pages = (idx + scan) % M
            bmap[pages] = False
            scan = (pages[-1] + 1) % M
        # the guest writes during the rest of the tick
        acc += per_tick
        n = int(acc); acc -= n
        if pattern == "sequential":
            pos = (int(g) + np.arange(n)) % N
            g = (g + n) % N
        elif pattern == "hotspot":
            # tests/e2e/dirtier.c's hotspot: 90 % of the writes on a hot set of region / 10.
            hot = rng.random(n) < 0.9
            pos = np.where(hot, rng.integers(0, N // 10, n), rng.integers(0, N, n))
        else:
            pos = rng.integers(0, N, n)
        log[pos] = True
        k = rng.poisson(other_per_tick)
        log[N + rng.integers(0, O, k)] = True
        t += tick
    return False, None, None, None

if __name__ == "__main__":
    pattern = sys.argv[1] if len(sys.argv) > 1 else "sequential"
    limits = [int(x) for x in sys.argv[2:]] or [3500, 4000, 4500, 5000, 5500, 6000, 7000, 8000]
    for g0 in np.linspace(0, 1, 8, endpoint=False):
        row = []
        for L in limits:
            ok, dt, ns, found = run(L, g0=g0, pattern=pattern)
            row.append(f"{L}:{'Y' if ok else '-'}{'' if dt is None else f'{dt:.1f}s/{ns}'}")
        print(f"g0={g0:.3f} ", " ".join(row), flush=True)
