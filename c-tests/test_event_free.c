/* Issue 13, defect 1: the VMM's `event` hook is a callback like every other.
 *
 * It used to run without the thread being marked as inside a callback of the session, so a
 * VMM tearing the session (or a model of it) down on an event freed memory that the call
 * delivering the event went on using: `swo_session_free` from the hook freed the session
 * under `EventQueue::drain` (a use-after-free that AddressSanitizer and valgrind report), and
 * `swo_vfio_free` / `swo_ram_free` freed their handles under the caller's feet.
 *
 * Now each free function called from the hook frees nothing, the handle keeps working, and
 * the thread's last error message says why (SWO_ERR_REENTRANT's message: "<call> called from
 * a callback of the same session; it would wait for itself"). Freed after the call, outside
 * the hook, each one frees normally (ASan's leak check and valgrind see nothing left).
 *
 * Built plain and under ASan+UBSan like every C test, and run under valgrind when it is
 * installed (c-tests/meson.build). Uses no out-struct, so it does not depend on their layout. */
#include <switchover.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

/* What a VMM keeps behind the hook's opaque: the handles it tears down on an event. */
struct vmm {
    SwoSession *s;
    SwoRam *ram;
    SwoVfio *vfio;
    const char *trigger;   /* the event name that makes the hook free */
    int which;             /* 0 session, 1 ram, 2 vfio */
    unsigned frees;        /* free calls the hook made */
    unsigned events;       /* events seen */
    char message[512];     /* the hook thread's last error message after its free */
};

static void on_event(void *opaque, const char *json)
{
    struct vmm *v = opaque;
    v->events++;
    if (v->frees || !strstr(json, v->trigger))
        return;
    /* A known message first: a free that silently "succeeds" leaves it in place. */
    CHECK_STATUS(swo_session_new(NULL), SWO_ERR_NULL_ARG);
    v->frees++;
    switch (v->which) {
    case 0: swo_session_free(v->s); break;
    case 1: swo_ram_free(v->ram); break;
    default: swo_vfio_free(v->vfio); break;
    }
    snprintf(v->message, sizeof v->message, "%s", last_message());
}

static SwoSession *session_with_hook(struct vmm *v)
{
    SwoSession *s = NULL;
    OK(swo_session_new(&s));
    const SwoVmmOps ops = { sizeof ops, 0, NULL, NULL, on_event };
    OK(swo_session_set_vmm_ops(s, &ops, v));
    OK(swo_set_capability(s, "events", true));
    v->s = s;
    return s;
}

static void check_refused(const struct vmm *v, const char *call)
{
    char want[256];
    snprintf(want, sizeof want, "%s called from a callback of the same session", call);
    CHECK_EQ(v->frees, 1);
    if (!strstr(v->message, want)) {
        fprintf(stderr, "%s: last error after %s in the event hook: \"%s\"\n", __func__, call,
                v->message);
        failures++;
    }
}

/* The MIGRATION "setup" event of swo_migration_start frees the session from the hook. */
static void test_session_free_from_the_event_hook(void)
{
    struct vmm v = { .trigger = "\"setup\"", .which = 0 };
    SwoSession *s = session_with_hook(&v);
    OK(swo_migration_start(s, 1000));
    check_refused(&v, "swo_session_free");
    /* The session is intact and goes on. */
    CHECK_EQ(swo_get_status(s), SWO_STATUS_SETUP);
    OK(swo_setup_done(s, 1010));
    CHECK_EQ(swo_get_status(s), SWO_STATUS_ACTIVE);
    OK(swo_cancel(s, 1020));
    CHECK(v.events >= 3);
    swo_session_free(s);
}

static uint64_t sync_nothing(void *opaque, uint64_t *newly_dirtied)
{
    (void)opaque;
    *newly_dirtied = 0;
    return 0;
}

/* The hook frees the RAM model on the MIGRATION "setup" event. */
static void test_ram_free_from_the_event_hook(void)
{
    struct vmm v = { .trigger = "\"setup\"", .which = 1 };
    SwoSession *s = session_with_hook(&v);
    const SwoRamOps ops = { sizeof ops, 0, sync_nothing };
    OK(swo_ram_new(s, 1 << 20, 4096, &ops, NULL, &v.ram));
    OK(swo_migration_start(s, 1000));
    check_refused(&v, "swo_ram_free");
    /* Still registered and allocated. */
    OK(swo_ram_set_dirty_pages(v.ram, 256));
    CHECK_STATUS(swo_ram_set_dirty_pages(v.ram, 257), SWO_ERR_OUT_OF_RANGE);
    swo_ram_free(v.ram);
    swo_session_free(s);
}

static int failing_stop_copy(void *opaque, uint64_t *len)
{
    (void)opaque;
    (void)len;
    return -EIO;
}

/* A reader failing its first read raises DEVICE_SIZE_WARNING at swo_vfio_new; the hook frees
 * the device it was just given (`*out` is written before events are delivered). */
static void test_vfio_free_from_the_event_hook(void)
{
    struct vmm v = { .trigger = "\"DEVICE_SIZE_WARNING\"", .which = 2 };
    SwoSession *s = session_with_hook(&v);
    const SwoVfioOps ops = { sizeof ops, 0, failing_stop_copy, NULL };
    OK(swo_vfio_new(s, "0000:3b:00.0", &ops, NULL, &v.vfio));
    check_refused(&v, "swo_vfio_free");
    /* The device stays registered and working. */
    OK(swo_vfio_set_state(v.vfio, SWO_VFIO_STATE_STOP_COPY));
    OK(swo_vfio_record_read(v.vfio, 4096));
    swo_vfio_free(v.vfio);
    swo_session_free(s);
}

int main(void)
{
    test_session_free_from_the_event_hook();
    test_ram_free_from_the_event_hook();
    test_vfio_free_from_the_event_hook();
    return check_summary("test_event_free");
}
