/* Versioned out-structs (DESIGN.md §ABI evolution; issue 10 item 1): every function that fills
 * SwoStep, SwoInfo, SwoAdvice, SwoRamFigures or SwoVfioSizes, called as a program built
 * against an older header calls it (its struct a prefix of today's, followed by guard bytes
 * that must stay untouched; and a heap block of exactly the old size, which AddressSanitizer
 * watches), as a program built against a newer header calls it (a larger struct_size: the
 * tail stays as the caller set it), and with a struct_size below the first versioned layout
 * (SWO_ERR_INVALID_ARG, nothing written, nothing done).
 *
 * "The older header" is the first versioned layout, switchover 0.2.0, written out below as a
 * program compiled against that header sees it. Today it equals the current layout; once a
 * field is appended the same checks exercise the short-caller path for real. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

/* ---- the 0.2.0 layouts, as an old program sees them ------------------------------------ */

typedef struct {
    uint32_t struct_size, action, flags, reserved;
    SwoPending pending;
    uint64_t threshold_bytes, pass;
} Step_0_2;
typedef struct {
    uint32_t struct_size, status, flags, reserved;
    uint64_t remaining_bytes, last_sync_bytes, threshold_bytes, pass, transferred_bytes;
    double mbps, switchover_bw;
    int64_t expected_downtime_ms;
    uint64_t total_time_ms, setup_time_ms, downtime_ms;
} Info_0_2;
typedef struct {
    uint32_t struct_size, flags, passes_since_progress, reserved;
    uint64_t best_remaining_bytes;
    int64_t expected_downtime_ms;
    uint64_t recommended_downtime_ms;
} Advice_0_2;
typedef struct {
    uint32_t struct_size, reserved;
    uint64_t total_bytes, page_size, normal_pages, zero_pages, dirty_pages, dirty_pages_rate;
} RamFigures_0_2;
typedef struct {
    uint32_t struct_size, reserved;
    uint64_t stopcopy_size, precopy_init_size, precopy_dirty_size, transferred;
} VfioSizes_0_2;

/* The sizes the library documents as the first versioned layouts. */
_Static_assert(sizeof(Step_0_2) == 64, "SwoStep 0.2.0 is 64 bytes");
_Static_assert(sizeof(Info_0_2) == 104, "SwoInfo 0.2.0 is 104 bytes");
_Static_assert(sizeof(Advice_0_2) == 40, "SwoAdvice 0.2.0 is 40 bytes");
_Static_assert(sizeof(RamFigures_0_2) == 56, "SwoRamFigures 0.2.0 is 56 bytes");
_Static_assert(sizeof(VfioSizes_0_2) == 40, "SwoVfioSizes 0.2.0 is 40 bytes");

