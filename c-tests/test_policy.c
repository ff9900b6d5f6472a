/* Operator policy through the public header (issue 15): the deadline and each of its actions
 * (also while paused before switchover, and after a cancel), the per-GiB deadline, postcopy
 * refused as an action, the stall action, every reason code with its name, the fixed
 * downtime in the threshold, predicted vs measured downtime and the measured switchover
 * bandwidth.
 *
 * The figures, hand-worked:
 * - avail-switchover-bandwidth 1G = 1,073,741,824 B/s; downtime-limit 300 ms: threshold
 *   (QEMU's migration_update_counters) = 1,073,741,824 / 1000 * 300 = 322,122,547.2 →
 *   322,122,547 B ("307 MiB").
 * - the vGPU: 2,050,000,000 B of stop-copy state ("1.91 GiB"); expected downtime (QEMU's
 *   migration_downtime_calc_expected) = trunc(2.05e9 / 2^30 * 1000) = trunc(1909.2) = 1909 ms.
 * - passes every 100 ms from 100: the first exact pass (t=100) is pass 2 and sets the best
 *   remaining; t=200..600 make 5 passes without progress: stalled at t=600 (stall-passes 5).
 * - downtime-fixed 50: threshold = 1,073,741.824 * (300 - 50) = 268,435,456 B exactly;
 *   expected downtime 1909 + 50 = 1959 ms. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

#define VGPU 2050000000ull
#define THRESHOLD_300 322122547ull

typedef struct Device {
    SwoPending figures;
} Device;

static void device_query(void *opaque, SwoPending *pending, bool exact, bool final)
{
    const Device *d = opaque;
    (void)exact;
    (void)final;
    pending->precopy_bytes += d->figures.precopy_bytes;
    pending->stopcopy_bytes += d->figures.stopcopy_bytes;
    pending->postcopy_bytes += d->figures.postcopy_bytes;
}

typedef struct Vmm {
    int stops, resumes;
    int deadlines, stall_actions;
    char last_deadline[1024]; /* the last MIGRATION_DEADLINE event, without blanks */
} Vmm;

static int vmm_stop(void *opaque)
{
    ((Vmm *)opaque)->stops++;
    return 0;
}

static int vmm_resume(void *opaque)
{
    ((Vmm *)opaque)->resumes++;
    return 0;
}

static void vmm_event(void *opaque, const char *event_json)
{
    Vmm *v = opaque;
    char json[1024];
    size_t n = 0;
    for (const char *c = event_json; *c && n + 1 < sizeof json; c++)
        if (*c != ' ')
            json[n++] = *c;
    json[n] = '\0';
    if (strstr(json, "\"event\":\"MIGRATION_DEADLINE\"")) {
        v->deadlines++;
        strcpy(v->last_deadline, json);
    }
    if (strstr(json, "\"event\":\"MIGRATION_STALL_ACTION\""))
        v->stall_actions++;
}

/* A session with one device (handler flags `flags`, figures `precopy`/`stopcopy`), VMM ops,
 * the `events` capability, avail-switchover-bandwidth 1G. */
static SwoSession *rig(Device *dev, Vmm *vmm, uint32_t flags, uint64_t precopy, uint64_t stopcopy)
{
    SwoSession *s = NULL;
    uint64_t id = 0;
    SwoHandlerOps ops = { sizeof(SwoHandlerOps), flags, device_query, NULL };
    SwoVmmOps vops = { sizeof(SwoVmmOps), 0, vmm_stop, vmm_resume, vmm_event };
    memset(vmm, 0, sizeof *vmm);
    memset(dev, 0, sizeof *dev);
    dev->figures.precopy_bytes = precopy;
    dev->figures.stopcopy_bytes = stopcopy;
    if (swo_session_new(&s) != SWO_OK)
        return NULL;
    OK(swo_session_set_vmm_ops(s, &vops, vmm));
    OK(swo_register_handler(s, "dev", 0, &ops, dev, &id));
    OK(swo_set_capability(s, "events", true));
    OK(swo_set_parameter(s, "avail-switchover-bandwidth", "1G"));
    return s;
}

