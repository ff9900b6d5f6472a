/* Threads: per-thread error messages, re-entrant calls from callbacks
 * (SWO_ERR_REENTRANT, never a deadlock), unregistering while another thread queries
 * (no callback after swo_unregister_handler returned, opaque freed right after: the ASan
 * twin of this test catches any use after free), and unregistering while a query is blocked
 * in another handler's callback (it must not wait for that query). Through
 * include/switchover.h only. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <switchover.h>

#include "check.h"

static void message(char *buf, size_t len)
{
    size_t n = 0;
    if (swo_last_error_message(buf, len, &n) != SWO_OK) {
        atomic_fetch_add(&failures, 1);
        buf[0] = '\0';
    }
}

static SwoSession *new_session(void)
{
    SwoSession *s = NULL;
    CHECK_STATUS(swo_session_new(&s), SWO_OK);
    if (s == NULL)
        exit(1);
    return s;
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (pthread_create(t, NULL, fn, arg) != 0) {
        perror("pthread_create");
        exit(1);
    }
}

static void join(pthread_t t)
{
    if (pthread_join(t, NULL) != 0) {
        perror("pthread_join");
        exit(1);
    }
}

static void pause_ms(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

/* --- the last error message is per thread ------------------------------------------- */

struct msg_thread {
    SwoSession *s;
    char before[256], after[256];
};

static void *fail_on_other_thread(void *arg)
{
    struct msg_thread *m = arg;
    message(m->before, sizeof m->before); /* this thread has not failed yet */
    CHECK_STATUS(swo_query_pending(m->s, false, NULL), SWO_ERR_NULL_ARG);
    message(m->after, sizeof m->after);
    return NULL;
}

static void test_last_error_message_is_per_thread(void)
{
    SwoSession *s = new_session();
    char mine[256], again[256];
    CHECK_STATUS(swo_unregister_handler(s, 31337), SWO_ERR_NOT_FOUND);
    message(mine, sizeof mine);
    CHECK(strstr(mine, "31337") != NULL);

    struct msg_thread m = { .s = s };
    pthread_t t;
    start(&t, fail_on_other_thread, &m);
    join(t);
    CHECK(strcmp(m.before, "") == 0);
    CHECK(strstr(m.after, "out") != NULL && strstr(m.after, "31337") == NULL);

    /* Thread B's failure did not touch thread A's message. */
    message(again, sizeof again);
    CHECK(strcmp(mine, again) == 0);
    swo_session_free(s);
}

/* --- re-entrancy -------------------------------------------------------------------- */

struct reentrant {
    SwoSession *own, *other;
    uint64_t own_id;          /* this handler's id on `own` */
    SwoStatus reg, unreg, query, query_exact;  /* results of calls on `own` */
    SwoStatus other_reg, other_query, other_unreg;  /* results of calls on `other` */
    uint64_t other_total;
    unsigned calls, other_calls;
    bool check_in_is_active;
    SwoStatus active_query;
};

static void plain_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    unsigned *calls = opaque;
    (void)exact; (void)final;
    (*calls)++;
    p->stopcopy_bytes += 11;
}

static const SwoHandlerOps plain_ops = { sizeof(SwoHandlerOps), 0, plain_pending, NULL };

static void reentrant_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct reentrant *r = opaque;
    SwoPending q;
    uint64_t id = 0;
    (void)exact; (void)final;
    r->calls++;
    /* On its own session: every call that would wait for itself is refused. */
    r->reg = swo_register_handler(r->own, "late", 0, &plain_ops, &r->calls, &id);
    r->unreg = swo_unregister_handler(r->own, r->own_id);
    r->query = swo_query_pending(r->own, false, &q);
    r->query_exact = swo_query_pending(r->own, true, &q);
    /* On another session the same calls work. */
    if (r->other) {
        uint64_t oid = 0;
        r->other_reg = swo_register_handler(r->other, "from-callback", 0, &plain_ops,
                                            &r->other_calls, &oid);
        r->other_query = swo_query_pending(r->other, true, &q);
        r->other_total = q.total_bytes;
        r->other_unreg = swo_unregister_handler(r->other, oid);
    }
    p->precopy_bytes += 100;
}

static bool reentrant_is_active(void *opaque)
{
    struct reentrant *r = opaque;
    SwoPending q;
    if (r->check_in_is_active)
        r->active_query = swo_query_pending(r->own, false, &q);
    return true;
}

