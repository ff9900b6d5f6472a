/* The built-in RAM model through the C header (issue 3, item 5): fast and exact queries,
 * page bookkeeping, garbage sizes, NULL arguments, re-entrancy, and swo_ram_free racing a
 * querying thread (run under ASan+UBSan by meson as well). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

#define GIB (1ull << 30)
#define PAGE 4096ull
#define PAGES_1G (GIB / PAGE) /* 262144 */



/* What a VMM keeps behind the sync's opaque. */
struct vmm {
    atomic_ulong calls;
    uint64_t dirty, newly;
};

static uint64_t sync_dirty(void *opaque, uint64_t *newly_dirtied)
{
    struct vmm *v = opaque;
    atomic_fetch_add(&v->calls, 1);
    *newly_dirtied = v->newly;
    return v->dirty;
}

static const SwoRamOps ram_ops = { sizeof(SwoRamOps), 0, sync_dirty };

static SwoPending query(SwoSession *s, bool exact)
{
    SwoPending p;
    memset(&p, 0, sizeof p);
    CHECK_STATUS(swo_query_pending(s, exact, &p), SWO_OK);
    return p;
}

static void test_fast_query_does_not_sync_and_exact_syncs_once(void)
{
    SwoSession *s = NULL;
    SwoRam *ram = NULL;
    struct vmm v = { 0, 10, 0 };
    CHECK_STATUS(swo_session_new(&s), SWO_OK);
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, &ram_ops, &v, &ram), SWO_OK);
    CHECK_STATUS(swo_ram_set_dirty_pages(ram, 1000), SWO_OK);

    SwoPending p = query(s, false);
    CHECK(p.precopy_bytes == 4096000ull); /* 1000 dirty pages of 4 KiB */
    CHECK(p.postcopy_bytes == 0 && p.stopcopy_bytes == 0);
    CHECK(atomic_load(&v.calls) == 0);

    p = query(s, true);
    CHECK(atomic_load(&v.calls) == 1);
    CHECK(p.precopy_bytes == 40960ull); /* the sync said 10 pages left */
    CHECK(p.total_bytes == 40960ull);

    swo_ram_free(ram);
    swo_session_free(s);
}

static void test_record_sent_bookkeeping(void)
{
    SwoSession *s = NULL;
    SwoRam *ram = NULL;
    SwoRamFigures f = { .struct_size = sizeof f };
    CHECK_STATUS(swo_session_new(&s), SWO_OK);
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, NULL, NULL, &ram), SWO_OK);
    CHECK_STATUS(swo_ram_set_dirty_pages(ram, 1000), SWO_OK);
    CHECK_STATUS(swo_ram_record_sent(ram, 300, 100), SWO_OK);
    CHECK_STATUS(swo_ram_record_sent(ram, 200, 50), SWO_OK);
    CHECK_STATUS(swo_ram_get_figures(ram, &f), SWO_OK);
    CHECK(f.total_bytes == GIB);
    CHECK(f.page_size == 4096);
    CHECK(f.normal_pages == 500);
    CHECK(f.normal_pages * f.page_size == 2048000ull); /* ram.normal-bytes */
    CHECK(f.zero_pages == 150);                         /* ram.duplicate */
    CHECK(f.dirty_pages == 350);
    CHECK(query(s, false).precopy_bytes == 350ull * 4096);

    /* More sent than dirty: floor 0. Counts saturate. */
    CHECK_STATUS(swo_ram_record_sent(ram, UINT64_MAX, UINT64_MAX), SWO_OK);
    CHECK_STATUS(swo_ram_get_figures(ram, &f), SWO_OK);
    CHECK(f.dirty_pages == 0);
    CHECK(f.normal_pages == UINT64_MAX && f.zero_pages == UINT64_MAX);

    /* Too many dirty pages: refused, nothing changes. */
    CHECK_STATUS(swo_ram_set_dirty_pages(ram, PAGES_1G), SWO_OK);
    CHECK_STATUS(swo_ram_set_dirty_pages(ram, PAGES_1G + 1), SWO_ERR_OUT_OF_RANGE);
    CHECK_STATUS(swo_ram_get_figures(ram, &f), SWO_OK);
    CHECK(f.dirty_pages == PAGES_1G);

    swo_ram_free(ram);
    swo_session_free(s);
}

struct events {
    atomic_int size_warnings;
    atomic_int total;
};

static void on_event(void *opaque, const char *json)
{
    struct events *e = opaque;
    atomic_fetch_add(&e->total, 1);
    if (strstr(json, "\"DEVICE_SIZE_WARNING\"") && strstr(json, "\"ram\""))
        atomic_fetch_add(&e->size_warnings, 1);
}

static void test_garbage_sync_is_clamped_with_one_warning(void)
{
    SwoSession *s = NULL;
    SwoRam *ram = NULL;
    struct events ev = { 0, 0 };
    struct vmm v = { 0, UINT64_MAX, UINT64_MAX };
    const SwoVmmOps vops = { sizeof vops, 0, NULL, NULL, on_event };
    CHECK_STATUS(swo_session_new(&s), SWO_OK);
    CHECK_STATUS(swo_session_set_vmm_ops(s, &vops, &ev), SWO_OK);
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, &ram_ops, &v, &ram), SWO_OK);
    for (int i = 0; i < 3; i++) {
        SwoPending p = query(s, true);
        CHECK(p.precopy_bytes == GIB); /* clamped to the whole RAM */
    }
    CHECK(atomic_load(&ev.size_warnings) == 1);
    CHECK(atomic_load(&ev.total) == 1);
    swo_ram_free(ram);
    swo_session_free(s);
}