/* `s = rig(...)`; a session that cannot be made fails the test, which returns. */
#define RIG_OR_RETURN(s, ...)      \
    do {                           \
        (s) = rig(__VA_ARGS__);    \
        CHECK((s) != NULL);        \
        if (!(s))                  \
            return;                \
    } while (0)

static void start_at(SwoSession *s, uint64_t t)
{
    OK(swo_migration_start(s, t));
    OK(swo_setup_done(s, t));
}

/* One pass at *now + 100: closes the window, steps. */
static SwoStep pass(SwoSession *s, uint64_t *now)
{
    SwoStep step = { .struct_size = sizeof step };
    *now += 100;
    OK(swo_update_counters(s, *now));
    OK(swo_iteration_step(s, *now, &step));
    return step;
}

static SwoInfo info_at(SwoSession *s, uint64_t now)
{
    SwoInfo info = { .struct_size = sizeof info };
    OK(swo_get_info(s, now, &info));
    return info;
}

static void text_at(SwoSession *s, uint64_t now, bool json, char *buf, size_t len)
{
    size_t out_len = 0;
    if (json)
        OK(swo_query_migrate_json(s, now, buf, len, &out_len));
    else
        OK(swo_info_migrate_text(s, now, buf, len, &out_len));
}

/* ---- deadline: cancel ----------------------------------------------------------------- */

static void test_deadline_cancel(void)
{
    Device dev;
    Vmm vmm;
    uint64_t now = 0;
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    OK(swo_set_parameter(s, "deadline", "1000"));
    start_at(s, 0);
    SwoStep step;
    for (int i = 0; i < 9; i++) {
        step = pass(s, &now);
        CHECK_EQ(step.action, SWO_ACTION_ITERATE);
        CHECK(!(step.flags & SWO_STEP_FORCED));
    }
    CHECK_EQ(now, 900);
    CHECK_EQ(step.reason, SWO_REASON_STALLED);
    step = pass(s, &now); /* t=1000: elapsed 1000 >= deadline 1000 */
    CHECK_EQ(step.action, SWO_ACTION_CANCELLED);
    CHECK_EQ(step.reason, SWO_REASON_DEADLINE_REACHED);
    CHECK_EQ(swo_get_status(s), SWO_STATUS_CANCELLED);
    CHECK(strcmp(swo_action_name(step.action), "cancelled") == 0);
    CHECK_EQ(vmm.deadlines, 1);
    CHECK(strstr(vmm.last_deadline, "\"action\":\"cancel\"") != NULL);
    CHECK(strstr(vmm.last_deadline, "\"elapsed\":1000") != NULL);
    CHECK(strstr(vmm.last_deadline, "\"deadline\":1000") != NULL);
    CHECK(strstr(vmm.last_deadline, "\"remaining\":2050000000") != NULL);
    CHECK(strstr(vmm.last_deadline, "\"expected-downtime\":1909") != NULL);
    SwoInfo info = info_at(s, 5000);
    CHECK_EQ(info.reason, SWO_REASON_DEADLINE_REACHED);
    CHECK_EQ(info.policy_action, SWO_POLICY_CANCEL);
    CHECK_EQ(info.deadline_ms, 1000);
    CHECK_EQ(info.total_time_ms, 1000);
    char buf[4096];
    text_at(s, 5000, true, buf, sizeof buf);
    CHECK(strstr(buf, "\"reason\": \"deadline-reached\"") != NULL);
    CHECK(strstr(buf, "\"reason-text\": \"deadline 1000 ms reached after 1000 ms: cancel\"") != NULL);
    text_at(s, 5000, false, buf, sizeof buf);
    CHECK(strstr(buf, "Reason: \t\tdeadline 1000 ms reached after 1000 ms: cancel\n") != NULL);
    swo_session_free(s);
}

/* ---- deadline: force-switchover, predicted vs measured, switchover bandwidth ---------- */

