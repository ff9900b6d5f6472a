/* query-migrate JSON and info migrate text for every status, built through the C API with
 * round numbers, compared whole against the files in c-tests/golden/ (written for a reviewer
 * to check each figure; see golden/README.md). Also the string-out buffer rules.
 * SWO_GOLDEN_DIR names the directory; SWO_GOLDEN_UPDATE=1 rewrites the files instead. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

static char *report(SwoSession *s, uint64_t now, int hmp)
{
    size_t len = 0, again = 0;
    char *buf;
    SwoStatus st = hmp ? swo_info_migrate_text(s, now, NULL, 0, &len)
                       : swo_query_migrate_json(s, now, NULL, 0, &len);
    CHECK(st == SWO_OK);
    buf = malloc(len + 1);
    if (!buf)
        abort();
    st = hmp ? swo_info_migrate_text(s, now, buf, len + 1, &again)
             : swo_query_migrate_json(s, now, buf, len + 1, &again);
    CHECK(st == SWO_OK);
    CHECK(again == len);
    CHECK(strlen(buf) == len);
    return buf;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The JSON file holds the document plus a newline; the text file holds the HMP text as is. */
static void golden_one(const char *name, const char *ext, const char *actual, const char *suffix)
{
    const char *dir = getenv("SWO_GOLDEN_DIR");
    const char *update = getenv("SWO_GOLDEN_UPDATE");
    char path[1024];
    char *expected;
    char *want;
    snprintf(path, sizeof path, "%s/%s.%s", dir ? dir : "golden", name, ext);
    want = malloc(strlen(actual) + strlen(suffix) + 1);
    if (!want)
        abort();
    strcpy(want, actual);
    strcat(want, suffix);
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (f) {
            fputs(want, f);
            fclose(f);
        }
        free(want);
        return;
    }
    expected = read_file(path);
    if (!expected) {
        fprintf(stderr, "%s: cannot read (%s)\n", path, strerror(errno));
        failures++;
    } else if (strcmp(expected, want) != 0) {
        fprintf(stderr, "%s differs.\n--- expected\n%s--- actual\n%s---\n", path, expected, want);
        failures++;
    }
    free(expected);
    free(want);
}

static void golden(SwoSession *s, uint64_t now, const char *name)
{
    char *json = report(s, now, 0);
    char *hmp = report(s, now, 1);
    golden_one(name, "json", json, "\n");
    golden_one(name, "txt", hmp, "");
    free(json);
    free(hmp);
}

static int nic_stop_copy(void *opaque, uint64_t *len)
{
    (void)opaque;
    *len = 8388608; /* 8 MiB of NIC VF state */
    return 0;
}

