/* A seven-thread stress program for ThreadSanitizer (scripts/tsan.sh, issue 13): every
 * thread the library documents as allowed, at once, on one session.
 *
 *   - the migration thread: start, setup, then passes of send / update_counters /
 *     iteration_step, switchover_begin and complete when the step says so, and a new
 *     migration after every end (completed, cancelled, failed);
 *   - three recording threads: swo_record_transferred on both channels, the RAM model's
 *     swo_ram_record_sent and a VFIO device's swo_vfio_record_read;
 *   - two monitor threads: every report (query-migrate JSON, info migrate text, get_info,
 *     get_advice, parameters, capabilities, a query of the pending bytes);
 *   - one churn thread: registering and unregistering handlers, creating and freeing VFIO
 *     devices and the RAM model, setting parameters, replacing the VMM ops, cancel and fail.
 *
 * Every call must return a status it documents (never SWO_ERR_PANIC); the figures printed at
 * the end (steps, switchovers, completions, registrations, ...) show that the run did the
 * work. Run time: STRESS_SECONDS (default 10). Exit 0 when no check failed. */
#define _GNU_SOURCE
#include <switchover.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static SwoSession *s;
static atomic_bool stop;

static atomic_ulong steps, switchovers, completions, rollbacks_or_pauses, migrations;
static atomic_ulong registrations, vfio_churn, ram_churn, param_sets, ops_swaps;
static atomic_ulong cancels, fails, reports, records, events_seen;

/* A device whose pending bytes the migration thread drains as it "sends". */
struct device {
    atomic_ullong precopy;
    atomic_ullong stopcopy;
    atomic_ulong calls;
};

static struct device main_dev;

static void device_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct device *d = opaque;
    (void)exact;
    (void)final;
    atomic_fetch_add(&d->calls, 1);
    p->precopy_bytes += atomic_load(&d->precopy);
    p->stopcopy_bytes += atomic_load(&d->stopcopy);
}

static bool device_active(void *opaque)
{
    struct device *d = opaque;
    return atomic_load(&d->calls) % 11 != 5;
}

static int vfio_stop_copy(void *opaque, uint64_t *len)
{
    struct device *d = opaque;
    atomic_fetch_add(&d->calls, 1);
    *len = atomic_load(&d->stopcopy);
    return 0;
}

static int vfio_precopy(void *opaque, uint64_t *init, uint64_t *dirty)
{
    struct device *d = opaque;
    *init = atomic_load(&d->precopy);
    *dirty = 4096;
    return 0;
}

static uint64_t ram_sync(void *opaque, uint64_t *newly)
{
    atomic_ulong *n = opaque;
    unsigned long v = atomic_fetch_add(n, 1);
    *newly = v % 17;
    return v % 1000;
}

static atomic_ulong ram_syncs;

/* The VMM: stop, resume, events. Two instances so the churn thread can swap them. */
struct vmm {
    atomic_ulong stops, resumes;
};
static struct vmm vmm_a, vmm_b;

static int vm_stop(void *opaque)
{
    struct vmm *v = opaque;
    atomic_fetch_add(&v->stops, 1);
    return 0;
}

static int vm_resume(void *opaque)
{
    struct vmm *v = opaque;
    atomic_fetch_add(&v->resumes, 1);
    return 0;
}

static void on_event(void *opaque, const char *json)
{
    (void)opaque;
    CHECK(json[0] == '{');
    atomic_fetch_add(&events_seen, 1);
}

static const SwoVmmOps vmm_ops = { sizeof vmm_ops, 0, vm_stop, vm_resume, on_event };

/* Every status a call may return in this program: any documented code but a panic. */
static void check_rc(SwoStatus rc, const char *what)
{
    if (rc == SWO_ERR_PANIC || rc > SWO_ERR_PANIC) {
        fprintf(stderr, "%s returned %s: %s\n", what, swo_status_name(rc), last_message());
        failures++;
    }
}

static uint64_t clock_ms(void)
{
    static atomic_ullong sim = 0;
    return atomic_fetch_add(&sim, 100) + 100;
}