/* Today's header keeps every 0.2.0 field where it was: only appending is allowed. */
#define SAME_PLACE(T, Old, f)                                                                 \
    _Static_assert(offsetof(T, f) == offsetof(Old, f) && sizeof(((T *)0)->f) ==              \
                   sizeof(((Old *)0)->f), #T "." #f " moved")
SAME_PLACE(SwoStep, Step_0_2, struct_size);
SAME_PLACE(SwoStep, Step_0_2, action);
SAME_PLACE(SwoStep, Step_0_2, flags);
SAME_PLACE(SwoStep, Step_0_2, pending);
SAME_PLACE(SwoStep, Step_0_2, threshold_bytes);
SAME_PLACE(SwoStep, Step_0_2, pass);
SAME_PLACE(SwoInfo, Info_0_2, status);
SAME_PLACE(SwoInfo, Info_0_2, flags);
SAME_PLACE(SwoInfo, Info_0_2, remaining_bytes);
SAME_PLACE(SwoInfo, Info_0_2, pass);
SAME_PLACE(SwoInfo, Info_0_2, mbps);
SAME_PLACE(SwoInfo, Info_0_2, expected_downtime_ms);
SAME_PLACE(SwoInfo, Info_0_2, downtime_ms);
SAME_PLACE(SwoAdvice, Advice_0_2, flags);
SAME_PLACE(SwoAdvice, Advice_0_2, passes_since_progress);
SAME_PLACE(SwoAdvice, Advice_0_2, recommended_downtime_ms);
SAME_PLACE(SwoRamFigures, RamFigures_0_2, total_bytes);
SAME_PLACE(SwoRamFigures, RamFigures_0_2, dirty_pages_rate);
SAME_PLACE(SwoVfioSizes, VfioSizes_0_2, stopcopy_size);
SAME_PLACE(SwoVfioSizes, VfioSizes_0_2, transferred);

/* ---- a session in a fixed state: one device, the RAM model, a VFIO device --------------- */

typedef struct Rig {
    SwoSession *s;
    SwoRam *ram;
    SwoVfio *nic;
} Rig;

#define DEV_PRECOPY 1000000ull
#define DEV_STOPCOPY 2000000ull
#define NIC_STOPCOPY 5000000ull
#define RAM_DIRTY_PAGES 100ull

static void dev_query(void *opaque, SwoPending *p, bool exact, bool final)
{
    (void)opaque, (void)exact, (void)final;
    p->precopy_bytes += DEV_PRECOPY;
    p->stopcopy_bytes += DEV_STOPCOPY;
}

static int nic_stop_copy(void *opaque, uint64_t *len)
{
    (void)opaque;
    *len = NIC_STOPCOPY;
    return 0;
}

/* Every call here is deterministic (the clock is the caller's), so two rigs built alike are
 * in the same state: one answers the reference call, the other the call under test. */
static int rig_up(Rig *r)
{
    const SwoHandlerOps ops = { sizeof ops, 0, dev_query, NULL };
    const SwoVfioOps nic_ops = { sizeof nic_ops, 0, nic_stop_copy, NULL };
    uint64_t id = 0;
    memset(r, 0, sizeof *r);
    if (swo_session_new(&r->s) != SWO_OK)
        return -1;
    OK(swo_register_handler(r->s, "dev", 0, &ops, NULL, &id));
    OK(swo_ram_new(r->s, 1ull << 30, 4096, NULL, NULL, &r->ram));
    OK(swo_ram_set_dirty_pages(r->ram, RAM_DIRTY_PAGES));
    OK(swo_vfio_new(r->s, "nic", &nic_ops, NULL, &r->nic));
    OK(swo_migration_start(r->s, 0)); /* resets the statistics: pages are counted after it */
    OK(swo_setup_done(r->s, 10));
    OK(swo_ram_record_sent(r->ram, 6, 2));
    OK(swo_record_transferred(r->s, SWO_CHANNEL_MAIN, 1000000));
    OK(swo_update_counters(r->s, 100));
    return r->ram && r->nic ? 0 : -1;
}

static void rig_down(Rig *r)
{
    swo_vfio_free(r->nic);
    swo_ram_free(r->ram);
    swo_session_free(r->s);
}

/* ---- the five fillers, one shape -------------------------------------------------------- */

#define NOW 200

static SwoStatus fill_step(Rig *r, void *out) { return swo_iteration_step(r->s, NOW, out); }
static SwoStatus fill_info(Rig *r, void *out) { return swo_get_info(r->s, NOW, out); }
static SwoStatus fill_advice(Rig *r, void *out) { return swo_get_advice(r->s, NOW, out); }
static SwoStatus fill_ram(Rig *r, void *out) { return swo_ram_get_figures(r->ram, out); }
static SwoStatus fill_vfio(Rig *r, void *out) { return swo_vfio_get_sizes(r->nic, out); }

typedef struct Filler {
    const char *name;
    SwoStatus (*fill)(Rig *, void *);
    size_t size;  /* sizeof in today's header */
    size_t first; /* sizeof of the 0.2.0 layout */
} Filler;

static const Filler FILLERS[] = {
    { "swo_iteration_step", fill_step, sizeof(SwoStep), sizeof(Step_0_2) },
    { "swo_get_info", fill_info, sizeof(SwoInfo), sizeof(Info_0_2) },
    { "swo_get_advice", fill_advice, sizeof(SwoAdvice), sizeof(Advice_0_2) },
    { "swo_ram_get_figures", fill_ram, sizeof(SwoRamFigures), sizeof(RamFigures_0_2) },
    { "swo_vfio_get_sizes", fill_vfio, sizeof(SwoVfioSizes), sizeof(VfioSizes_0_2) },
};

/* Big enough for any out-struct plus guard bytes; 8-aligned like the structs. */
typedef union Buffer {
    uint64_t align;
    unsigned char bytes[512];
} Buffer;

static uint32_t struct_size_of(const Buffer *b)
{
    uint32_t n;
    memcpy(&n, b->bytes, sizeof n);
    return n;
}

static void set_struct_size(Buffer *b, uint32_t n) { memcpy(b->bytes, &n, sizeof n); }

static int all_bytes_are(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

/* The reference: today's struct, struct_size = sizeof, on a fresh rig. */
static void reference(const Filler *f, Buffer *ref)
{
    Rig r;
    memset(ref, 0xEE, sizeof *ref);
    set_struct_size(ref, (uint32_t)f->size);
    if (rig_up(&r) == 0) {
        CHECK_STATUS(f->fill(&r, ref), SWO_OK);
        CHECK_EQ(struct_size_of(ref), f->size);
        CHECK(all_bytes_are(ref->bytes + f->size, sizeof ref->bytes - f->size, 0xEE));
    }
    rig_down(&r);
}

/* 1. A caller built against the 0.2.0 header: a struct of the first layout followed by guard
 *    bytes. The library writes that layout, the same figures as today's, and not one guard. */
static void test_older_header_struct_keeps_its_guard_bytes(const Filler *f, const Buffer *ref)
{
    Buffer old;
    Rig r;
    memset(&old, 0xA5, sizeof old);
    set_struct_size(&old, (uint32_t)f->first);
    if (rig_up(&r) == 0) {
        CHECK_STATUS(f->fill(&r, &old), SWO_OK);
        CHECK_EQ(struct_size_of(&old), f->first);
        CHECK(memcmp(old.bytes + 4, ref->bytes + 4, f->first - 4) == 0);
        if (!all_bytes_are(old.bytes + f->first, sizeof old.bytes - f->first, 0xA5)) {
            fprintf(stderr, "%s: wrote past an older caller's struct_size %zu\n", f->name,
                    f->first);
            failures++;
        }
    }
    rig_down(&r);
}

/* 2. The same, in a heap block of exactly the old size: under AddressSanitizer a single byte
 *    written (or read) past it aborts the test. */
static void test_older_header_struct_on_the_heap_is_not_overrun(const Filler *f,
                                                                 const Buffer *ref)
{
    unsigned char *old = malloc(f->first);
    Rig r;
    CHECK(old != NULL);
    if (!old)
        return;
    memset(old, 0xA5, f->first);
    uint32_t n = (uint32_t)f->first;
    memcpy(old, &n, sizeof n);
    if (rig_up(&r) == 0) {
        CHECK_STATUS(f->fill(&r, old), SWO_OK);
        memcpy(&n, old, sizeof n);
        CHECK_EQ(n, f->first);
        CHECK(memcmp(old + 4, ref->bytes + 4, f->first - 4) == 0);
    }
    rig_down(&r);
    free(old);
}

/* 3. A caller built against a newer header: its struct_size is larger (here not even a
 *    multiple of 8). The library writes its own layout, says how much, and leaves the tail
 *    as the caller set it. */
static void test_newer_header_struct_keeps_its_tail(const Filler *f, const Buffer *ref)
{
    Buffer newer;
    Rig r;
    const size_t newer_size = f->size + 44;
    memset(&newer, 0x5A, sizeof newer);
    set_struct_size(&newer, (uint32_t)newer_size);
    if (rig_up(&r) == 0) {
        CHECK_STATUS(f->fill(&r, &newer), SWO_OK);
        CHECK_EQ(struct_size_of(&newer), f->size);
        CHECK(memcmp(newer.bytes + 4, ref->bytes + 4, f->size - 4) == 0);
        CHECK(all_bytes_are(newer.bytes + f->size, sizeof newer.bytes - f->size, 0x5A));
    }
    rig_down(&r);
}

/* 4. A struct_size below the first versioned layout (0, an unversioned caller's leftovers,
 *    one slot short, one byte short): SWO_ERR_INVALID_ARG with a message naming the field,
 *    not a byte written, and nothing done (the step did not run: the next proper call gives
 *    the reference answer, as on a fresh rig). */
static void test_too_small_struct_size_is_refused_and_nothing_happens(const Filler *f,
                                                                       const Buffer *ref)
{
    const size_t sizes[] = { 0, 4, f->first - 8, f->first - 1 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        Buffer small, before, again;
        Rig r;
        memset(&small, 0xC3, sizeof small);
        set_struct_size(&small, (uint32_t)sizes[i]);
        before = small;
        if (rig_up(&r) == 0) {
            CHECK_STATUS(f->fill(&r, &small), SWO_ERR_INVALID_ARG);
            CHECK(strstr(last_message(), "struct_size") != NULL);
            CHECK(memcmp(&small, &before, sizeof small) == 0);
            memset(&again, 0xEE, sizeof again);
            set_struct_size(&again, (uint32_t)f->size);
            CHECK_STATUS(f->fill(&r, &again), SWO_OK);
            CHECK(memcmp(again.bytes, ref->bytes, f->size) == 0);
        }
        rig_down(&r);
    }
    Rig r;
    if (rig_up(&r) == 0)
        CHECK_STATUS(f->fill(&r, NULL), SWO_ERR_NULL_ARG);
    rig_down(&r);
}

/* The reference figures are the fixture's, so the comparisons above compare real data. */
static void test_reference_figures_are_the_fixtures(void)
{
    Rig r;
    if (rig_up(&r) != 0) {
        failures++;
        rig_down(&r);
        return;
    }
    SwoStep step = { .struct_size = sizeof step };
    OK(swo_iteration_step(r.s, NOW, &step));
    /* A fast query: the device, 100 - 8 sent = 92 dirty RAM pages of 4 KiB as precopy, the
     * device's and the NIC's stop-copy sizes. 1,000,000 B sent in the first 100 ms window is
     * 10,000 B/ms; × downtime-limit 300 ms = a threshold of 3,000,000 B, below the 8,376,832 B
     * pending:
     * keep iterating, no exact query, so dirty-sync-count stays 0. */
    CHECK_EQ(step.action, SWO_ACTION_ITERATE);
    CHECK_EQ(step.pending.precopy_bytes, DEV_PRECOPY + (RAM_DIRTY_PAGES - 8) * 4096);
    CHECK_EQ(step.pending.stopcopy_bytes, DEV_STOPCOPY + NIC_STOPCOPY);
    CHECK_EQ(step.threshold_bytes, 3000000);
    CHECK_EQ(step.pass, 0);
    CHECK_EQ(step.reserved, 0);
    SwoRamFigures fig = { .struct_size = sizeof fig };
    OK(swo_ram_get_figures(r.ram, &fig));
    CHECK_EQ(fig.total_bytes, 1ull << 30);
    CHECK_EQ(fig.normal_pages, 6);
    CHECK_EQ(fig.zero_pages, 2);
    CHECK_EQ(fig.dirty_pages, RAM_DIRTY_PAGES - 8);
    SwoVfioSizes z = { .struct_size = sizeof z };
    OK(swo_vfio_get_sizes(r.nic, &z));
    CHECK_EQ(z.stopcopy_size, NIC_STOPCOPY);
    SwoInfo info = { .struct_size = sizeof info };
    OK(swo_get_info(r.s, NOW, &info));
    CHECK_EQ(info.status, SWO_STATUS_ACTIVE);
    CHECK_EQ(info.pass, 0);
    CHECK_EQ(info.remaining_bytes, DEV_PRECOPY + (RAM_DIRTY_PAGES - 8) * 4096 + DEV_STOPCOPY +
                                       NIC_STOPCOPY);
    CHECK_EQ(info.setup_time_ms, 10);
    SwoAdvice advice = { .struct_size = sizeof advice };
    OK(swo_get_advice(r.s, NOW, &advice));
    CHECK_EQ(advice.struct_size, sizeof advice);
    rig_down(&r);
}

int main(void)
{
    test_reference_figures_are_the_fixtures();
    for (size_t i = 0; i < sizeof FILLERS / sizeof FILLERS[0]; i++) {
        const Filler *f = &FILLERS[i];
        Buffer ref;
        CHECK(f->size % 8 == 0 && f->first <= f->size);
        reference(f, &ref);
        test_older_header_struct_keeps_its_guard_bytes(f, &ref);
        test_older_header_struct_on_the_heap_is_not_overrun(f, &ref);
        test_newer_header_struct_keeps_its_tail(f, &ref);
        test_too_small_struct_size_is_refused_and_nothing_happens(f, &ref);
    }
    return check_summary("test_abi_structs");
}