static void precopy_path(void)
{
    SwoSession *s = NULL;
    SwoRam *ram = NULL;
    SwoVfio *nic = NULL;
    const SwoVfioOps nic_ops = { sizeof nic_ops, 0, nic_stop_copy, NULL };
    SwoStep step = { .struct_size = sizeof step };
    SwoPending final;
    bool proceed = true;

    OK(swo_session_new(&s));
    OK(swo_set_capability(s, "pause-before-switchover", true));
    OK(swo_ram_new(s, 4294967296ull, 4096, NULL, NULL, &ram)); /* 4 GiB guest */
    OK(swo_ram_set_dirty_pages(ram, 262144));                  /* 1 GiB dirty */
    OK(swo_vfio_new(s, "nic0", &nic_ops, NULL, &nic));

    golden(s, 0, "none");
    OK(swo_migration_start(s, 1000));
    golden(s, 1000, "setup");
    OK(swo_setup_done(s, 1014));
    /* One 100 ms window of 12,500,000 B: 1000 Mbps, 125,000,000 B/s, threshold at the default
     * 300 ms = 37,500,000 B; 4000 pages in 0.1 s = 40000 pages/s. */
    OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, 12500000));
    OK(swo_ram_record_sent(ram, 3000, 1000));
    OK(swo_update_counters(s, 1100));
    OK(swo_iteration_step(s, 1100, &step));
    CHECK(step.action == SWO_ACTION_ITERATE);
    CHECK(step.threshold_bytes == 37500000);
    CHECK(step.pending.precopy_bytes == 258144ull * 4096);
    CHECK(step.pending.stopcopy_bytes == 8388608);
    golden(s, 2014, "active");

    /* RAM is clean: 8 MiB of NIC state fits 37.5 MB; the exact query confirms it. */
    OK(swo_ram_set_dirty_pages(ram, 0));
    OK(swo_iteration_step(s, 2100, &step));
    CHECK(step.action == SWO_ACTION_SWITCHOVER);
    CHECK(step.flags & SWO_STEP_EXACT);
    CHECK(step.pending.total_bytes == 8388608);
    OK(swo_switchover_begin(s, 2150, &final, &proceed));
    CHECK(!proceed);
    CHECK(swo_get_status(s) == SWO_STATUS_PRE_SWITCHOVER);
    golden(s, 2160, "pre-switchover");
    OK(swo_migrate_continue(s, SWO_STATUS_PRE_SWITCHOVER));
    OK(swo_switchover_begin(s, 2170, &final, &proceed));
    CHECK(proceed);
    CHECK(final.total_bytes == 8388608);
    golden(s, 2180, "device");
    OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, 8388608));
    OK(swo_vfio_record_read(nic, 8388608));
    OK(swo_complete(s, 2200));
    golden(s, 9999, "completed");

    swo_vfio_free(nic);
    swo_ram_free(ram);
    swo_session_free(s);
}

struct canceller {
    SwoSession *s;
    int armed, in_callback, cancelled;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *json, *hmp;
};

/* The migration thread's handler: when armed, it holds the step until the monitor thread has
 * cancelled and read the reports, so they show `cancelling`. */
static void cancel_from_callback(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct canceller *c = opaque;
    (void)exact;
    (void)final;
    p->precopy_bytes += 1000000;
    pthread_mutex_lock(&c->lock);
    if (c->armed) {
        c->armed = 0;
        c->in_callback = 1;
        pthread_cond_broadcast(&c->cond);
        while (!c->cancelled)
            pthread_cond_wait(&c->cond, &c->lock);
    }
    pthread_mutex_unlock(&c->lock);
}

static void *monitor_thread(void *opaque)
{
    struct canceller *c = opaque;
    pthread_mutex_lock(&c->lock);
    while (!c->in_callback)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    CHECK(swo_cancel(c->s, 1500) == SWO_OK);
    CHECK(swo_get_status(c->s) == SWO_STATUS_CANCELLING);
    c->json = report(c->s, 1500, 0);
    c->hmp = report(c->s, 1500, 1);
    pthread_mutex_lock(&c->lock);
    c->cancelled = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void cancel_path(void)
{
    struct canceller c;
    const SwoHandlerOps ops = { sizeof ops, 0, cancel_from_callback, NULL };
    uint64_t id;
    SwoStep step = { .struct_size = sizeof step };
    pthread_t monitor;

    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);

    OK(swo_session_new(&c.s));
    OK(swo_register_handler(c.s, "dev", 0, &ops, &c, &id));
    OK(swo_migration_start(c.s, 1000));
    OK(swo_setup_done(c.s, 1010));
    c.armed = 1;
    if (pthread_create(&monitor, NULL, monitor_thread, &c) != 0)
        abort();
    /* The step that was running when the cancel came finishes it and reports the state. */
    CHECK(swo_iteration_step(c.s, 1500, &step) == SWO_ERR_BAD_STATE);
    pthread_join(monitor, NULL);
    CHECK(c.json != NULL && c.hmp != NULL);
    if (c.json && c.hmp) {
        golden_one("cancelling", "json", c.json, "\n");
        golden_one("cancelling", "txt", c.hmp, "");
    }
    free(c.json);
    free(c.hmp);
    CHECK(swo_get_status(c.s) == SWO_STATUS_CANCELLED);
    golden(c.s, 1600, "cancelled");
    OK(swo_unregister_handler(c.s, id));
    swo_session_free(c.s);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
}

