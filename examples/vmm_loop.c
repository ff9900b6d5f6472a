/* The smallest honest VMM integration of switchover.
 *
 * - The migration thread runs QEMU's loop: send what the rate limit allows, close the 100 ms
 *   bandwidth window, ask the library what to do, and act: iterate, or stop the guest, send the
 *   rest and complete.
 * - A monitor thread prints `info migrate` while the migration runs, as an operator would.
 *
 * The guest, its dirty-page tracking, the NIC VF and the link are simulated (a 2 GiB guest
 * dirtying 40 MiB/s, a NIC VF with 8 MiB of device state, a link of 1 GiB/s), and time is a
 * simulated millisecond clock: the library never reads a clock itself.
 * Build: cc vmm_loop.c $(pkg-config --cflags --libs switchover) -lpthread */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchover.h>

#define PAGE 4096ull
#define GUEST_BYTES (2ull << 30)
#define DIRTY_BYTES_PER_MS ((40ull << 20) / 1000) /* the guest dirties 40 MiB/s */
#define LINK_BYTES_PER_MS ((1ull << 30) / 1000)   /* 1 GiB/s */
#define NIC_STATE (8ull << 20)
#define TICK_MS 10

struct vmm {
    SwoSession *s;
    SwoRam *ram;
    SwoVfio *nic;
    atomic_ullong now_ms;       /* the VMM's monotonic clock (simulated) */
    atomic_int running;         /* guest vCPUs running */
    atomic_int done;
    uint64_t dirty_pages;       /* pages dirty in the "bitmap", owned by the migration thread */
    uint64_t newly_dirtied;
    uint64_t nic_state_left;
};

