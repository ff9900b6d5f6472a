/* The convergence engine through the public header: the seed's vGPU story, invalid
 * transitions, pause-before-switchover, exact sizing with the guest stopped, and the
 * switchover that steps back (QEMU-BEHAVIOUR.md §One loop pass, §Expected downtime,
 * §Status and transitions; issue 3 items 6-8). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

/* ---- a device and a VMM ---------------------------------------------------------------- */

typedef struct Device {
    SwoPending fast;   /* what fast queries report */
    SwoPending exact;  /* what exact (and final) queries report */
    unsigned fast_queries, exact_queries, final_queries;
    unsigned exact_while_stopped;
    const int *guest_stopped;
} Device;

static void device_query(void *opaque, SwoPending *pending, bool exact, bool final)
{
    Device *d = opaque;
    const SwoPending *src = exact ? &d->exact : &d->fast;
    if (!exact)
        d->fast_queries++;
    else if (final)
        d->final_queries++;
    else
        d->exact_queries++;
    if (exact && d->guest_stopped && *d->guest_stopped)
        d->exact_while_stopped++;
    pending->precopy_bytes += src->precopy_bytes;
    pending->stopcopy_bytes += src->stopcopy_bytes;
    pending->postcopy_bytes += src->postcopy_bytes;
}

static void device_set(Device *d, uint64_t precopy, uint64_t stopcopy)
{
    d->fast.precopy_bytes = d->exact.precopy_bytes = precopy;
    d->fast.stopcopy_bytes = d->exact.stopcopy_bytes = stopcopy;
    d->fast.postcopy_bytes = d->exact.postcopy_bytes = 0;
}

typedef struct Vmm {
    int stops, resumes;
    int guest_stopped;
    int stalls, adjusted, rollbacks, size_warnings, passes;
    char statuses[512]; /* the MIGRATION statuses, comma separated */
} Vmm;

static int vmm_stop(void *opaque)
{
    Vmm *v = opaque;
    v->stops++;
    v->guest_stopped = 1;
    return 0;
}

static int vmm_resume(void *opaque)
{
    Vmm *v = opaque;
    v->resumes++;
    v->guest_stopped = 0;
    return 0;
}

static void vmm_event(void *opaque, const char *event_json)
{
    Vmm *v = opaque;
    /* The event without blanks, so the checks below need not know QMP's spacing. */
    char json[4096];
    size_t n_out = 0;
    for (const char *c = event_json; *c && n_out + 1 < sizeof json; c++)
        if (*c != ' ')
            json[n_out++] = *c;
    json[n_out] = '\0';
    const char *status = strstr(json, "\"event\":\"MIGRATION\",\"data\":{\"status\":\"");
    if (status) {
        status += strlen("\"event\":\"MIGRATION\",\"data\":{\"status\":\"");
        size_t n = strcspn(status, "\"");
        size_t used = strlen(v->statuses);
        if (used + n + 2 < sizeof v->statuses) {
            if (used)
                strcat(v->statuses, ",");
            strncat(v->statuses, status, n);
        }
    }
    if (strstr(json, "\"event\":\"MIGRATION_STALL\""))
        v->stalls++;
    if (strstr(json, "\"event\":\"MIGRATION_DOWNTIME_ADJUSTED\""))
        v->adjusted++;
    if (strstr(json, "\"event\":\"MIGRATION_SWITCHOVER_ROLLBACK\""))
        v->rollbacks++;
    if (strstr(json, "\"event\":\"DEVICE_SIZE_WARNING\""))
        v->size_warnings++;
    if (strstr(json, "\"event\":\"MIGRATION_PASS\""))
        v->passes++;
}

/* A session with one device registered with `flags`, the VMM's ops (with or without
 * vm_stop/vm_resume), and the `events` capability. NULL on failure. */
static SwoSession *rig(Device *dev, uint32_t flags, Vmm *vmm, bool can_stop)
{
    SwoSession *s = NULL;
    uint64_t id = 0;
    SwoHandlerOps ops = { sizeof(SwoHandlerOps), flags, device_query, NULL };
    SwoVmmOps vops = { sizeof(SwoVmmOps), 0, can_stop ? vmm_stop : NULL,
                       can_stop ? vmm_resume : NULL, vmm_event };
    memset(vmm, 0, sizeof *vmm);
    dev->guest_stopped = &vmm->guest_stopped;
    if (swo_session_new(&s) != SWO_OK)
        return NULL;
    OK(swo_session_set_vmm_ops(s, &vops, vmm));
    OK(swo_register_handler(s, "dev", 0, &ops, dev, &id));
    OK(swo_set_capability(s, "events", true));
    return s;
}