static void fail_path(void)
{
    SwoSession *s = NULL;
    OK(swo_session_new(&s));
    OK(swo_migration_start(s, 1000));
    OK(swo_setup_done(s, 1010));
    OK(swo_fail(s, 1200, "Unable to write to socket: Broken pipe"));
    golden(s, 1300, "failed");
    swo_session_free(s);
}

static void postcopy_path(void)
{
    SwoSession *s = NULL;
    SwoRam *ram = NULL;
    SwoStep step = { .struct_size = sizeof step };

    OK(swo_session_new(&s));
    OK(swo_set_capability(s, "postcopy-ram", true));
    OK(swo_ram_new(s, 1073741824ull, 4096, NULL, NULL, &ram)); /* 1 GiB guest */
    OK(swo_ram_set_dirty_pages(ram, 1000));
    OK(swo_migration_start(s, 0));
    OK(swo_setup_done(s, 10));
    /* 10,000,000 B in 100 ms: 800 Mbps, threshold 30,000,000 B. */
    OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, 10000000));
    OK(swo_update_counters(s, 100));
    OK(swo_postcopy_request(s));
    OK(swo_iteration_step(s, 100, &step));
    /* Dirty RAM goes to the postcopy bucket: precopy + stop-copy = 0 <= threshold. */
    CHECK(step.action == SWO_ACTION_START_POSTCOPY);
    CHECK(step.pending.postcopy_bytes == 4096000);
    OK(swo_postcopy_start(s, 120));
    CHECK(swo_get_status(s) == SWO_STATUS_POSTCOPY_ACTIVE);
    OK(swo_record_transferred(s, SWO_CHANNEL_MAIN, 2000000));
    golden(s, 500, "postcopy-active");
    swo_ram_free(ram);
    swo_session_free(s);
}

static void buffer_rules(void)
{
    SwoSession *s = NULL;
    size_t len = 0, got = 0;
    char buf[8] = "xxxxxxx";
    char exact[64];
    OK(swo_session_new(&s));
    OK(swo_migration_start(s, 1000));
    OK(swo_query_migrate_json(s, 1000, NULL, 0, &len));
    CHECK(len == strlen("{\"status\": \"setup\"}"));
    /* One byte short of text + NUL: refused, untouched, length still reported. */
    CHECK(swo_query_migrate_json(s, 1000, exact, len, &got) == SWO_ERR_BUFFER_TOO_SMALL);
    CHECK(got == len);
    CHECK(swo_query_migrate_json(s, 1000, buf, sizeof buf, &got) == SWO_ERR_BUFFER_TOO_SMALL);
    CHECK(memcmp(buf, "xxxxxxx", 8) == 0);
    /* Exactly text + NUL fits. */
    OK(swo_query_migrate_json(s, 1000, exact, len + 1, &got));
    CHECK(strcmp(exact, "{\"status\": \"setup\"}") == 0);
    CHECK(swo_query_migrate_json(NULL, 0, exact, sizeof exact, &got) == SWO_ERR_NULL_ARG);
    CHECK(swo_query_migrate_json(s, 0, exact, sizeof exact, NULL) == SWO_ERR_NULL_ARG);
    CHECK(swo_query_migrate_json(s, 0, NULL, 5, &got) == SWO_ERR_NULL_ARG);
    CHECK(swo_info_migrate_text(NULL, 0, exact, sizeof exact, &got) == SWO_ERR_NULL_ARG);
    CHECK(swo_info_migrate_text(s, 0, exact, sizeof exact, NULL) == SWO_ERR_NULL_ARG);
    OK(swo_info_migrate_text(s, 1000, NULL, 0, &len));
    CHECK(len == strlen("Status: \t\tsetup\n"));
    swo_session_free(s);
}

int main(void)
{
    precopy_path();
    cancel_path();
    fail_path();
    postcopy_path();
    buffer_rules();
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