static void test_deadline_force_switchover(void)
{
    Device dev;
    Vmm vmm;
    uint64_t now = 0;
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, SWO_HANDLER_EXACT_NEEDS_STOPPED_VM, 0, VGPU);
    OK(swo_set_capability(s, "switchover-rollback", true));
    OK(swo_set_parameter(s, "deadline", "1000"));
    OK(swo_set_parameter(s, "deadline-action", "force-switchover"));
    OK(swo_set_parameter(s, "reuse-switchover-bandwidth", "on"));
    start_at(s, 0);
    SwoStep step;
    for (int i = 0; i < 9; i++)
        step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_ITERATE);
    step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_SWITCHOVER);
    CHECK(step.flags & SWO_STEP_FORCED);
    CHECK(step.flags & SWO_STEP_VM_STOPPED); /* stopped for the exact query, kept stopped */
    CHECK_EQ(step.reason, SWO_REASON_DEADLINE_REACHED);
    CHECK(strstr(vmm.last_deadline, "\"action\":\"force-switchover\"") != NULL);
    /* The final query shows 2.05e9 > 322,122,547 * 1.1: a rollback would step back, a forced
     * switchover does not. */
    SwoPending fin;
    bool proceed = false;
    OK(swo_switchover_begin(s, 1000, &fin, &proceed));
    CHECK(proceed);
    CHECK_EQ(swo_get_status(s), SWO_STATUS_DEVICE);
    /* Switching over, because of the deadline: the policy's reason stays until completion. */
    CHECK_EQ(info_at(s, 1500).reason, SWO_REASON_DEADLINE_REACHED);
    /* 2,050,000,000 B in 2050 ms (stop at 1000, complete at 3050): 1,000,000,000 B/s. */
    OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, VGPU));
    OK(swo_complete(s, 3050));
    SwoInfo info = info_at(s, 4000);
    CHECK_EQ(info.reason, SWO_REASON_SWITCHED_OVER);
    CHECK_EQ(info.policy_action, SWO_POLICY_FORCE_SWITCHOVER);
    CHECK_EQ(info.downtime_ms, 2050);
    CHECK_EQ(info.predicted_downtime_ms, 1909);
    CHECK_EQ(info.switchover_bytes, VGPU);
    CHECK(info.measured_switchover_bw == 1e9);
    char buf[4096];
    text_at(s, 4000, true, buf, sizeof buf);
    CHECK(strstr(buf, "\"predicted-downtime\": 1909") != NULL);
    CHECK(strstr(buf, "\"measured-downtime\": 2050") != NULL);
    CHECK(strstr(buf, "\"measured-switchover-bandwidth\": 1000000000") != NULL);
    /* reuse-switchover-bandwidth: the next migration starts from the measured figure. */
    size_t len = 0;
    OK(swo_query_parameters_json(s, buf, sizeof buf, &len));
    CHECK(strstr(buf, "\"avail-switchover-bandwidth\": 1000000000") != NULL);
    swo_session_free(s);
}

/* ---- deadline: postcopy, and its refusal ---------------------------------------------- */