static void *migration_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        atomic_store(&main_dev.precopy, 2 * GIB);
        atomic_store(&main_dev.stopcopy, 64 * MIB);
        SwoStatus rc = swo_migration_start(s, clock_ms());
        check_rc(rc, "migration_start");
        if (rc != SWO_OK) {
            sched_yield();
            continue;
        }
        atomic_fetch_add(&migrations, 1);
        check_rc(swo_setup_done(s, clock_ms()), "setup_done");
        for (int pass = 0; pass < 400 && !atomic_load(&stop); pass++) {
            uint32_t st = swo_get_status(s);
            if (st != SWO_STATUS_ACTIVE && st != SWO_STATUS_POSTCOPY_ACTIVE)
                break; /* cancelled or failed by the churn thread */
            uint64_t left = atomic_load(&main_dev.precopy);
            uint64_t sent = left > 256 * MIB ? 256 * MIB : left;
            atomic_store(&main_dev.precopy, left - sent);
            check_rc(swo_record_transferred(s, SWO_CHANNEL_MAIN, sent), "record main");
            uint64_t now = clock_ms();
            check_rc(swo_update_counters(s, now), "update_counters");
            SwoStep step = { .struct_size = sizeof step };
            rc = swo_iteration_step(s, now, &step);
            check_rc(rc, "iteration_step");
            if (rc != SWO_OK)
                continue;
            atomic_fetch_add(&steps, 1);
            CHECK(step.pending.total_bytes >= step.pending.precopy_bytes);
            if (step.action != SWO_ACTION_SWITCHOVER)
                continue;
            SwoPending fin;
            bool proceed = false;
            rc = swo_switchover_begin(s, clock_ms(), &fin, &proceed);
            check_rc(rc, "switchover_begin");
            if (rc != SWO_OK)
                continue;
            if (!proceed) {
                atomic_fetch_add(&rollbacks_or_pauses, 1);
                if (swo_get_status(s) == SWO_STATUS_PRE_SWITCHOVER)
                    check_rc(swo_migrate_continue(s, SWO_STATUS_PRE_SWITCHOVER), "continue");
                continue;
            }
            atomic_fetch_add(&switchovers, 1);
            check_rc(swo_record_transferred(s, SWO_CHANNEL_MAIN, fin.total_bytes), "record final");
            rc = swo_complete(s, clock_ms());
            check_rc(rc, "complete");
            if (rc == SWO_OK)
                atomic_fetch_add(&completions, 1);
            break;
        }
        uint32_t st = swo_get_status(s);
        if (st == SWO_STATUS_ACTIVE || st == SWO_STATUS_SETUP)
            check_rc(swo_cancel(s, clock_ms()), "cancel at the end of a round");
    }
    return NULL;
}

static SwoVfio *recorded_vfio; /* created before the threads, freed after them */
static SwoRam *stable_ram;     /* the churn thread owns it; recorders use the VFIO device */

static void *recording_thread(void *arg)
{
    intptr_t which = (intptr_t)arg;
    while (!atomic_load(&stop)) {
        switch (which) {
        case 0:
            check_rc(swo_record_transferred(s, SWO_CHANNEL_MULTIFD, 4096), "record multifd");
            break;
        case 1:
            check_rc(swo_record_transferred(s, SWO_CHANNEL_MAIN, 512), "record main");
            check_rc(swo_vfio_record_read(recorded_vfio, 1 << 16), "vfio_record_read");
            break;
        default:
            CHECK_STATUS(swo_record_transferred(s, 7, 1), SWO_ERR_INVALID_ARG);
            check_rc(swo_record_transferred(s, SWO_CHANNEL_MAIN, UINT64_MAX / 4), "record huge");
            break;
        }
        atomic_fetch_add(&records, 1);
    }
    return NULL;
}

