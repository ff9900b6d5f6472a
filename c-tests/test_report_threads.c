/* Reports taken on a monitor thread while the migration thread steps, thousands of times
 * (also built under ASan+UBSan): every document is a complete JSON object, and the figures
 * that only grow (ram.transferred, dirty-sync-count, total-time) never go backwards. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

static atomic_ullong clock_ms = 1000;
static atomic_int done;

/* Structural JSON check: balanced braces/brackets outside strings, one top-level object. */
static int well_formed(const char *s)
{
    int depth = 0, in_str = 0;
    if (*s != '{')
        return 0;
    for (const char *p = s; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_str = 0;
            continue;
        }
        if (*p == '"')
            in_str = 1;
        else if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']') {
            if (--depth < 0)
                return 0;
            if (depth == 0 && p[1] != '\0')
                return 0;
        }
    }
    return depth == 0 && !in_str;
}

static unsigned long long member(const char *json, const char *name)
{
    const char *p = strstr(json, name);
    return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static void *monitor(void *opaque)
{
    SwoSession *s = opaque;
    char buf[8192];
    size_t len;
    unsigned long long last_transferred = 0, last_syncs = 0, last_time = 0, reports = 0;
    while (!atomic_load(&done) || reports < 1000) {
        uint64_t now = atomic_load(&clock_ms);
        if (swo_query_migrate_json(s, now, buf, sizeof buf, &len) != SWO_OK) {
            failures++;
            break;
        }
        reports++;
        CHECK(well_formed(buf));
        if (strstr(buf, "\"ram\": {")) {
            unsigned long long t = member(buf, "\"ram\": {\"transferred\": ");
            unsigned long long syncs = member(buf, "\"dirty-sync-count\": ");
            unsigned long long total = member(buf, "\"total-time\": ");
            CHECK(t >= last_transferred);
            CHECK(syncs >= last_syncs);
            CHECK(total >= last_time);
            last_transferred = t;
            last_syncs = syncs;
            last_time = total;
        }
        if (swo_info_migrate_text(s, now, buf, sizeof buf, &len) != SWO_OK)
            failures++;
        CHECK(strncmp(buf, "Status: \t\t", 10) == 0);
    }
    CHECK(reports >= 1000);
    return NULL;
}

static void pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    atomic_ullong *dirty = opaque;
    (void)final;
    p->precopy_bytes += atomic_load(dirty);
    if (exact)
        p->stopcopy_bytes += 1 << 20;
}

int main(void)
{
    SwoSession *s = NULL;
    atomic_ullong dirty = 500ull << 20;
    const SwoHandlerOps ops = { sizeof ops, 0, pending, NULL };
    uint64_t id;
    pthread_t thread;
    SwoStep step = { .struct_size = sizeof step };

    if (swo_session_new(&s) != SWO_OK)
        return 1;
    CHECK(swo_register_handler(s, "dev", 0, &ops, &dirty, &id) == SWO_OK);
    CHECK(swo_migration_start(s, 1000) == SWO_OK);
    if (pthread_create(&thread, NULL, monitor, s) != 0)
        return 1;
    CHECK(swo_setup_done(s, 1005) == SWO_OK);
    for (int pass = 0; pass < 3000; pass++) {
        uint64_t now = atomic_fetch_add(&clock_ms, 10) + 10;
        CHECK(swo_record_transferred(s, pass % 2 ? SWO_CHANNEL_MULTIFD : SWO_CHANNEL_MAIN, 1000000) == SWO_OK);
        CHECK(swo_update_counters(s, now) == SWO_OK);
        CHECK(swo_iteration_step(s, now, &step) == SWO_OK);
        CHECK(step.action == SWO_ACTION_ITERATE || step.action == SWO_ACTION_SWITCHOVER);
        atomic_store(&dirty, (500ull << 20) - (unsigned long long)pass * 100000);
    }
    atomic_store(&done, 1);
    pthread_join(thread, NULL);
    CHECK(swo_unregister_handler(s, id) == SWO_OK);
    swo_session_free(s);
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