static void test_deadline_postcopy(void)
{
    Device dev;
    Vmm vmm;
    uint64_t now = 0;
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    /* Without postcopy-ram: refused, nothing changes. */
    OK(swo_set_parameter(s, "deadline", "1000"));
    CHECK_STATUS(swo_set_parameter(s, "deadline-action", "postcopy"), SWO_ERR_UNSUPPORTED);
    CHECK(strcmp(last_message(),
                 "Parameter 'deadline-action' value 'postcopy' needs capability postcopy-ram") == 0);
    CHECK_STATUS(swo_set_parameters_json(s, "{\"deadline-action\": \"postcopy\"}"),
                 SWO_ERR_UNSUPPORTED);
    CHECK_STATUS(swo_set_parameter(s, "deadline-action", "abort"), SWO_ERR_INVALID_ARG);
    CHECK(strcmp(last_message(), "Parameter 'deadline-action' does not accept value 'abort'") == 0);
    char buf[4096];
    size_t len = 0;
    OK(swo_query_parameters_json(s, buf, sizeof buf, &len));
    CHECK(strstr(buf, "\"deadline-action\": \"cancel\"") != NULL);

    OK(swo_set_capability(s, "postcopy-ram", true));
    OK(swo_set_parameter(s, "deadline-action", "postcopy"));
    start_at(s, 0);
    SwoStep step;
    for (int i = 0; i < 10; i++)
        step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_START_POSTCOPY);
    CHECK(step.flags & SWO_STEP_FORCED);
    CHECK_EQ(step.reason, SWO_REASON_DEADLINE_REACHED);
    OK(swo_postcopy_start(s, 1000));
    CHECK_EQ(swo_get_status(s), SWO_STATUS_POSTCOPY_ACTIVE);
    step = pass(s, &now);
    CHECK_EQ(step.reason, SWO_REASON_POSTCOPY_ACTIVE);
    dev.figures.stopcopy_bytes = 0;
    step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_COMPLETE);
    CHECK_EQ(step.reason, SWO_REASON_POSTCOPY_DRAINED);
    OK(swo_complete(s, now));
    swo_session_free(s);

    /* A NO_POSTCOPY handler at set time: refused, naming it. */
    RIG_OR_RETURN(s, &dev, &vmm, SWO_HANDLER_NO_POSTCOPY, 0, VGPU);
    OK(swo_set_capability(s, "postcopy-ram", true));
    CHECK_STATUS(swo_set_parameter(s, "deadline-action", "postcopy"), SWO_ERR_UNSUPPORTED);
    CHECK(strstr(last_message(), "device 'dev' (instance 0) cannot take part in postcopy") != NULL);
    swo_session_free(s);

    /* A NO_POSTCOPY handler registered after the action was set: at the deadline the action
     * becomes cancel, and the event says why. */
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    OK(swo_set_capability(s, "postcopy-ram", true));
    OK(swo_set_parameter(s, "deadline", "1000"));
    OK(swo_set_parameter(s, "deadline-action", "postcopy"));
    Device vf;
    memset(&vf, 0, sizeof vf);
    SwoHandlerOps ops = { sizeof(SwoHandlerOps), SWO_HANDLER_NO_POSTCOPY, device_query, NULL };
    uint64_t id = 0;
    OK(swo_register_handler(s, "vf", 0, &ops, &vf, &id));
    now = 0;
    start_at(s, 0);
    for (int i = 0; i < 10; i++)
        step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_CANCELLED);
    CHECK_EQ(step.reason, SWO_REASON_DEADLINE_REACHED);
    CHECK_EQ(swo_get_status(s), SWO_STATUS_CANCELLED);
    CHECK(strstr(vmm.last_deadline, "\"action\":\"cancel\"") != NULL);
    CHECK(strstr(vmm.last_deadline, "\"requested-action\":\"postcopy\"") != NULL);
    CHECK_EQ(info_at(s, now).policy_action, SWO_POLICY_CANCEL);
    swo_session_free(s);
}

/* ---- deadline while paused before switchover, and after a cancel ---------------------- */