static void test_reentrant_calls_from_a_callback_are_refused(void)
{
    SwoSession *own = new_session(), *other = new_session();
    struct reentrant r = { .own = own, .other = other, .check_in_is_active = true,
                           .active_query = 999 };
    const SwoHandlerOps ops = { sizeof ops, 0, reentrant_pending, reentrant_is_active };
    unsigned neighbour_calls = 0;
    uint64_t neighbour = 0;
    CHECK_STATUS(swo_register_handler(own, "reentrant", 0, &ops, &r, &r.own_id), SWO_OK);
    CHECK_STATUS(swo_register_handler(own, "neighbour", 0, &plain_ops, &neighbour_calls,
                                  &neighbour), SWO_OK);
    SwoPending p;
    CHECK_STATUS(swo_query_pending(own, true, &p), SWO_OK); /* the outer query completes */
    CHECK(r.calls == 1 && neighbour_calls == 1);
    CHECK_EQ(p.precopy_bytes, 100);
    CHECK_EQ(p.stopcopy_bytes, 11);
    CHECK_EQ(p.total_bytes, 111);

    CHECK_STATUS(r.reg, SWO_ERR_REENTRANT);
    CHECK_STATUS(r.unreg, SWO_ERR_REENTRANT);
    CHECK_STATUS(r.query, SWO_ERR_REENTRANT);
    CHECK_STATUS(r.query_exact, SWO_ERR_REENTRANT);
    CHECK_STATUS(r.active_query, SWO_ERR_REENTRANT);
    CHECK_STATUS(r.other_reg, SWO_OK);
    CHECK_STATUS(r.other_query, SWO_OK);
    CHECK_STATUS(r.other_unreg, SWO_OK);
    CHECK_EQ(r.other_total, 11);
    CHECK(r.other_calls == 1);

    /* The refused calls changed nothing: the handler is still there, "late" was not added. */
    CHECK_STATUS(swo_query_pending(own, false, &p), SWO_OK);
    CHECK_EQ(p.total_bytes, 111);
    CHECK(r.calls == 2);
    /* Out of the callback, the same calls work again on this thread. */
    CHECK_STATUS(swo_unregister_handler(own, r.own_id), SWO_OK);
    CHECK_STATUS(swo_unregister_handler(own, neighbour), SWO_OK);
    CHECK_STATUS(swo_query_pending(own, false, &p), SWO_OK);
    CHECK_EQ(p.total_bytes, 0);
    swo_session_free(other);
    swo_session_free(own);
}

/* A callback of A queries B, whose callback queries A: A is still on this thread's stack. */
struct nested {
    SwoSession *a, *b;
    SwoStatus b_query, a_from_b;
};

static void nested_inner(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct nested *n = opaque;
    SwoPending q;
    (void)exact; (void)final;
    n->a_from_b = swo_query_pending(n->a, false, &q);
    p->postcopy_bytes += 1;
}

static void nested_outer(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct nested *n = opaque;
    SwoPending q;
    (void)exact; (void)final;
    n->b_query = swo_query_pending(n->b, false, &q);
    p->postcopy_bytes += q.total_bytes + 1;
}

static void test_reentrancy_is_tracked_per_session_through_nesting(void)
{
    SwoSession *a = new_session(), *b = new_session();
    struct nested n = { .a = a, .b = b, .b_query = 999, .a_from_b = 999 };
    const SwoHandlerOps outer = { sizeof outer, 0, nested_outer, NULL };
    const SwoHandlerOps inner = { sizeof inner, 0, nested_inner, NULL };
    uint64_t ia = 0, ib = 0;
    CHECK_STATUS(swo_register_handler(a, "outer", 0, &outer, &n, &ia), SWO_OK);
    CHECK_STATUS(swo_register_handler(b, "inner", 0, &inner, &n, &ib), SWO_OK);
    SwoPending p;
    CHECK_STATUS(swo_query_pending(a, false, &p), SWO_OK);
    CHECK_STATUS(n.b_query, SWO_OK);
    CHECK_STATUS(n.a_from_b, SWO_ERR_REENTRANT);
    CHECK_EQ(p.postcopy_bytes, 2);
    CHECK_STATUS(swo_unregister_handler(a, ia), SWO_OK);
    CHECK_STATUS(swo_unregister_handler(b, ib), SWO_OK);
    swo_session_free(a);
    swo_session_free(b);
}

/* --- unregistering while another thread queries --------------------------------------- */