/* migration_start at 0, setup_done at 10, then one window of `bytes` closed at 100. */
static void start(SwoSession *s, uint64_t bytes)
{
    OK(swo_migration_start(s, 0));
    OK(swo_setup_done(s, 10));
    OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, bytes));
    OK(swo_update_counters(s, 100));
}

/* ---- the vGPU story ---------------------------------------------------------------------
 * A vGPU with 2,050,000,000 B (~1.91 GiB) of stop-copy state, idle RAM, avail-switchover-
 * bandwidth 1 GiB/s (1,073,741,824 B/s): expected downtime trunc(2.05e9 / 2^30 * 1000) =
 * 1909 ms. */
#define VGPU_STOPCOPY 2050000000ull

/* Runs passes of 100 ms from *now; returns the first non-ITERATE action (or ITERATE). */
static uint32_t run_passes(SwoSession *s, uint64_t *now, int passes, uint64_t *pass_out)
{
    SwoStep step = { .struct_size = sizeof step };
    for (int i = 0; i < passes; i++) {
        *now += 100;
        OK(swo_update_counters(s, *now));
        OK(swo_iteration_step(s, *now, &step));
        if (step.action != SWO_ACTION_ITERATE)
            break;
    }
    if (pass_out)
        *pass_out = step.pass;
    return step.action;
}

static SwoSession *vgpu_session(Device *dev, Vmm *vmm, const char *limit)
{
    SwoSession *s = rig(dev, SWO_HANDLER_NO_POSTCOPY, vmm, true);
    if (!s)
        return NULL;
    device_set(dev, 0, VGPU_STOPCOPY);
    OK(swo_set_parameter(s, "avail-switchover-bandwidth", "1G"));
    OK(swo_set_parameter(s, "downtime-limit", limit));
    start(s, 0);
    return s;
}

static void test_vgpu_story(void)
{
    Device dev;
    Vmm vmm;
    SwoInfo info = { .struct_size = sizeof info };
    SwoAdvice advice = { .struct_size = sizeof advice };
    uint64_t now = 100, pass = 0;
    memset(&dev, 0, sizeof dev);

    /* 1000 ms and 1500 ms never switch over. */
    const char *limits[] = { "1000", "1500" };
    for (int i = 0; i < 2; i++) {
        now = 100;
        SwoSession *s = vgpu_session(&dev, &vmm, limits[i]);
        CHECK(s != NULL);
        if (!s)
            return;
        CHECK(run_passes(s, &now, 40, &pass) == SWO_ACTION_ITERATE);
        CHECK(pass == 41); /* migrate_init starts dirty-sync-count at 1 */
        OK(swo_get_info(s, now, &info));
        CHECK(info.expected_downtime_ms == 1909);
        CHECK(info.switchover_bw == 1073741824.0);
        CHECK(info.last_sync_bytes == VGPU_STOPCOPY);
        CHECK(info.status == SWO_STATUS_ACTIVE);
        CHECK(info.flags & SWO_INFO_HAS_REMAINING);
        CHECK(info.flags & SWO_INFO_STALLED);
        swo_session_free(s);
    }

    /* Stall and advice at 1000 ms; then 2000 ms switches over on the next pass. */
    now = 100;
    SwoSession *s = vgpu_session(&dev, &vmm, "1000");
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(run_passes(s, &now, 5, NULL) == SWO_ACTION_ITERATE);
    OK(swo_get_advice(s, now, &advice));
    CHECK(!(advice.flags & SWO_ADVICE_STALLED));
    CHECK(advice.recommended_downtime_ms == 0);
    CHECK(run_passes(s, &now, 1, NULL) == SWO_ACTION_ITERATE); /* pass 6: 5 without progress */
    OK(swo_get_advice(s, now, &advice));
    CHECK(advice.flags & SWO_ADVICE_STALLED);
    CHECK(!(advice.flags & SWO_ADVICE_WILL_SWITCHOVER));
    CHECK(advice.passes_since_progress == 5);
    CHECK(advice.best_remaining_bytes == VGPU_STOPCOPY);
    CHECK(advice.expected_downtime_ms == 1909);
    CHECK(advice.recommended_downtime_ms == 2100); /* 1909 * 1.10, rounded up */
    CHECK(vmm.stalls == 1);
    OK(swo_set_parameter(s, "downtime-limit", "2000"));
    OK(swo_get_advice(s, now, &advice));
    CHECK(advice.flags & SWO_ADVICE_WILL_SWITCHOVER);
    CHECK(advice.recommended_downtime_ms == 0);
    CHECK(run_passes(s, &now, 1, NULL) == SWO_ACTION_SWITCHOVER);
    swo_session_free(s);

    /* auto-downtime-max 3000: converges by itself (stall at the 6th exact pass, switchover
     * at the 7th: dirty-sync-count 8, counting from migrate_init's 1). */
    now = 100;
    s = vgpu_session(&dev, &vmm, "300");
    CHECK(s != NULL);
    if (!s)
        return;
    OK(swo_set_parameter(s, "auto-downtime-max", "3000"));
    CHECK(run_passes(s, &now, 20, &pass) == SWO_ACTION_SWITCHOVER);
    CHECK(pass == 8);
    CHECK(vmm.adjusted == 1);
    {
        char buf[2048];
        size_t len = 0;
        OK(swo_query_parameters_json(s, buf, sizeof buf, &len));
        CHECK(strstr(buf, "\"downtime-limit\": 2100") != NULL);
    }
    swo_session_free(s);

    /* auto-downtime-max below the advice: flagged, nothing changed. */
    now = 100;
    s = vgpu_session(&dev, &vmm, "1000");
    CHECK(s != NULL);
    if (!s)
        return;
    OK(swo_set_parameter(s, "auto-downtime-max", "2000"));
    CHECK(run_passes(s, &now, 10, NULL) == SWO_ACTION_ITERATE);
    OK(swo_get_advice(s, now, &advice));
    CHECK(advice.flags & SWO_ADVICE_BEYOND_MAX);
    CHECK(advice.recommended_downtime_ms == 2100);
    CHECK(vmm.adjusted == 0);
    swo_session_free(s);
}

