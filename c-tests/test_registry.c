/* Sessions and the registry, single-threaded: sessions, version, status names, the error message buffer,
 * and the merged pending-data registry (docs/qemu-model.md §Pending buckets), all through
 * include/switchover.h only. Every return code is checked; every handle is freed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

/* Checks a status code and, on a mismatch, prints both names and the thread's message. */


static SwoSession *new_session(void)
{
    SwoSession *s = NULL;
    CHECK_STATUS(swo_session_new(&s), SWO_OK);
    CHECK(s != NULL);
    if (s == NULL)
        exit(1);
    return s;
}

/* A device with fixed figures; counts its calls and checks what the library hands it. */
struct device {
    uint64_t precopy, stopcopy, postcopy;
    uint64_t garbage_total; /* written into total_bytes: the library must ignore it */
    bool active;
    unsigned calls, active_calls;
    unsigned not_zeroed; /* calls whose SwoPending was not all zero on entry */
    bool last_exact, last_final;
};

static void device_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct device *d = opaque;
    d->calls++;
    if (p->precopy_bytes || p->stopcopy_bytes || p->postcopy_bytes || p->total_bytes)
        d->not_zeroed++;
    d->last_exact = exact;
    d->last_final = final;
    p->precopy_bytes += d->precopy;
    p->stopcopy_bytes += d->stopcopy;
    p->postcopy_bytes += d->postcopy;
    p->total_bytes = d->garbage_total;
}

static bool device_is_active(void *opaque)
{
    struct device *d = opaque;
    d->active_calls++;
    return d->active;
}

static const SwoHandlerOps device_ops = { sizeof(SwoHandlerOps), 0, device_pending,
                                          device_is_active };

static uint64_t register_device(SwoSession *s, const char *idstr, uint32_t instance,
                                struct device *d)
{
    uint64_t id = 0;
    CHECK_STATUS(swo_register_handler(s, idstr, instance, &device_ops, d, &id), SWO_OK);
    CHECK(id != 0);
    return id;
}

static void unregister(SwoSession *s, uint64_t id)
{
    CHECK_STATUS(swo_unregister_handler(s, id), SWO_OK);
}

static SwoPending query(SwoSession *s, bool exact)
{
    SwoPending p;
    memset(&p, 0xa5, sizeof p);
    CHECK_STATUS(swo_query_pending(s, exact, &p), SWO_OK);
    return p;
}

/* ------------------------------------------------------------------------------------ */

static void test_version_is_the_package_version(void)
{
    const char *v = swo_version();
    CHECK(v != NULL);
    if (v)
        CHECK(strcmp(v, "0.2.0") == 0); /* Cargo.toml; test_abi_names checks the macros */
    CHECK(swo_version() == v); /* static, never freed */
}

static void test_status_names_cover_every_code_and_an_unknown_one(void)
{
    static const char *const names[] = {
        "SWO_OK", "SWO_ERR_NULL_ARG", "SWO_ERR_INVALID_ARG", "SWO_ERR_OUT_OF_RANGE",
        "SWO_ERR_PARSE", "SWO_ERR_BAD_STATE", "SWO_ERR_NOT_FOUND", "SWO_ERR_EXISTS",
        "SWO_ERR_BUFFER_TOO_SMALL", "SWO_ERR_REENTRANT", "SWO_ERR_IO", "SWO_ERR_UNSUPPORTED",
        "SWO_ERR_PANIC",
    };
    static const SwoStatus codes[] = {
        SWO_OK, SWO_ERR_NULL_ARG, SWO_ERR_INVALID_ARG, SWO_ERR_OUT_OF_RANGE, SWO_ERR_PARSE,
        SWO_ERR_BAD_STATE, SWO_ERR_NOT_FOUND, SWO_ERR_EXISTS, SWO_ERR_BUFFER_TOO_SMALL,
        SWO_ERR_REENTRANT, SWO_ERR_IO, SWO_ERR_UNSUPPORTED, SWO_ERR_PANIC,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(codes[i] == i); /* docs/design.md numbers, never renumbered */
        const char *n = swo_status_name(codes[i]);
        CHECK(n != NULL && strcmp(n, names[i]) == 0);
    }
    CHECK(strcmp(swo_status_name(13), "SWO_ERR_UNKNOWN") == 0);
    CHECK(strcmp(swo_status_name(UINT32_MAX), "SWO_ERR_UNKNOWN") == 0);
}