static void test_deadline_in_pause_and_after_cancel(void)
{
    Device dev;
    Vmm vmm;
    uint64_t now = 0;
    SwoPending fin;
    bool proceed = true;
    /* 100,000,000 B fit the threshold at the first pass; the pause holds the switchover. */
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, 100000000);
    OK(swo_set_capability(s, "pause-before-switchover", true));
    OK(swo_set_parameter(s, "deadline", "1000"));
    start_at(s, 0);
    SwoStep step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_SWITCHOVER);
    CHECK_EQ(step.reason, SWO_REASON_SWITCHOVER_READY);
    OK(swo_switchover_begin(s, 100, &fin, &proceed));
    CHECK(!proceed);
    CHECK_EQ(vmm.stops, 1);
    OK(swo_switchover_begin(s, 999, &fin, &proceed));
    CHECK(!proceed);
    CHECK_EQ(info_at(s, 999).reason, SWO_REASON_PAUSED_BEFORE_SWITCHOVER);
    CHECK_EQ(info_at(s, 999).predicted_downtime_ms, 93); /* trunc(1e8 / 2^30 * 1000) */
    CHECK_EQ(vmm.deadlines, 0);
    CHECK_STATUS(swo_switchover_begin(s, 1000, &fin, &proceed), SWO_ERR_BAD_STATE);
    CHECK(strstr(last_message(), "deadline 1000 ms reached after 1000 ms while paused") != NULL);
    CHECK_EQ(swo_get_status(s), SWO_STATUS_CANCELLED);
    CHECK_EQ(vmm.resumes, 1);
    CHECK_EQ(vmm.deadlines, 1);
    CHECK_EQ(info_at(s, 2000).reason, SWO_REASON_DEADLINE_REACHED);

    /* force-switchover in the pause: the pause ends as after migrate-continue. */
    OK(swo_set_parameter(s, "deadline-action", "force-switchover"));
    now = 2000;
    start_at(s, 2000);
    step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_SWITCHOVER);
    OK(swo_switchover_begin(s, now, &fin, &proceed));
    CHECK(!proceed);
    OK(swo_switchover_begin(s, 3000, &fin, &proceed));
    CHECK(proceed);
    CHECK_EQ(fin.total_bytes, 100000000);
    CHECK_EQ(swo_get_status(s), SWO_STATUS_DEVICE);
    CHECK_EQ(info_at(s, 3000).policy_action, SWO_POLICY_FORCE_SWITCHOVER);
    OK(swo_complete(s, 3100));
    swo_session_free(s);

    /* After the operator's cancel, the deadline does nothing; a new migration counts its
     * deadline from its own start. */
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    OK(swo_set_parameter(s, "deadline", "1000"));
    now = 0;
    start_at(s, 0);
    for (int i = 0; i < 5; i++)
        pass(s, &now);
    OK(swo_cancel(s, 500));
    SwoInfo info = info_at(s, 5000);
    CHECK_EQ(info.status, SWO_STATUS_CANCELLED);
    CHECK_EQ(info.reason, SWO_REASON_CANCELLED);
    CHECK_EQ(info.policy_action, 0);
    CHECK_EQ(vmm.deadlines, 0);
    now = 3000;
    start_at(s, 3000);
    CHECK_EQ(info_at(s, 3000).reason, SWO_REASON_NONE);
    for (int i = 0; i < 9; i++)
        CHECK_EQ(pass(s, &now).action, SWO_ACTION_ITERATE);
    CHECK_EQ(pass(s, &now).action, SWO_ACTION_CANCELLED); /* t=4000: 1000 after 3000 */
    CHECK(strstr(vmm.last_deadline, "\"elapsed\":1000") != NULL);
    swo_session_free(s);
}

/* ---- per-GiB deadline ----------------------------------------------------------------- */

static void test_deadline_per_gib(void)
{
    Device dev;
    Vmm vmm;
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    /* KubeVirt's completionTimeoutPerGiB 150 s: no RAM model, no guest size, no deadline. */
    OK(swo_set_parameter(s, "deadline-per-gib", "150000"));
    start_at(s, 0);
    CHECK_EQ(info_at(s, 0).deadline_ms, 0);
    OK(swo_cancel(s, 0));
    SwoRam *ram = NULL;
    OK(swo_ram_new(s, 4ull << 30, 4096, NULL, NULL, &ram)); /* 4 GiB: 4 * 150,000 ms */
    start_at(s, 0);
    CHECK_EQ(info_at(s, 0).deadline_ms, 600000);
    /* With a fixed part: 1000 + 100 ms/GiB * 4 GiB = 1400 ms. */
    OK(swo_set_parameter(s, "deadline-per-gib", "100"));
    OK(swo_set_parameter(s, "deadline", "1000"));
    CHECK_EQ(info_at(s, 0).deadline_ms, 1400);
    uint64_t now = 0;
    for (int i = 0; i < 13; i++)
        CHECK_EQ(pass(s, &now).action, SWO_ACTION_ITERATE);
    CHECK_EQ(pass(s, &now).action, SWO_ACTION_CANCELLED);
    CHECK_EQ(now, 1400);
    CHECK_STATUS(swo_set_parameter(s, "deadline-per-gib", "86400001"), SWO_ERR_OUT_OF_RANGE);
    CHECK(strcmp(last_message(),
                 "Parameter 'deadline_per_gib' expects an integer in the range of 0 to 86400000 ms") == 0);
    swo_ram_free(ram);
    swo_session_free(s);

    /* 1.5 GiB of RAM at 150 s/GiB: 225,000 ms. */
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    OK(swo_set_parameter(s, "deadline-per-gib", "150000"));
    OK(swo_ram_new(s, 3ull << 29, 4096, NULL, NULL, &ram));
    start_at(s, 0);
    CHECK_EQ(info_at(s, 0).deadline_ms, 225000);
    swo_ram_free(ram);
    swo_session_free(s);
}