static void test_bad_arguments(void)
{
    SwoSession *s = NULL;
    SwoRam *ram = NULL, *other = NULL;
    SwoRamFigures f = { .struct_size = sizeof f };
    SwoRamOps bad = ram_ops;
    CHECK_STATUS(swo_session_new(&s), SWO_OK);

    CHECK_STATUS(swo_ram_new(NULL, GIB, PAGE, &ram_ops, NULL, &ram), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, &ram_ops, NULL, NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_ram_set_dirty_pages(NULL, 1), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_ram_record_sent(NULL, 1, 1), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_ram_get_figures(NULL, &f), SWO_ERR_NULL_ARG);
    swo_ram_free(NULL);

    CHECK_STATUS(swo_ram_new(s, GIB, 3000, &ram_ops, NULL, &ram), SWO_ERR_INVALID_ARG);
    CHECK(strstr(last_message(), "3000") != NULL);
    CHECK_STATUS(swo_ram_new(s, GIB, 256, &ram_ops, NULL, &ram), SWO_ERR_OUT_OF_RANGE);
    CHECK_STATUS(swo_ram_new(s, 0, PAGE, &ram_ops, NULL, &ram), SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_ram_new(s, GIB + 1, PAGE, &ram_ops, NULL, &ram), SWO_ERR_INVALID_ARG);
    bad.struct_size = 4;
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, &bad, NULL, &ram), SWO_ERR_INVALID_ARG);
    bad = ram_ops;
    bad.reserved = 7;
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, &bad, NULL, &ram), SWO_ERR_INVALID_ARG);
    CHECK(ram == NULL);

    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, NULL, NULL, &ram), SWO_OK);
    CHECK_STATUS(swo_ram_get_figures(ram, NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, NULL, NULL, &other), SWO_ERR_EXISTS);
    CHECK(other == NULL);
    swo_ram_free(ram);
    /* Freed: the slot is free again. */
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, NULL, NULL, &other), SWO_OK);
    swo_ram_free(other);
    swo_session_free(s);
}

struct reenter {
    SwoSession *s;
    SwoStatus query_status;
};

static uint64_t reentering_sync(void *opaque, uint64_t *newly_dirtied)
{
    struct reenter *r = opaque;
    SwoPending p;
    (void)newly_dirtied;
    r->query_status = swo_query_pending(r->s, false, &p);
    return 3;
}

static void test_query_from_sync_dirty_is_reentrant(void)
{
    SwoSession *s = NULL;
    SwoRam *ram = NULL;
    struct reenter r = { NULL, SWO_OK };
    const SwoRamOps ops = { sizeof ops, 0, reentering_sync };
    CHECK_STATUS(swo_session_new(&s), SWO_OK);
    r.s = s;
    CHECK_STATUS(swo_ram_new(s, GIB, PAGE, &ops, &r, &ram), SWO_OK);
    CHECK(query(s, true).precopy_bytes == 3ull * 4096);
    CHECK(r.query_status == SWO_ERR_REENTRANT);
    swo_ram_free(ram);
    swo_session_free(s);
}

/* swo_ram_free while another thread queries: each model's opaque is heap memory freed right
 * after swo_ram_free returns, so a late sync_dirty is a use-after-free ASan reports. */
struct racer {
    SwoSession *s;
    atomic_bool stop;
    atomic_ulong queries;
};

static void *query_loop(void *arg)
{
    struct racer *r = arg;
    unsigned long n = 0;
    while (!atomic_load(&r->stop)) {
        SwoPending p;
        if (swo_query_pending(r->s, (n & 1) == 0, &p) != SWO_OK) {
            fprintf(stderr, "query failed: %s\n", last_message());
            abort();
        }
        n++;
    }
    atomic_store(&r->queries, n);
    return NULL;
}

static void test_free_while_another_thread_queries(void)
{
    SwoSession *s = NULL;
    struct racer r;
    pthread_t thread;
    CHECK_STATUS(swo_session_new(&s), SWO_OK);
    r.s = s;
    atomic_init(&r.stop, false);
    atomic_init(&r.queries, 0);
    if (pthread_create(&thread, NULL, query_loop, &r) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        failures++;
        swo_session_free(s);
        return;
    }
    for (int i = 0; i < 500; i++) {
        SwoRam *ram = NULL;
        struct vmm *v = calloc(1, sizeof *v);
        if (!v) {
            failures++;
            break;
        }
        v->dirty = 1;
        v->newly = 1;
        SwoStatus st = swo_ram_new(s, GIB, PAGE, &ram_ops, v, &ram);
        CHECK(st == SWO_OK);
        if (st == SWO_OK) {
            CHECK_STATUS(swo_ram_record_sent(ram, 1, 1), SWO_OK);
            swo_ram_free(ram);
        }
        free(v);
    }
    atomic_store(&r.stop, true);
    pthread_join(thread, NULL);
    CHECK(query(s, true).total_bytes == 0);
    swo_session_free(s);
}

int main(void)
{
    test_fast_query_does_not_sync_and_exact_syncs_once();
    test_record_sent_bookkeeping();
    test_garbage_sync_is_clamped_with_one_warning();
    test_bad_arguments();
    test_query_from_sync_dirty_is_reentrant();
    test_free_while_another_thread_queries();
    if (failures) {
        fprintf(stderr, "test_ram: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_ram: ok\n");
    return 0;
}