static void test_sessions_are_created_and_freed(void)
{
    SwoSession *a = new_session(), *b = new_session();
    CHECK(a != b);
    swo_session_free(a);
    swo_session_free(b);
    swo_session_free(NULL); /* documented no-op */
}

static void test_empty_session_has_nothing_pending(void)
{
    SwoSession *s = new_session();
    SwoPending p = query(s, false);
    CHECK_EQ(p.precopy_bytes, 0);
    CHECK_EQ(p.stopcopy_bytes, 0);
    CHECK_EQ(p.postcopy_bytes, 0);
    CHECK_EQ(p.total_bytes, 0);
    p = query(s, true);
    CHECK_EQ(p.total_bytes, 0);
    swo_session_free(s);
}

static void test_error_message_buffer_convention(void)
{
    SwoSession *s = new_session();
    char buf[256];
    size_t len = 12345;
    /* Make a failure with a known message. */
    CHECK_STATUS(swo_unregister_handler(s, 987654321), SWO_ERR_NOT_FOUND);
    const size_t n = strlen(last_message());
    CHECK(n > 0);
    CHECK(strstr(last_message(), "987654321") != NULL); /* names the id it did not find */

    /* NULL buffer with len 0 asks the size. */
    CHECK_STATUS(swo_last_error_message(NULL, 0, &len), SWO_OK);
    CHECK_EQ(len, n);

    /* Too small (no room for the NUL): untouched buffer, out_len still set. */
    memset(buf, 'X', sizeof buf);
    len = 0;
    CHECK_STATUS(swo_last_error_message(buf, n, &len), SWO_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(len, n);
    for (size_t i = 0; i < sizeof buf; i++)
        CHECK(buf[i] == 'X');
    len = 0;
    CHECK_STATUS(swo_last_error_message(buf, 1, &len), SWO_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(len, n);
    CHECK(buf[0] == 'X');

    /* Exactly large enough; the failed reads above did not replace the message. */
    len = 0;
    CHECK_STATUS(swo_last_error_message(buf, n + 1, &len), SWO_OK);
    CHECK_EQ(len, n);
    CHECK(buf[n] == '\0' && strlen(buf) == n);
    CHECK(buf[n + 1] == 'X');
    CHECK(strstr(buf, "987654321") != NULL);

    /* Required out_len, and a NULL buffer that claims a length. */
    CHECK_STATUS(swo_last_error_message(buf, sizeof buf, NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_last_error_message(NULL, 10, &len), SWO_ERR_NULL_ARG);
    swo_session_free(s);
}

static void test_buckets_add_across_handlers_and_total_is_their_sum(void)
{
    SwoSession *s = new_session();
    struct device ram = { .precopy = 1000, .active = true };
    struct device vfio = { .precopy = 10, .stopcopy = 2000000000, .active = true };
    struct device block = { .postcopy = 5, .active = true };
    uint64_t ids[3] = { register_device(s, "ram", 0, &ram),
                        register_device(s, "0000:3b:00.0/vfio", 0, &vfio),
                        register_device(s, "block", 0, &block) };
    CHECK(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);

    SwoPending p = query(s, false);
    CHECK_EQ(p.precopy_bytes, 1010);
    CHECK_EQ(p.stopcopy_bytes, 2000000000);
    CHECK_EQ(p.postcopy_bytes, 5);
    CHECK_EQ(p.total_bytes, 2000001015);
    CHECK(ram.calls == 1 && vfio.calls == 1 && block.calls == 1);

    /* The device's figures change; the next query sees them. */
    ram.precopy = 0;
    p = query(s, true);
    CHECK_EQ(p.precopy_bytes, 10);
    CHECK_EQ(p.total_bytes, 2000000015);

    /* Unregistered handlers are no longer asked. */
    unregister(s, ids[1]);
    p = query(s, false);
    CHECK_EQ(p.precopy_bytes, 0);
    CHECK_EQ(p.stopcopy_bytes, 0);
    CHECK_EQ(p.total_bytes, 5);
    CHECK(vfio.calls == 2);
    unregister(s, ids[0]);
    unregister(s, ids[2]);
    swo_session_free(s);
}

static void test_exact_flag_reaches_the_callback_and_final_never_does(void)
{
    SwoSession *s = new_session();
    struct device d = { .precopy = 1, .active = true };
    uint64_t id = register_device(s, "ram", 0, &d);
    (void)query(s, true);
    CHECK(d.last_exact == true && d.last_final == false);
    (void)query(s, false);
    CHECK(d.last_exact == false && d.last_final == false);
    unregister(s, id);
    swo_session_free(s);
}

static void test_every_handler_gets_its_own_zeroed_pending(void)
{
    SwoSession *s = new_session();
    struct device d[4] = {
        { .precopy = 7, .stopcopy = 8, .postcopy = 9, .garbage_total = 1, .active = true },
        { .precopy = 1, .garbage_total = UINT64_MAX, .active = true },
        { .stopcopy = 1, .garbage_total = 42, .active = true },
        { .postcopy = 1, .garbage_total = 3, .active = true },
    };
    uint64_t ids[4];
    for (uint32_t i = 0; i < 4; i++)
        ids[i] = register_device(s, "dev", i, &d[i]);
    for (int round = 0; round < 3; round++) {
        SwoPending p = query(s, round == 1);
        CHECK_EQ(p.precopy_bytes, 8);
        CHECK_EQ(p.stopcopy_bytes, 9);
        CHECK_EQ(p.postcopy_bytes, 10);
        /* total_bytes is the library's sum, whatever the handlers wrote there */
        CHECK_EQ(p.total_bytes, 27);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(d[i].calls == 3);
        CHECK(d[i].not_zeroed == 0);
        unregister(s, ids[i]);
    }
    swo_session_free(s);
}

static void test_garbage_sizes_saturate_instead_of_wrapping(void)
{
    SwoSession *s = new_session();
    struct device a = { .precopy = UINT64_MAX, .stopcopy = UINT64_MAX, .active = true };
    struct device b = { .precopy = UINT64_MAX, .stopcopy = 1, .postcopy = UINT64_MAX,
                        .active = true };
    uint64_t ia = register_device(s, "a", 0, &a), ib = register_device(s, "b", 0, &b);
    SwoPending p = query(s, true);
    CHECK_EQ(p.precopy_bytes, UINT64_MAX);
    CHECK_EQ(p.stopcopy_bytes, UINT64_MAX);
    CHECK_EQ(p.postcopy_bytes, UINT64_MAX);
    CHECK_EQ(p.total_bytes, UINT64_MAX);
    unregister(s, ia);
    unregister(s, ib);

    /* Buckets that each fit but whose total does not: the total saturates, the buckets
     * stay exact. */
    struct device c = { .precopy = UINT64_C(1) << 63, .active = true };
    struct device d = { .stopcopy = UINT64_C(1) << 63, .postcopy = 1, .active = true };
    uint64_t ic = register_device(s, "c", 0, &c), id = register_device(s, "d", 0, &d);
    p = query(s, false);
    CHECK_EQ(p.precopy_bytes, UINT64_C(1) << 63);
    CHECK_EQ(p.stopcopy_bytes, UINT64_C(1) << 63);
    CHECK_EQ(p.postcopy_bytes, 1);
    CHECK_EQ(p.total_bytes, UINT64_MAX);
    unregister(s, ic);
    unregister(s, id);
    swo_session_free(s);
}

static void test_inactive_handlers_are_skipped(void)
{
    SwoSession *s = new_session();
    struct device on = { .precopy = 7, .active = true };
    struct device off = { .precopy = 100, .stopcopy = 100, .active = false };
    uint64_t i1 = register_device(s, "on", 0, &on), i2 = register_device(s, "off", 0, &off);
    SwoPending p = query(s, false);
    CHECK_EQ(p.precopy_bytes, 7);
    CHECK_EQ(p.stopcopy_bytes, 0);
    CHECK_EQ(p.total_bytes, 7);
    CHECK(off.calls == 0);        /* save_query_pending not called */
    CHECK(off.active_calls >= 1); /* but it was asked */

    off.active = true;
    p = query(s, true);
    CHECK_EQ(p.total_bytes, 207);
    CHECK(off.calls == 1);

    /* NULL is_active means always active */
    struct device plain = { .stopcopy = 3 };
    const SwoHandlerOps plain_ops = { sizeof plain_ops, 0, device_pending, NULL };
    uint64_t i3 = 0;
    CHECK_STATUS(swo_register_handler(s, "plain", 0, &plain_ops, &plain, &i3), SWO_OK);
    p = query(s, false);
    CHECK_EQ(p.total_bytes, 210);
    CHECK(plain.calls == 1);
    unregister(s, i1);
    unregister(s, i2);
    unregister(s, i3);
    swo_session_free(s);
}

static void test_idstr_and_instance_id_are_unique_together(void)
{
    SwoSession *s = new_session();
    struct device d = { .precopy = 1, .active = true };
    uint64_t a = register_device(s, "vfio", 0, &d);
    uint64_t b = register_device(s, "vfio", 1, &d);   /* same idstr, other instance */
    uint64_t c = register_device(s, "vfio-2", 0, &d); /* other idstr, same instance */
    uint64_t dup = 777;
    CHECK_STATUS(swo_register_handler(s, "vfio", 0, &device_ops, &d, &dup), SWO_ERR_EXISTS);
    CHECK(dup == 777); /* out-parameters are written only on success */
    CHECK(strstr(last_message(), "vfio") != NULL);
    CHECK_STATUS(swo_register_handler(s, "vfio", 1, &device_ops, &d, &dup), SWO_ERR_EXISTS);
    CHECK_EQ(query(s, false).total_bytes, 3); /* the refused ones were not added */

    /* Once unregistered, the pair is free again, under a new id. */
    unregister(s, a);
    uint64_t again = register_device(s, "vfio", 0, &d);
    CHECK(again != a);
    CHECK_EQ(query(s, false).total_bytes, 3);
    unregister(s, again);
    unregister(s, b);
    unregister(s, c);
    swo_session_free(s);
}

static void test_bad_handler_ops_are_invalid_args(void)
{
    SwoSession *s = new_session();
    struct device d = { .precopy = 1, .active = true };
    uint64_t id = 555;
    SwoHandlerOps ops = device_ops;

    const uint32_t small_sizes[] = { 0, 1, 8, (uint32_t)sizeof(SwoHandlerOps) - 1 };
    for (size_t i = 0; i < sizeof small_sizes / sizeof small_sizes[0]; i++) {
        ops.struct_size = small_sizes[i];
        CHECK_STATUS(swo_register_handler(s, "dev", 0, &ops, &d, &id), SWO_ERR_INVALID_ARG);
        CHECK(strstr(last_message(), "struct_size") != NULL);
    }
    ops = device_ops;
    ops.save_query_pending = NULL;
    CHECK_STATUS(swo_register_handler(s, "dev", 0, &ops, &d, &id), SWO_ERR_INVALID_ARG);
    CHECK(strstr(last_message(), "save_query_pending") != NULL);

    const uint32_t bad_flags[] = { 1u << 2, 1u << 31, 0xffffffffu,
                                   SWO_HANDLER_NO_POSTCOPY | (1u << 5) };
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        ops = device_ops;
        ops.flags = bad_flags[i];
        CHECK_STATUS(swo_register_handler(s, "dev", 0, &ops, &d, &id), SWO_ERR_INVALID_ARG);
    }
    /* empty idstr, and one that is not UTF-8 */
    CHECK_STATUS(swo_register_handler(s, "", 0, &device_ops, &d, &id), SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_register_handler(s, "dev\xff\xfe", 0, &device_ops, &d, &id),
             SWO_ERR_INVALID_ARG);
    CHECK(id == 555);
    CHECK_EQ(query(s, false).total_bytes, 0); /* nothing half-registered */
    CHECK(d.calls == 0);

    /* Every known flag is accepted. */
    ops = device_ops;
    ops.flags = SWO_HANDLER_EXACT_NEEDS_STOPPED_VM | SWO_HANDLER_NO_POSTCOPY;
    CHECK_STATUS(swo_register_handler(s, "dev", 0, &ops, &d, &id), SWO_OK);
    CHECK(id != 555 && id != 0);
    CHECK_STATUS(swo_unregister_handler(s, id), SWO_OK);
    swo_session_free(s);
}

static void test_unknown_handler_id_is_not_found(void)
{
    SwoSession *s = new_session();
    struct device d = { .active = true };
    CHECK_STATUS(swo_unregister_handler(s, 0), SWO_ERR_NOT_FOUND);
    CHECK_STATUS(swo_unregister_handler(s, UINT64_MAX), SWO_ERR_NOT_FOUND);
    uint64_t id = register_device(s, "dev", 0, &d);
    CHECK_STATUS(swo_unregister_handler(s, id + 1), SWO_ERR_NOT_FOUND);
    unregister(s, id);
    CHECK_STATUS(swo_unregister_handler(s, id), SWO_ERR_NOT_FOUND); /* twice */

    /* An id from one session means nothing to another. */
    SwoSession *other = new_session();
    id = register_device(s, "dev", 0, &d);
    CHECK_STATUS(swo_unregister_handler(other, id), SWO_ERR_NOT_FOUND);
    unregister(s, id);
    swo_session_free(other);
    swo_session_free(s);
}

static void test_opaque_is_passed_through_and_may_be_null(void)
{
    SwoSession *s = new_session();
    uint64_t id = 0;
    CHECK_STATUS(swo_register_handler(s, "null-opaque", 0, &device_ops, NULL, &id), SWO_OK);
    CHECK_STATUS(swo_unregister_handler(s, id), SWO_OK); /* never queried: no callback ran */
    swo_session_free(s);
}

static void test_freeing_a_session_with_handlers_unregisters_them(void)
{
    SwoSession *s = new_session();
    struct device *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    if (!d) {
        swo_session_free(s);
        return;
    }
    d->precopy = 1;
    d->active = true;
    (void)register_device(s, "dev", 0, d);
    CHECK_EQ(query(s, false).total_bytes, 1);
    swo_session_free(s); /* handlers go with it; ASan sees any leak */
    CHECK(d->calls == 1);
    free(d);
}

static int vmm_stop(void *opaque) { (void)opaque; return 0; }
static int vmm_resume(void *opaque) { (void)opaque; return 0; }
static void vmm_event(void *opaque, const char *json) { (void)opaque; (void)json; }

static void test_vmm_ops_are_checked(void)
{
    SwoSession *s = new_session();
    SwoVmmOps ops = { sizeof ops, 0, vmm_stop, vmm_resume, vmm_event };
    CHECK_STATUS(swo_session_set_vmm_ops(s, &ops, NULL), SWO_OK);
    SwoVmmOps none = { sizeof none, 0, NULL, NULL, NULL };
    CHECK_STATUS(swo_session_set_vmm_ops(s, &none, NULL), SWO_OK);
    ops.struct_size = sizeof ops - 1;
    CHECK_STATUS(swo_session_set_vmm_ops(s, &ops, NULL), SWO_ERR_INVALID_ARG);
    ops.struct_size = 0;
    CHECK_STATUS(swo_session_set_vmm_ops(s, &ops, NULL), SWO_ERR_INVALID_ARG);
    ops.struct_size = sizeof ops;
    ops.reserved = 1;
    CHECK_STATUS(swo_session_set_vmm_ops(s, &ops, NULL), SWO_ERR_INVALID_ARG);
    swo_session_free(s);
}

/* NULL for every pointer argument of every function in the header. */
static void test_null_pointer_arguments_are_refused(void)
{
    SwoSession *s = new_session();
    struct device d = { .precopy = 1, .active = true };
    const SwoVmmOps vmm = { sizeof vmm, 0, NULL, NULL, NULL };
    uint64_t id = 4242;
    SwoPending p = { 1, 2, 3, 4 };
    size_t len = 0;
    char buf[64];

    /* swo_session_new */
    CHECK_STATUS(swo_session_new(NULL), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "out") != NULL);

    /* swo_session_free: NULL is a documented no-op */
    swo_session_free(NULL);

    /* swo_session_set_vmm_ops (opaque may be NULL) */
    CHECK_STATUS(swo_session_set_vmm_ops(NULL, &vmm, NULL), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "session") != NULL);
    CHECK_STATUS(swo_session_set_vmm_ops(s, NULL, NULL), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "ops") != NULL);

    /* swo_register_handler (opaque may be NULL) */
    CHECK_STATUS(swo_register_handler(NULL, "dev", 0, &device_ops, &d, &id), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "session") != NULL);
    CHECK_STATUS(swo_register_handler(s, NULL, 0, &device_ops, &d, &id), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "idstr") != NULL);
    CHECK_STATUS(swo_register_handler(s, "dev", 0, NULL, &d, &id), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "ops") != NULL);
    CHECK_STATUS(swo_register_handler(s, "dev", 0, &device_ops, &d, NULL), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "out_id") != NULL);
    CHECK(id == 4242);
    CHECK_EQ(query(s, false).total_bytes, 0); /* none of them registered anything */

    /* swo_unregister_handler */
    CHECK_STATUS(swo_unregister_handler(NULL, 1), SWO_ERR_NULL_ARG);

    /* swo_query_pending */
    CHECK_STATUS(swo_query_pending(NULL, false, &p), SWO_ERR_NULL_ARG);
    CHECK(p.precopy_bytes == 1 && p.total_bytes == 4); /* untouched on failure */
    CHECK_STATUS(swo_query_pending(s, true, NULL), SWO_ERR_NULL_ARG);
    CHECK(strstr(last_message(), "out") != NULL);

    /* swo_last_error_message: out_len is required; buf only when len is 0 */
    CHECK_STATUS(swo_last_error_message(buf, sizeof buf, NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_last_error_message(NULL, sizeof buf, &len), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_last_error_message(NULL, 0, &len), SWO_OK);

    /* swo_size_to_str: NULL buffer with len 0 asks the length (documented) */
    size_t need = swo_size_to_str(0, NULL, 0);
    CHECK_EQ(need, strlen("0 B"));
    CHECK(swo_size_to_str(0, buf, sizeof buf) == need && strcmp(buf, "0 B") == 0);

    /* swo_version / swo_status_name take no pointers */
    swo_session_free(s);
}

int main(void)
{
    /* A fresh thread has no message yet. */
    size_t len = 99;
    CHECK_STATUS(swo_last_error_message(NULL, 0, &len), SWO_OK);
    CHECK_EQ(len, 0);

    test_version_is_the_package_version();
    test_status_names_cover_every_code_and_an_unknown_one();
    test_sessions_are_created_and_freed();
    test_empty_session_has_nothing_pending();
    test_error_message_buffer_convention();
    test_buckets_add_across_handlers_and_total_is_their_sum();
    test_exact_flag_reaches_the_callback_and_final_never_does();
    test_every_handler_gets_its_own_zeroed_pending();
    test_garbage_sizes_saturate_instead_of_wrapping();
    test_inactive_handlers_are_skipped();
    test_idstr_and_instance_id_are_unique_together();
    test_bad_handler_ops_are_invalid_args();
    test_unknown_handler_id_is_not_found();
    test_opaque_is_passed_through_and_may_be_null();
    test_freeing_a_session_with_handlers_unregisters_them();
    test_vmm_ops_are_checked();
    test_null_pointer_arguments_are_refused();

    if (failures) {
        fprintf(stderr, "test_registry: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_registry: all checks passed\n");
    return 0;
}