/* ---- the stall action ----------------------------------------------------------------- */

static void test_stall_action(void)
{
    Device dev;
    Vmm vmm;
    uint64_t now = 0;
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    CHECK_STATUS(swo_set_parameter(s, "stall-action", "postcopy"), SWO_ERR_INVALID_ARG);
    OK(swo_set_parameter(s, "stall-action", "cancel"));
    start_at(s, 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(pass(s, &now).action, SWO_ACTION_ITERATE);
    SwoStep step = pass(s, &now); /* t=600: the stall */
    CHECK_EQ(step.action, SWO_ACTION_CANCELLED);
    CHECK_EQ(step.reason, SWO_REASON_STALL_ACTION);
    CHECK_EQ(vmm.stall_actions, 1);
    CHECK_EQ(vmm.deadlines, 0);

    /* force-switchover after 7 passes without progress: t=800. */
    OK(swo_set_parameter(s, "stall-action", "force-switchover"));
    OK(swo_set_parameter(s, "stall-action-passes", "7"));
    now = 0;
    start_at(s, 0);
    for (int i = 0; i < 7; i++) {
        step = pass(s, &now);
        CHECK_EQ(step.action, SWO_ACTION_ITERATE);
    }
    CHECK_EQ(step.reason, SWO_REASON_STALLED);
    step = pass(s, &now);
    CHECK_EQ(now, 800);
    CHECK_EQ(step.action, SWO_ACTION_SWITCHOVER);
    CHECK(step.flags & SWO_STEP_FORCED);
    CHECK_EQ(step.reason, SWO_REASON_STALL_ACTION);
    char buf[4096];
    text_at(s, now, true, buf, sizeof buf);
    CHECK(strstr(buf, "\"reason-text\": \"stalled 7 passes (stall-action-passes 7): force-switchover "
                      "with expected downtime 1909 ms against downtime-limit 300 ms\"") != NULL);
    swo_session_free(s);
}

/* ---- reasons ---------------------------------------------------------------------------- */

static void test_reasons(void)
{
    static const char *names[] = {
        "none", "above-threshold", "exact-above-threshold", "waiting-for-ack",
        "paused-before-switchover", "stalled", "deadline-reached", "stall-action",
        "postcopy-ready", "switchover-ready", "switching-over", "postcopy-active",
        "postcopy-drained", "switched-over", "cancelled", "failed",
    };
    for (uint32_t r = 0; r < 16; r++)
        CHECK(strcmp(swo_reason_name(r), names[r]) == 0);
    CHECK(strcmp(swo_reason_name(16), "unknown") == 0);
    CHECK(strcmp(swo_reason_name(UINT32_MAX), "unknown") == 0);
    CHECK_EQ(SWO_REASON_FAILED, 15);

    Device dev;
    Vmm vmm;
    uint64_t now = 0;
    /* Fast figures above the threshold (precopy left): no exact query. */
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, 0, 1000000000, 0);
    OK(swo_set_parameter(s, "report-reason", "on"));
    start_at(s, 0);
    CHECK_EQ(info_at(s, 0).reason, SWO_REASON_NONE);
    SwoStep step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_ITERATE);
    CHECK(!(step.flags & SWO_STEP_EXACT));
    CHECK_EQ(step.reason, SWO_REASON_ABOVE_THRESHOLD);
    /* An old caller (the 0.2.0 SwoStep, 64 bytes) gets no reason: its tail stays. */
    unsigned char raw[sizeof(SwoStep)];
    memset(raw, 0xa5, sizeof raw);
    uint32_t first = 64;
    memcpy(raw, &first, sizeof first);
    now += 100;
    OK(swo_iteration_step(s, now, (SwoStep *)(void *)raw));
    CHECK(raw[64] == 0xa5 && raw[sizeof raw - 1] == 0xa5);
    OK(swo_fail(s, now, "Unable to write to socket: Broken pipe"));
    SwoInfo info = info_at(s, now);
    CHECK_EQ(info.reason, SWO_REASON_FAILED);
    char buf[4096];
    text_at(s, now, false, buf, sizeof buf);
    CHECK(strstr(buf, "Reason: \t\tfailed: Unable to write to socket: Broken pipe\n") != NULL);
    swo_session_free(s);

    /* Exact figures above the threshold; then stalled, with the text. */
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, VGPU);
    now = 0;
    start_at(s, 0);
    step = pass(s, &now);
    CHECK_EQ(step.reason, SWO_REASON_EXACT_ABOVE_THRESHOLD);
    CHECK_EQ(step.threshold_bytes, THRESHOLD_300);
    text_at(s, now, false, buf, sizeof buf);
    CHECK(strstr(buf, "Reason:") == NULL); /* no policy parameter set: QEMU's text */
    OK(swo_set_parameter(s, "report-reason", "on"));
    text_at(s, now, false, buf, sizeof buf);
    CHECK(strstr(buf, "Reason: \t\texact remaining 1.91 GiB > threshold 307 MiB = 300 ms at "
                      "1 GiB/s\n") != NULL);
    for (int i = 0; i < 5; i++)
        step = pass(s, &now);
    CHECK_EQ(step.reason, SWO_REASON_STALLED);
    text_at(s, now, true, buf, sizeof buf);
    CHECK(strstr(buf, "\"reason-text\": \"stalled 5 passes: remaining 1.91 GiB > threshold 307 MiB "
                      "= 300 ms at 1 GiB/s; advice 2100 ms\"") != NULL);
    OK(swo_cancel(s, now));
    CHECK_EQ(info_at(s, now).reason, SWO_REASON_CANCELLED);
    swo_session_free(s);

    /* Waiting for the ack; then the switchover. */
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, 100000000);
    OK(swo_set_capability(s, "switchover-ack", true));
    now = 0;
    start_at(s, 0);
    step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_WAIT);
    CHECK_EQ(step.reason, SWO_REASON_WAITING_FOR_ACK);
    OK(swo_set_switchover_acked(s, true));
    step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_SWITCHOVER);
    CHECK_EQ(step.reason, SWO_REASON_SWITCHOVER_READY);
    {
        SwoPending fin;
        bool proceed = false;
        OK(swo_switchover_begin(s, now, &fin, &proceed));
        CHECK(proceed);
        CHECK_EQ(info_at(s, now).reason, SWO_REASON_SWITCHING_OVER);
        OK(swo_complete(s, now + 100));
        CHECK_EQ(info_at(s, now + 100).reason, SWO_REASON_SWITCHED_OVER);
    }
    swo_session_free(s);

    /* Postcopy ready. */
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, 100000000);
    OK(swo_set_capability(s, "postcopy-ram", true));
    now = 0;
    start_at(s, 0);
    OK(swo_postcopy_request(s));
    step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_START_POSTCOPY);
    CHECK_EQ(step.reason, SWO_REASON_POSTCOPY_READY);
    CHECK(!(step.flags & SWO_STEP_FORCED));
    swo_session_free(s);
}