static void *monitor_thread(void *arg)
{
    (void)arg;
    char buf[16384];
    size_t len;
    while (!atomic_load(&stop)) {
        uint64_t now = clock_ms();
        SwoStatus rc = swo_query_migrate_json(s, now, buf, sizeof buf, &len);
        check_rc(rc, "query_migrate_json");
        if (rc == SWO_OK)
            CHECK(buf[0] == '{' && strlen(buf) == len);
        check_rc(swo_info_migrate_text(s, now, buf, sizeof buf, &len), "info_migrate_text");
        SwoInfo info = { .struct_size = sizeof info };
        check_rc(swo_get_info(s, now, &info), "get_info");
        SwoAdvice advice = { .struct_size = sizeof advice };
        check_rc(swo_get_advice(s, now, &advice), "get_advice");
        check_rc(swo_query_parameters_json(s, buf, sizeof buf, &len), "query_parameters");
        check_rc(swo_query_capabilities_json(s, buf, sizeof buf, &len), "query_capabilities");
        SwoPending p;
        rc = swo_query_pending(s, (now / 100) % 2 == 0, &p);
        check_rc(rc, "query_pending");
        if (rc == SWO_OK)
            CHECK(p.total_bytes >= p.stopcopy_bytes);
        atomic_fetch_add(&reports, 1);
    }
    return NULL;
}

static void *churn_thread(void *arg)
{
    (void)arg;
    unsigned long i = 0;
    static const char *limits[] = { "300", "2000", "50", "100000" };
    while (!atomic_load(&stop)) {
        i++;
        /* A handler registered and removed; its opaque freed right after the removal. */
        struct device *d = calloc(1, sizeof *d);
        CHECK(d != NULL);
        atomic_store(&d->stopcopy, 8 * MIB);
        const SwoHandlerOps ops = { sizeof ops, (i % 3 == 0) ? SWO_HANDLER_EXACT_NEEDS_STOPPED_VM : 0,
                                    device_pending, device_active };
        uint64_t id = 0;
        SwoStatus rc = swo_register_handler(s, "churn", (uint32_t)(i % 4), &ops, d, &id);
        check_rc(rc, "register");
        if (rc == SWO_OK) {
            atomic_fetch_add(&registrations, 1);
            sched_yield();
            CHECK_STATUS(swo_unregister_handler(s, id), SWO_OK);
        }
        free(d);

        /* A VFIO device created and freed, its opaque freed after the free. */
        if (i % 2 == 0) {
            struct device *g = calloc(1, sizeof *g);
            atomic_store(&g->stopcopy, 512 * MIB);
            atomic_store(&g->precopy, 64 * MIB);
            const SwoVfioOps vops = { sizeof vops, 0, vfio_stop_copy, vfio_precopy };
            SwoVfio *v = NULL;
            rc = swo_vfio_new(s, "churn-vgpu", &vops, g, &v);
            check_rc(rc, "vfio_new");
            if (rc == SWO_OK) {
                check_rc(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY), "vfio_set_state");
                check_rc(swo_vfio_refresh(v), "vfio_refresh");
                swo_vfio_free(v);
                atomic_fetch_add(&vfio_churn, 1);
            }
            free(g);
        }

        /* The RAM model replaced now and then. */
        if (i % 5 == 0) {
            if (stable_ram) {
                swo_ram_free(stable_ram);
                stable_ram = NULL;
            }
            const SwoRamOps rops = { sizeof rops, 0, ram_sync };
            rc = swo_ram_new(s, 4 * GIB, 4096, &rops, &ram_syncs, &stable_ram);
            check_rc(rc, "ram_new");
            if (rc == SWO_OK) {
                check_rc(swo_ram_set_dirty_pages(stable_ram, 1000), "ram_set_dirty");
                check_rc(swo_ram_record_sent(stable_ram, 10, 5), "ram_record_sent");
                atomic_fetch_add(&ram_churn, 1);
            }
        }

        /* Parameters, and capabilities (refused while a migration runs). */
        check_rc(swo_set_parameter(s, "downtime-limit", limits[i % 4]), "set downtime-limit");
        check_rc(swo_set_parameter(s, "max-bandwidth", (i % 2) ? "1G" : "100"), "set max-bandwidth");
        check_rc(swo_set_parameters_json(s, "{\"stall-passes\": 3, \"auto-downtime-max\": 3000}"),
                 "set json");
        check_rc(swo_set_capability(s, "pause-before-switchover", i % 7 == 0), "set capability");
        atomic_fetch_add(&param_sets, 4);

        /* The VMM ops replaced: returns once no thread is in the old ones. */
        if (i % 13 == 0) {
            struct vmm *next = (i % 26 == 0) ? &vmm_a : &vmm_b;
            check_rc(swo_session_set_vmm_ops(s, &vmm_ops, next), "set_vmm_ops");
            atomic_fetch_add(&ops_swaps, 1);
        }

        /* Now and then the monitor cancels, or the VMM fails the migration. */
        if (i % 17 == 0) {
            if (swo_cancel(s, clock_ms()) == SWO_OK)
                atomic_fetch_add(&cancels, 1);
        } else if (i % 29 == 0) {
            if (swo_fail(s, clock_ms(), "stress: injected failure") == SWO_OK)
                atomic_fetch_add(&fails, 1);
        }
    }
    return NULL;
}