/* ---- invalid transitions ------------------------------------------------------------- */

static void test_invalid_transitions(void)
{
    Device dev;
    Vmm vmm;
    SwoStep step = { .struct_size = sizeof step };
    SwoPending fin;
    bool proceed = true;
    memset(&dev, 0, sizeof dev);
    SwoSession *s = rig(&dev, 0, &vmm, true);
    CHECK(s != NULL);
    if (!s)
        return;

    CHECK(swo_get_status(s) == SWO_STATUS_NONE);
    CHECK_STATUS(swo_setup_done(s, 1), SWO_ERR_BAD_STATE);
    CHECK(strstr(last_message(), "'none'") != NULL);
    CHECK_STATUS(swo_iteration_step(s, 1, &step), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_switchover_begin(s, 1, &fin, &proceed), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_complete(s, 1), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_cancel(s, 1), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_fail(s, 1, "x"), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_update_counters(s, 1), SWO_ERR_BAD_STATE);
    CHECK(swo_get_status(s) == SWO_STATUS_NONE);
    CHECK(proceed == true); /* outputs untouched on failure */

    OK(swo_migration_start(s, 0));
    CHECK_STATUS(swo_migration_start(s, 1), SWO_ERR_BAD_STATE);
    CHECK(strstr(last_message(), "'setup'") != NULL);
    CHECK_STATUS(swo_iteration_step(s, 1, &step), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_complete(s, 1), SWO_ERR_BAD_STATE);
    CHECK(swo_get_status(s) == SWO_STATUS_SETUP);

    OK(swo_setup_done(s, 2));
    CHECK_STATUS(swo_setup_done(s, 3), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_complete(s, 3), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_migrate_continue(s, SWO_STATUS_PRE_SWITCHOVER), SWO_ERR_BAD_STATE);
    CHECK(strcmp(last_message(), "Migration not in expected state: active") == 0);
    /* qmp_migrate_continue: naming the current state when not paused does nothing. */
    OK(swo_migrate_continue(s, SWO_STATUS_ACTIVE));
    CHECK(swo_get_status(s) == SWO_STATUS_ACTIVE);
    CHECK_STATUS(swo_migrate_continue(s, 42), SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_postcopy_start(s, 3), SWO_ERR_BAD_STATE);
    CHECK(swo_get_status(s) == SWO_STATUS_ACTIVE);

    /* Bad arguments. */
    CHECK_STATUS(swo_record_transferred(s, 2, 100), SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_record_transferred(NULL, SWO_CHANNEL_MAIN, 100), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_iteration_step(s, 3, NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_switchover_begin(s, 3, NULL, &proceed), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_get_info(s, 3, NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_get_advice(NULL, 3, NULL), SWO_ERR_NULL_ARG);
    CHECK(swo_get_status(NULL) == SWO_STATUS_NONE);
    CHECK(swo_get_status(s) == SWO_STATUS_ACTIVE);

    OK(swo_cancel(s, 4));
    CHECK(swo_get_status(s) == SWO_STATUS_CANCELLED);
    CHECK_STATUS(swo_cancel(s, 5), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_fail(s, 5, NULL), SWO_ERR_BAD_STATE);
    CHECK_STATUS(swo_iteration_step(s, 5, &step), SWO_ERR_BAD_STATE);
    CHECK(swo_get_status(s) == SWO_STATUS_CANCELLED);

    OK(swo_migration_start(s, 10));
    OK(swo_fail(s, 11, "link down"));
    CHECK(swo_get_status(s) == SWO_STATUS_FAILED);
    CHECK_STATUS(swo_complete(s, 12), SWO_ERR_BAD_STATE);
    CHECK(swo_get_status(s) == SWO_STATUS_FAILED);
    CHECK(strcmp(vmm.statuses, "setup,active,cancelling,cancelled,setup,failed") == 0);
    swo_session_free(s);
}

/* ---- pause-before-switchover ----------------------------------------------------------- */

static void test_pause_before_switchover(void)
{
    Device dev;
    Vmm vmm;
    SwoStep step = { .struct_size = sizeof step };
    SwoPending fin;
    bool proceed = true;
    memset(&dev, 0, sizeof dev);
    SwoSession *s = rig(&dev, 0, &vmm, true);
    CHECK(s != NULL);
    if (!s)
        return;
    OK(swo_set_capability(s, "pause-before-switchover", true));
    device_set(&dev, 0, 1000000);
    start(s, 1000000); /* threshold 3,000,000 B */
    OK(swo_iteration_step(s, 100, &step));
    CHECK(step.action == SWO_ACTION_SWITCHOVER);
    CHECK(step.threshold_bytes == 3000000);

    OK(swo_switchover_begin(s, 110, &fin, &proceed));
    CHECK(!proceed);
    CHECK(swo_get_status(s) == SWO_STATUS_PRE_SWITCHOVER);
    CHECK(dev.final_queries == 0);
    OK(swo_switchover_begin(s, 120, &fin, &proceed)); /* still paused */
    CHECK(!proceed);
    CHECK_STATUS(swo_migrate_continue(s, SWO_STATUS_ACTIVE), SWO_ERR_BAD_STATE);
    CHECK(strcmp(last_message(), "Migration not in expected state: pre-switchover") == 0);
    CHECK(swo_get_status(s) == SWO_STATUS_PRE_SWITCHOVER);

    OK(swo_migrate_continue(s, SWO_STATUS_PRE_SWITCHOVER));
    CHECK(swo_get_status(s) == SWO_STATUS_DEVICE);
    OK(swo_switchover_begin(s, 130, &fin, &proceed));
    CHECK(proceed);
    CHECK(dev.final_queries == 1);
    CHECK(fin.stopcopy_bytes == 1000000 && fin.total_bytes == 1000000);
    OK(swo_complete(s, 150));
    CHECK(swo_get_status(s) == SWO_STATUS_COMPLETED);
    {
        SwoInfo info = { .struct_size = sizeof info };
        OK(swo_get_info(s, 9999, &info));
        CHECK(info.total_time_ms == 150);
        CHECK(info.setup_time_ms == 10);
        CHECK(info.downtime_ms == 40); /* stopped at 110, completed at 150 */
        CHECK(!(info.flags & SWO_INFO_HAS_REMAINING));
    }
    CHECK(strcmp(vmm.statuses, "setup,active,pre-switchover,device,completed") == 0);
    CHECK(vmm.stops == 1 && vmm.resumes == 0);
    swo_session_free(s);
}

/* ---- pause-before-switchover on the way to postcopy ------------------------------------
 * active -> pre-switchover -> device -> postcopy-active: the first swo_postcopy_start stops
 * the guest and waits in pre-switchover; after migrate-continue the second one starts
 * postcopy. */

static void test_pause_before_postcopy(void)
{
    Device dev;
    Vmm vmm;
    SwoStep step = { .struct_size = sizeof step };
    SwoPending fin;
    bool proceed = true;
    memset(&dev, 0, sizeof dev);
    SwoSession *s = rig(&dev, 0, &vmm, true);
    CHECK(s != NULL);
    if (!s)
        return;
    OK(swo_set_capability(s, "pause-before-switchover", true));
    OK(swo_set_capability(s, "postcopy-ram", true));
    device_set(&dev, 100, 0);
    dev.fast.postcopy_bytes = dev.exact.postcopy_bytes = 1ull << 30;
    start(s, 1000000); /* threshold 3,000,000 B */
    OK(swo_postcopy_request(s));
    OK(swo_iteration_step(s, 100, &step));
    CHECK(step.action == SWO_ACTION_START_POSTCOPY);

    OK(swo_postcopy_start(s, 110));
    CHECK(swo_get_status(s) == SWO_STATUS_PRE_SWITCHOVER);
    CHECK(vmm.stops == 1 && vmm.resumes == 0);
    OK(swo_postcopy_start(s, 115)); /* still paused: nothing changes */
    CHECK(swo_get_status(s) == SWO_STATUS_PRE_SWITCHOVER);
    CHECK_STATUS(swo_switchover_begin(s, 115, &fin, &proceed), SWO_ERR_BAD_STATE);
    OK(swo_migrate_continue(s, SWO_STATUS_PRE_SWITCHOVER));
    CHECK(swo_get_status(s) == SWO_STATUS_DEVICE);
    OK(swo_postcopy_start(s, 140));
    CHECK(swo_get_status(s) == SWO_STATUS_POSTCOPY_ACTIVE);
    {
        SwoInfo info = { .struct_size = sizeof info };
        OK(swo_get_info(s, 9999, &info));
        CHECK(info.downtime_ms == 30); /* stopped at 110, postcopy from 140 */
    }
    CHECK(strcmp(vmm.statuses, "setup,active,pre-switchover,device,postcopy-active") == 0);
    CHECK(vmm.stops == 1 && vmm.resumes == 0);
    /* qmp_migrate_cancel: the destination runs the guest, no cancel. */
    CHECK_STATUS(swo_cancel(s, 150), SWO_ERR_BAD_STATE);
    CHECK(strcmp(last_message(), "Postcopy migration in progress, cannot cancel.") == 0);
    CHECK(swo_get_status(s) == SWO_STATUS_POSTCOPY_ACTIVE);
    swo_session_free(s);
}

/* ---- exact sizing with the guest stopped ---------------------------------------------- */

static void test_stopped_vm_sizing(void)
{
    Device dev;
    Vmm vmm;
    SwoStep step = { .struct_size = sizeof step };
    SwoPending fin;
    bool proceed = false;
    memset(&dev, 0, sizeof dev);
    SwoSession *s = rig(&dev, SWO_HANDLER_EXACT_NEEDS_STOPPED_VM, &vmm, true);
    CHECK(s != NULL);
    if (!s)
        return;
    device_set(&dev, 0, 5000000);
    start(s, 1000000); /* threshold 3,000,000 B */

    /* Too much: each exact query runs with the guest stopped, which is resumed after. */
    for (int i = 1; i <= 3; i++) {
        OK(swo_iteration_step(s, 100 + (uint64_t)i, &step));
        CHECK(step.action == SWO_ACTION_ITERATE);
        CHECK(step.flags == SWO_STEP_EXACT);
        CHECK(vmm.stops == i && vmm.resumes == i);
    }
    CHECK(dev.exact_while_stopped == 3);
    CHECK(vmm.guest_stopped == 0);

    /* Fits: the guest stays stopped for the switchover; downtime counts from that stop. */
    device_set(&dev, 0, 2000000);
    OK(swo_iteration_step(s, 200, &step));
    CHECK(step.action == SWO_ACTION_SWITCHOVER);
    CHECK(step.flags == (SWO_STEP_EXACT | SWO_STEP_VM_STOPPED));
    CHECK(vmm.stops == 4 && vmm.resumes == 3);
    OK(swo_switchover_begin(s, 230, &fin, &proceed));
    CHECK(proceed);
    CHECK(vmm.stops == 4); /* no second stop */
    OK(swo_complete(s, 260));
    {
        SwoInfo info = { .struct_size = sizeof info };
        OK(swo_get_info(s, 260, &info));
        CHECK(info.downtime_ms == 60);
        CHECK(info.pass == 5); /* 4 exact passes after migrate_init's 1 */
    }
    CHECK(vmm.stops == 4 && vmm.resumes == 3);
    swo_session_free(s);

    /* Without vm_stop/vm_resume: queried as usual, one warning. */
    memset(&dev, 0, sizeof dev);
    s = rig(&dev, SWO_HANDLER_EXACT_NEEDS_STOPPED_VM, &vmm, false);
    CHECK(s != NULL);
    if (!s)
        return;
    device_set(&dev, 0, 5000000);
    start(s, 1000000);
    for (int i = 1; i <= 3; i++)
        OK(swo_iteration_step(s, 100 + (uint64_t)i, &step));
    CHECK(dev.exact_queries == 3);
    CHECK(vmm.size_warnings == 1);
    CHECK(vmm.stops == 0);
    CHECK(vmm.passes == 3);
    swo_session_free(s);
}

/* ---- the switchover that steps back ---------------------------------------------------- */

static void test_rollback(void)
{
    Device dev;
    Vmm vmm;
    SwoStep step = { .struct_size = sizeof step };
    SwoPending fin;
    bool proceed = true;
    memset(&dev, 0, sizeof dev);
    SwoSession *s = rig(&dev, 0, &vmm, true);
    CHECK(s != NULL);
    if (!s)
        return;
    OK(swo_set_capability(s, "switchover-rollback", true));
    OK(swo_set_parameter(s, "rollback-tolerance", "10"));
    device_set(&dev, 0, 2000000);
    start(s, 1000000); /* threshold 3,000,000 B */
    OK(swo_iteration_step(s, 100, &step));
    CHECK(step.action == SWO_ACTION_SWITCHOVER);

    /* The final query finds 3,300,001 B: over 3,000,000 + 10 %. */
    dev.exact.stopcopy_bytes = 3300001;
    OK(swo_switchover_begin(s, 110, &fin, &proceed));
    CHECK(!proceed);
    CHECK(fin.total_bytes == 3300001);
    CHECK(swo_get_status(s) == SWO_STATUS_ACTIVE);
    CHECK(vmm.stops == 1 && vmm.resumes == 1);
    CHECK(vmm.rollbacks == 1);
    CHECK_STATUS(swo_complete(s, 111), SWO_ERR_BAD_STATE);

    /* Next time the final query is within the tolerance (3,300,000 B): it proceeds. */
    device_set(&dev, 0, 2000000);
    OK(swo_iteration_step(s, 120, &step));
    CHECK(step.action == SWO_ACTION_SWITCHOVER);
    dev.exact.stopcopy_bytes = 3300000;
    OK(swo_switchover_begin(s, 130, &fin, &proceed));
    CHECK(proceed);
    CHECK(vmm.stops == 2 && vmm.resumes == 1);
    OK(swo_complete(s, 140));
    CHECK(strcmp(vmm.statuses, "setup,active,device,active,device,completed") == 0);
    swo_session_free(s);
}

/* ---- counters --------------------------------------------------------------------------- */

static void test_threshold_and_counters(void)
{
    Device dev;
    Vmm vmm;
    SwoInfo info = { .struct_size = sizeof info };
    memset(&dev, 0, sizeof dev);
    SwoSession *s = rig(&dev, 0, &vmm, true);
    CHECK(s != NULL);
    if (!s)
        return;
    OK(swo_set_parameter(s, "avail-switchover-bandwidth", "4000500B"));
    OK(swo_migration_start(s, 1000));
    OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, 600000));
    OK(swo_record_transferred(s, SWO_CHANNEL_MULTIFD, 400000));
    OK(swo_update_counters(s, 1099));
    OK(swo_get_info(s, 1099, &info));
    CHECK(info.threshold_bytes == 0); /* no window closed before 100 ms */
    OK(swo_update_counters(s, 1100));
    OK(swo_get_info(s, 1100, &info));
    CHECK(info.threshold_bytes == 1200150); /* 4000500 / 1000.0 * 300 */
    CHECK(info.mbps == 80.0);
    CHECK(info.transferred_bytes == 1000000);
    CHECK(info.expected_downtime_ms == 300); /* dirty-sync-count 1: the limit */
    swo_session_free(s);
}

int main(void)
{
    test_vgpu_story();
    test_invalid_transitions();
    test_pause_before_switchover();
    test_pause_before_postcopy();
    test_stopped_vm_sizing();
    test_rollback();
    test_threshold_and_counters();
    if (failures) {
        fprintf(stderr, "test_engine: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_engine: all checks passed\n");
    return 0;
}