/* ---- the fixed downtime ----------------------------------------------------------------- */

static void test_fixed_downtime(void)
{
    Device dev;
    Vmm vmm;
    uint64_t now = 0;
    /* 268,435,456 B = (1,073,741,824 / 1000) * (300 - 50): just fits. */
    SwoSession *s;
    RIG_OR_RETURN(s, &dev, &vmm, 0, 0, 268435456);
    OK(swo_set_parameter(s, "downtime-fixed", "50"));
    start_at(s, 0);
    SwoStep step = pass(s, &now);
    CHECK_EQ(step.threshold_bytes, 268435456);
    CHECK_EQ(step.action, SWO_ACTION_SWITCHOVER);
    /* expected: trunc(268,435,456 / 2^30 * 1000) = 250, + 50 fixed. */
    CHECK_EQ(info_at(s, now).expected_downtime_ms, 300);
    OK(swo_cancel(s, now));
    /* One byte more does not fit. */
    dev.figures.stopcopy_bytes = 268435457;
    now = 0;
    start_at(s, 0);
    step = pass(s, &now);
    CHECK_EQ(step.action, SWO_ACTION_ITERATE);
    OK(swo_cancel(s, now));
    /* The vGPU: 1909 + 50. */
    dev.figures.stopcopy_bytes = VGPU;
    now = 0;
    start_at(s, 0);
    pass(s, &now);
    CHECK_EQ(info_at(s, now).expected_downtime_ms, 1959);
    /* A fixed part above the limit leaves no budget: threshold 0, never below. */
    OK(swo_set_parameter(s, "downtime-fixed", "400"));
    step = pass(s, &now);
    CHECK_EQ(step.threshold_bytes, 0);
    CHECK_STATUS(swo_set_parameter(s, "downtime-fixed", "2000001"), SWO_ERR_OUT_OF_RANGE);
    swo_session_free(s);
}