enum { CHURN_ROUNDS = 4000, LIVE = 4 };

/* Set right after swo_unregister_handler returned for round i; a callback that sees it
 * ran after unregister returned. */
static atomic_bool churn_freed[CHURN_ROUNDS];
static atomic_uint churn_calls[CHURN_ROUNDS];
static atomic_int calls_after_unregister;
static atomic_bool stop_queries;
static atomic_ulong queries_done;

struct churn_opaque {
    uint32_t round;
    uint64_t bytes;
};

static void churn_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    const struct churn_opaque *o = opaque; /* heap: ASan reports a read after free */
    uint32_t round = o->round;
    (void)exact; (void)final;
    if (atomic_load(&churn_freed[round]))
        atomic_fetch_add(&calls_after_unregister, 1);
    atomic_fetch_add(&churn_calls[round], 1);
    for (int i = 0; i < 4; i++)
        sched_yield(); /* widen the window in which unregister must wait for us */
    p->precopy_bytes += o->bytes;
    if (atomic_load(&churn_freed[round]))
        atomic_fetch_add(&calls_after_unregister, 1);
}

static bool churn_is_active(void *opaque)
{
    const struct churn_opaque *o = opaque;
    if (atomic_load(&churn_freed[o->round]))
        atomic_fetch_add(&calls_after_unregister, 1);
    return o->bytes != 0;
}

static void *query_loop(void *arg)
{
    SwoSession *s = arg;
    while (!atomic_load(&stop_queries)) {
        SwoPending p;
        CHECK_STATUS(swo_query_pending(s, atomic_load(&queries_done) % 2 == 0, &p), SWO_OK);
        /* at most LIVE handlers of 1 byte each, plus the steady one */
        CHECK(p.total_bytes <= LIVE + 1000 && p.total_bytes >= 1000);
        CHECK(p.precopy_bytes == p.total_bytes);
        atomic_fetch_add(&queries_done, 1);
    }
    return NULL;
}

static void steady_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    (void)opaque; (void)exact; (void)final;
    p->precopy_bytes += 1000;
}

static void test_unregister_while_another_thread_queries(void)
{
    SwoSession *s = new_session();
    const SwoHandlerOps ops = { sizeof ops, 0, churn_pending, churn_is_active };
    const SwoHandlerOps steady = { sizeof steady, 0, steady_pending, NULL };
    uint64_t steady_id = 0;
    CHECK_STATUS(swo_register_handler(s, "steady", 0, &steady, NULL, &steady_id), SWO_OK);

    pthread_t q1, q2;
    start(&q1, query_loop, s);
    start(&q2, query_loop, s);

    uint64_t ids[LIVE] = { 0 };
    struct churn_opaque *ops_of[LIVE] = { NULL };
    for (uint32_t round = 0; round < CHURN_ROUNDS; round++) {
        uint32_t slot = round % LIVE;
        if (ops_of[slot]) {
            uint32_t old = ops_of[slot]->round;
            /* Every 50th round waits until its handler was called at least once, so the
             * test knows queries really overlap with unregistering (no timing involved). */
            if (old % 50 == 0)
                while (atomic_load(&churn_calls[old]) == 0)
                    sched_yield();
            CHECK_STATUS(swo_unregister_handler(s, ids[slot]), SWO_OK);
            atomic_store(&churn_freed[old], true);
            free(ops_of[slot]);
            ops_of[slot] = NULL;
        }
        struct churn_opaque *o = malloc(sizeof *o);
        if (!o) {
            perror("malloc");
            exit(1);
        }
        o->round = round;
        o->bytes = 1;
        CHECK_STATUS(swo_register_handler(s, "churn", round, &ops, o, &ids[slot]), SWO_OK);
        ops_of[slot] = o;
    }
    for (uint32_t slot = 0; slot < LIVE; slot++) {
        if (!ops_of[slot])
            continue;
        CHECK_STATUS(swo_unregister_handler(s, ids[slot]), SWO_OK);
        atomic_store(&churn_freed[ops_of[slot]->round], true);
        free(ops_of[slot]);
    }
    atomic_store(&stop_queries, true);
    join(q1);
    join(q2);

    CHECK(atomic_load(&calls_after_unregister) == 0);
    unsigned long called_rounds = 0;
    for (uint32_t i = 0; i < CHURN_ROUNDS; i++)
        called_rounds += atomic_load(&churn_calls[i]) > 0;
    CHECK(called_rounds >= CHURN_ROUNDS / 50); /* the forced overlaps at least */
    printf("churn: %lu queries, %lu of %d handlers were called before their unregister\n",
           atomic_load(&queries_done), called_rounds, CHURN_ROUNDS);

    CHECK_STATUS(swo_unregister_handler(s, steady_id), SWO_OK);
    swo_session_free(s);
}

