/* Lifecycle: cleanup from an atexit handler (found by the second review).
 *
 * A C VMM that tears its devices down in an atexit() handler (a common C cleanup pattern)
 * calls swo_unregister_handler / swo_session_free there. glibc's exit() runs the thread-local
 * destructors of the main thread BEFORE the atexit handlers, so the library's thread-locals
 * (the re-entrancy marks, the last-error message) are gone by then: the unregister panics
 * inside ("cannot access a Thread Local Storage value during or after destruction"), and
 * storing that panic's message touches the destroyed last-error slot again, outside the
 * panic boundary, which aborts the VMM (a panic may never cross the ABI: docs/design.md §Bad input).
 * Expected: SWO_OK from the unregister, and a clean exit. */
#include <switchover.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

static SwoSession *session;
static uint64_t handler_id;

static void query(void *opaque, SwoPending *pending, bool exact, bool final)
{
    (void)opaque;
    (void)exact;
    (void)final;
    pending->precopy_bytes += 4096;
}

static void cleanup_at_exit(void)
{
    SwoStatus rc = swo_unregister_handler(session, handler_id);
    if (rc != SWO_OK) {
        fprintf(stderr, "atexit: swo_unregister_handler returned %s (%s)\n", swo_status_name(rc),
                last_message());
        _exit(1);
    }
    swo_session_free(session);
    fprintf(stderr, "atexit: cleanup done\n");
}

int main(void)
{
    OK(swo_session_new(&session));
    SwoHandlerOps ops = {.struct_size = sizeof ops, .save_query_pending = query};
    OK(swo_register_handler(session, "dev", 0, &ops, NULL, &handler_id));
    SwoPending p;
    OK(swo_query_pending(session, false, &p));
    CHECK_EQ(p.total_bytes, 4096);
    /* Any failed call on this thread (here a NULL argument) sets its last-error message. */
    CHECK_STATUS(swo_query_pending(session, false, NULL), SWO_ERR_NULL_ARG);
    if (atexit(cleanup_at_exit) != 0) {
        swo_unregister_handler(session, handler_id);
        swo_session_free(session);
        return 1;
    }
    return check_summary("test_lifecycle_atexit");
}