static void die(const char *what, SwoStatus st)
{
    char msg[256] = "";
    size_t len;
    swo_last_error_message(msg, sizeof msg, &len);
    fprintf(stderr, "%s: %s: %s\n", what, swo_status_name(st), msg);
    exit(1);
}
#define TRY(call)                          \
    do {                                   \
        SwoStatus st_ = (call);            \
        if (st_ != SWO_OK)                 \
            die(#call, st_);               \
    } while (0)

/* The dirty-bitmap sync, called by the library on exact queries. */
static uint64_t sync_dirty(void *opaque, uint64_t *newly_dirtied)
{
    struct vmm *v = opaque;
    *newly_dirtied = v->newly_dirtied;
    v->newly_dirtied = 0;
    return v->dirty_pages;
}

static int nic_stop_copy_size(void *opaque, uint64_t *len)
{
    struct vmm *v = opaque;
    *len = v->nic_state_left;
    return 0;
}

static int vm_stop(void *opaque)
{
    atomic_store(&((struct vmm *)opaque)->running, 0);
    return 0;
}

static int vm_resume(void *opaque)
{
    atomic_store(&((struct vmm *)opaque)->running, 1);
    return 0;
}

static void on_event(void *opaque, const char *event_json)
{
    (void)opaque;
    printf("event: %s\n", event_json);
}

/* Sends up to `budget` bytes of dirty RAM; returns the bytes sent. */
static uint64_t send_ram(struct vmm *v, uint64_t budget)
{
    uint64_t pages = budget / PAGE;
    if (pages > v->dirty_pages)
        pages = v->dirty_pages;
    v->dirty_pages -= pages;
    /* One page in ten is a zero page: sent as a marker, counted as duplicate. */
    TRY(swo_ram_record_sent(v->ram, pages - pages / 10, pages / 10));
    TRY(swo_record_transferred(v->s, SWO_CHANNEL_MAIN, (pages - pages / 10) * PAGE));
    return (pages - pages / 10) * PAGE;
}

static void guest_runs_for(struct vmm *v, uint64_t ms)
{
    uint64_t pages = ms * DIRTY_BYTES_PER_MS / PAGE;
    if (!atomic_load(&v->running))
        return;
    v->newly_dirtied += pages;
    v->dirty_pages += pages;
    if (v->dirty_pages > GUEST_BYTES / PAGE)
        v->dirty_pages = GUEST_BYTES / PAGE;
}

static void *migration_thread(void *opaque)
{
    struct vmm *v = opaque;
    SwoStep step = { .struct_size = sizeof step };
    SwoPending final;
    bool proceed;

    TRY(swo_migration_start(v->s, atomic_load(&v->now_ms)));
    v->dirty_pages = GUEST_BYTES / PAGE; /* the first pass sends everything */
    TRY(swo_ram_set_dirty_pages(v->ram, v->dirty_pages));
    TRY(swo_setup_done(v->s, atomic_fetch_add(&v->now_ms, 5) + 5));
    for (;;) {
        uint64_t now = atomic_fetch_add(&v->now_ms, TICK_MS) + TICK_MS;
        guest_runs_for(v, TICK_MS);
        send_ram(v, LINK_BYTES_PER_MS * TICK_MS);
        TRY(swo_ram_set_dirty_pages(v->ram, v->dirty_pages));
        TRY(swo_update_counters(v->s, now));
        TRY(swo_iteration_step(v->s, now, &step));
        if (step.action != SWO_ACTION_SWITCHOVER)
            continue;
        TRY(swo_switchover_begin(v->s, now, &final, &proceed));
        if (!proceed)
            continue; /* stepped back (rollback) or paused: go on iterating */
        /* Guest stopped: send what is left at full speed, then the device state. */
        {
            uint64_t left = v->dirty_pages * PAGE + v->nic_state_left;
            uint64_t ms = left / LINK_BYTES_PER_MS + 1;
            send_ram(v, v->dirty_pages * PAGE);
            TRY(swo_record_transferred(v->s, SWO_CHANNEL_MAIN, v->nic_state_left));
            TRY(swo_vfio_record_read(v->nic, v->nic_state_left));
            TRY(swo_vfio_record_read(v->nic, 0)); /* end of device data */
            v->nic_state_left = 0;
            TRY(swo_complete(v->s, atomic_fetch_add(&v->now_ms, ms) + ms));
        }
        break;
    }
    atomic_store(&v->done, 1);
    return NULL;
}

static void *monitor_thread(void *opaque)
{
    struct vmm *v = opaque;
    char text[4096];
    size_t len;
    uint64_t printed_at = 0;
    while (!atomic_load(&v->done)) {
        uint64_t now = atomic_load(&v->now_ms);
        if (now >= printed_at + 1000) { /* once a simulated second */
            TRY(swo_info_migrate_text(v->s, now, text, sizeof text, &len));
            printf("(monitor) info migrate at %" PRIu64 " ms\n%s", now, text);
            printed_at = now;
        }
        sched_yield();
    }
    return NULL;
}

int main(void)
{
    static struct vmm v;
    const SwoVmmOps vmm_ops = { sizeof vmm_ops, 0, vm_stop, vm_resume, on_event };
    const SwoRamOps ram_ops = { sizeof ram_ops, 0, sync_dirty };
    const SwoVfioOps nic_ops = { sizeof nic_ops, 0, nic_stop_copy_size, NULL };
    pthread_t mig, mon;
    char text[4096];
    size_t len;

    atomic_store(&v.now_ms, 100000);
    atomic_store(&v.running, 1);
    v.nic_state_left = NIC_STATE;
    TRY(swo_session_new(&v.s));
    TRY(swo_session_set_vmm_ops(v.s, &vmm_ops, &v));
    TRY(swo_set_capability(v.s, "events", true));
    TRY(swo_set_parameter(v.s, "max-bandwidth", "1G"));
    TRY(swo_ram_new(v.s, GUEST_BYTES, PAGE, &ram_ops, &v, &v.ram));
    TRY(swo_vfio_new(v.s, "0000:3b:00.1", &nic_ops, &v, &v.nic));

    if (pthread_create(&mig, NULL, migration_thread, &v) != 0 ||
        pthread_create(&mon, NULL, monitor_thread, &v) != 0)
        return 1;
    pthread_join(mig, NULL);
    pthread_join(mon, NULL);

    TRY(swo_info_migrate_text(v.s, atomic_load(&v.now_ms), text, sizeof text, &len));
    printf("(monitor) final info migrate\n%s", text);
    {
        int completed = swo_get_status(v.s) == SWO_STATUS_COMPLETED;
        swo_vfio_free(v.nic);
        swo_ram_free(v.ram);
        swo_session_free(v.s);
        return completed ? 0 : 1;
    }
}