/* --- unregister waits for a running callback ----------------------------------------- */

struct blocking {
    SwoSession *s;
    uint64_t id;
    atomic_bool entered, release, unregister_returned, callback_done;
};

static void blocking_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct blocking *b = opaque;
    (void)exact; (void)final;
    if (atomic_exchange(&b->entered, true)) {
        /* a later query that ran before unregister took the handler out: do not block */
        CHECK(!atomic_load(&b->unregister_returned));
        p->stopcopy_bytes += 1;
        return;
    }
    while (!atomic_load(&b->release))
        sched_yield();
    p->stopcopy_bytes += 1;
    /* unregister must still be waiting for us */
    CHECK(!atomic_load(&b->unregister_returned));
    atomic_store(&b->callback_done, true);
}

static void *query_once(void *arg)
{
    struct blocking *b = arg;
    SwoPending p;
    CHECK_STATUS(swo_query_pending(b->s, false, &p), SWO_OK);
    CHECK_EQ(p.stopcopy_bytes, 1);
    return NULL;
}

static void *unregister_thread(void *arg)
{
    struct blocking *b = arg;
    CHECK_STATUS(swo_unregister_handler(b->s, b->id), SWO_OK);
    CHECK(atomic_load(&b->callback_done));
    atomic_store(&b->unregister_returned, true);
    return NULL;
}

static void test_unregister_waits_for_the_running_callback(void)
{
    struct blocking *b = calloc(1, sizeof *b);
    if (!b) {
        perror("calloc");
        exit(1);
    }
    b->s = new_session();
    const SwoHandlerOps ops = { sizeof ops, 0, blocking_pending, NULL };
    CHECK_STATUS(swo_register_handler(b->s, "blocking", 0, &ops, b, &b->id), SWO_OK);

    pthread_t q, u;
    start(&q, query_once, b);
    while (!atomic_load(&b->entered))
        sched_yield();
    start(&u, unregister_thread, b);
    /* Give the unregistering thread a few ms to (wrongly) return; it must not. */
    for (int i = 0; i < 5; i++) {
        pause_ms(1);
        CHECK(!atomic_load(&b->unregister_returned));
    }
    /* Meanwhile other calls on the session still work (the callback holds no lock that
     * they need). */
    SwoPending p;
    uint64_t other = 0;
    unsigned calls = 0;
    CHECK_STATUS(swo_register_handler(b->s, "meanwhile", 0, &plain_ops, &calls, &other), SWO_OK);
    CHECK_STATUS(swo_query_pending(b->s, false, &p), SWO_OK);
    /* 11 from "meanwhile"; the handler being removed adds 1 only if it was not yet out */
    CHECK(p.stopcopy_bytes == 11 || p.stopcopy_bytes == 12);
    CHECK_STATUS(swo_unregister_handler(b->s, other), SWO_OK);

    atomic_store(&b->release, true);
    join(q);
    join(u);
    CHECK(atomic_load(&b->unregister_returned));
    swo_session_free(b->s);
    free(b);
}

/* --- unregister waits for its own handler only, never for a whole query --------------- */

/* The VMM's device-removal path holds its big lock and unregisters devices X while the
 * migration thread's query sits in device Y's callback, which needs that lock. Waiting for
 * the whole query would deadlock: both unregisters must return while Y still waits. */
struct big_lock_vmm {
    SwoSession *s;
    pthread_mutex_t big_lock;
    atomic_bool in_y, query_done, gave_up;
    atomic_uint x_before_calls, x_after_calls;
    SwoPending result;
};

struct x_device {
    uint64_t precopy, postcopy;
    atomic_uint *calls;
};

static void x_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct x_device *x = opaque;
    (void)exact; (void)final;
    atomic_fetch_add(x->calls, 1);
    p->precopy_bytes += x->precopy;
    p->postcopy_bytes += x->postcopy;
}