int main(void)
{
    const char *env = getenv("STRESS_SECONDS");
    int seconds = env ? atoi(env) : 10;
    OK(swo_session_new(&s));
    OK(swo_session_set_vmm_ops(s, &vmm_ops, &vmm_a));
    OK(swo_set_capability(s, "events", true));
    OK(swo_set_parameter(s, "avail-switchover-bandwidth", "1G"));
    const SwoHandlerOps ops = { sizeof ops, 0, device_pending, NULL };
    uint64_t main_id = 0;
    OK(swo_register_handler(s, "main-dev", 0, &ops, &main_dev, &main_id));
    static struct device recorded;
    atomic_store(&recorded.stopcopy, 16 * MIB);
    const SwoVfioOps vops = { sizeof vops, 0, vfio_stop_copy, NULL };
    OK(swo_vfio_new(s, "nic-vf", &vops, &recorded, &recorded_vfio));

    pthread_t t[7];
    CHECK_EQ(pthread_create(&t[0], NULL, migration_thread, NULL), 0);
    for (intptr_t i = 0; i < 3; i++)
        CHECK_EQ(pthread_create(&t[1 + i], NULL, recording_thread, (void *)i), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&t[4 + i], NULL, monitor_thread, NULL), 0);
    CHECK_EQ(pthread_create(&t[6], NULL, churn_thread, NULL), 0);

    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += seconds;
    do {
        struct timespec tick = { 0, 50 * 1000 * 1000 };
        nanosleep(&tick, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
    atomic_store(&stop, true);
    for (int i = 0; i < 7; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);

    swo_vfio_free(recorded_vfio);
    if (stable_ram)
        swo_ram_free(stable_ram);
    OK(swo_unregister_handler(s, main_id));
    swo_session_free(s);

    printf("stress: %d s, 7 threads: %lu migrations, %lu steps, %lu switchovers, %lu completed, "
           "%lu rollbacks/pauses, %lu cancels, %lu fails; %lu handler registrations, %lu VFIO "
           "devices, %lu RAM models, %lu parameter sets, %lu VMM-ops swaps; %lu records, "
           "%lu report rounds, %lu events\n",
           seconds, atomic_load(&migrations), atomic_load(&steps), atomic_load(&switchovers),
           atomic_load(&completions), atomic_load(&rollbacks_or_pauses), atomic_load(&cancels),
           atomic_load(&fails), atomic_load(&registrations), atomic_load(&vfio_churn),
           atomic_load(&ram_churn), atomic_load(&param_sets), atomic_load(&ops_swaps),
           atomic_load(&records), atomic_load(&reports), atomic_load(&events_seen));
    CHECK(atomic_load(&steps) > 0);
    CHECK(atomic_load(&switchovers) > 0);
    CHECK(atomic_load(&registrations) > 0);
    return check_summary("stress_threads");
}