/* guest-dirty-rate (issue 12; docs/design.md §Beyond QEMU): the round-aware advice. The device
 * holds 2,000,000,000 B at every pass; avail-switchover-bandwidth 1G (1,073,741,824 B/s):
 * expected 2e9 / 1,073,741,824 x 1000 = 1862.6 -> 1862 ms. Each pass's 100 ms window carries
 * 10,000,000 B: a precopy rate p of 1e8 B/s. Stall at pass 6 (the first pass is progress,
 * five without follow), limit 1000 ms. */
static void test_guest_dirty_rate(void)
{
    Device dev;
    Vmm vmm;
    SwoSession *s = rig(&dev, &vmm, 0, 0, 2000000000ULL);
    CHECK(s != NULL);
    char buf[4096];
    size_t n = 0;
    /* HMP: a size, MiB by default; QMP: bytes. Beyond SIZE_MAX: refused, nothing changes. */
    OK(swo_set_parameter(s, "guest-dirty-rate", "40"));
    OK(swo_query_parameters_json(s, buf, sizeof buf, &n));
    CHECK(strstr(buf, "\"guest-dirty-rate\": 41943040") != NULL ||
          strstr(buf, "\"guest-dirty-rate\":41943040") != NULL);
    OK(swo_set_parameters_json(s, "{\"guest-dirty-rate\": 300000000, \"downtime-limit\": 1000}"));
    uint64_t now = 0;
    start_at(s, now);
    for (int k = 1; k <= 6; k++) {
        OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, 10000000));
        SwoStep step = pass(s, &now);
        CHECK_EQ(step.action, SWO_ACTION_ITERATE);
    }
    SwoAdvice adv = { .struct_size = sizeof adv };
    OK(swo_get_advice(s, now, &adv));
    CHECK(adv.flags & SWO_ADVICE_STALLED);
    CHECK_EQ(adv.expected_downtime_ms, 1862);
    /* r = 3e8: 1862 x 3e8 / 4e8 = 1396.5 -> 1397, x 1.1 = 1536.7 -> 1537 (plain: 2049). */
    CHECK_EQ(adv.recommended_downtime_ms, 1537);
    /* No rate known: the plain advice, 1862 x 1.1 = 2048.2 -> 2049. */
    OK(swo_set_parameters_json(s, "{\"guest-dirty-rate\": 0}"));
    OK(swo_get_advice(s, now, &adv));
    CHECK_EQ(adv.recommended_downtime_ms, 2049);
    swo_session_free(s);
}

int main(void)
{
    test_deadline_cancel();
    test_deadline_force_switchover();
    test_deadline_postcopy();
    test_deadline_in_pause_and_after_cancel();
    test_deadline_per_gib();
    test_stall_action();
    test_reasons();
    test_fixed_downtime();
    test_guest_dirty_rate();
    return check_summary("test_policy");
}