static void y_needs_big_lock(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct big_lock_vmm *v = opaque;
    (void)exact; (void)final;
    atomic_store(&v->in_y, true);
    /* A real device blocks in pthread_mutex_lock; the deadline turns a deadlock into a
     * failed check instead of a hung test. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    if (pthread_mutex_timedlock(&v->big_lock, &deadline) == 0)
        pthread_mutex_unlock(&v->big_lock);
    else
        atomic_store(&v->gave_up, true);
    p->stopcopy_bytes += 20;
}

static void *migration_query(void *arg)
{
    struct big_lock_vmm *v = arg;
    CHECK_STATUS(swo_query_pending(v->s, false, &v->result), SWO_OK);
    atomic_store(&v->query_done, true);
    return NULL;
}

static struct x_device *new_x(uint64_t precopy, uint64_t postcopy, atomic_uint *calls)
{
    struct x_device *x = calloc(1, sizeof *x);
    if (!x) {
        perror("calloc");
        exit(1);
    }
    *x = (struct x_device){ precopy, postcopy, calls };
    return x;
}

static void test_unregister_returns_while_a_query_is_blocked_in_another_handler(void)
{
    static struct big_lock_vmm v; /* zeroed; reset below so the test could run twice */
    memset(&v, 0, sizeof v);
    if (pthread_mutex_init(&v.big_lock, NULL) != 0) {
        perror("pthread_mutex_init");
        exit(1);
    }
    v.s = new_session();
    const SwoHandlerOps x_ops = { sizeof x_ops, 0, x_pending, NULL };
    const SwoHandlerOps y_ops = { sizeof y_ops, 0, y_needs_big_lock, NULL };
    /* X before Y (asked before the query blocks) and X after Y (not asked yet). */
    struct x_device *x_before = new_x(1000, 0, &v.x_before_calls);
    struct x_device *x_after = new_x(300, 7, &v.x_after_calls);
    uint64_t x_before_id = 0, y_id = 0, x_after_id = 0;
    CHECK_STATUS(swo_register_handler(v.s, "x-before", 0, &x_ops, x_before, &x_before_id), SWO_OK);
    CHECK_STATUS(swo_register_handler(v.s, "y", 0, &y_ops, &v, &y_id), SWO_OK);
    CHECK_STATUS(swo_register_handler(v.s, "x-after", 0, &x_ops, x_after, &x_after_id), SWO_OK);

    if (pthread_mutex_lock(&v.big_lock) != 0) { /* this thread is the VMM */
        perror("pthread_mutex_lock");
        exit(1);
    }
    pthread_t migration;
    start(&migration, migration_query, &v);
    while (!atomic_load(&v.in_y))
        sched_yield();
    /* Each device is freed right after its unregister returned (ASan twin: no UAF). */
    CHECK_STATUS(swo_unregister_handler(v.s, x_before_id), SWO_OK);
    free(x_before);
    CHECK_STATUS(swo_unregister_handler(v.s, x_after_id), SWO_OK);
    free(x_after);
    /* Both returned while the query still waits for the lock held here. */
    CHECK(!atomic_load(&v.query_done));
    pthread_mutex_unlock(&v.big_lock);
    join(migration);

    CHECK(!atomic_load(&v.gave_up));
    CHECK(atomic_load(&v.query_done));
    /* x-before counted (asked before Y), x-after skipped (removed before the query got
     * there): 1000 + 20, nothing from x-after's 300 + 7. */
    CHECK_EQ(v.result.precopy_bytes, 1000);
    CHECK_EQ(v.result.stopcopy_bytes, 20);
    CHECK_EQ(v.result.postcopy_bytes, 0);
    CHECK_EQ(v.result.total_bytes, 1020);
    CHECK_EQ(atomic_load(&v.x_before_calls), 1);
    CHECK_EQ(atomic_load(&v.x_after_calls), 0);
    CHECK_STATUS(swo_unregister_handler(v.s, y_id), SWO_OK);
    swo_session_free(v.s);
    pthread_mutex_destroy(&v.big_lock);
}

int main(void)
{
    test_last_error_message_is_per_thread();
    test_reentrant_calls_from_a_callback_are_refused();
    test_reentrancy_is_tracked_per_session_through_nesting();
    test_unregister_waits_for_the_running_callback();
    test_unregister_returns_while_a_query_is_blocked_in_another_handler();
    test_unregister_while_another_thread_queries();
    int n = atomic_load(&failures);
    if (n) {
        fprintf(stderr, "test_threads: %d check(s) failed\n", n);
        return 1;
    }
    printf("test_threads: all checks passed\n");
    return 0;
}
