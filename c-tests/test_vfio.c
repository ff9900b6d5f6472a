/* The VFIO device model through the C ABI: argument checks, the §VFIO rules with their
 * numbers, garbage, a two-device session, and freeing a device while another thread
 * queries. Built plain and under ASan+UBSan. */
#define _GNU_SOURCE
#include <switchover.h>

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)
#define INT64_MAX_U UINT64_C(9223372036854775807)



/* A scripted device. */
struct device {
    int stop_rc;
    uint64_t stop_copy_length;
    int precopy_rc;
    uint64_t initial_bytes, dirty_bytes;
    unsigned stop_reads, precopy_reads;
};

static int read_stop_copy(void *opaque, uint64_t *len)
{
    struct device *d = opaque;
    d->stop_reads++;
    if (d->stop_rc == 0) {
        *len = d->stop_copy_length;
    }
    return d->stop_rc;
}

static int read_precopy(void *opaque, uint64_t *init, uint64_t *dirty)
{
    struct device *d = opaque;
    d->precopy_reads++;
    if (d->precopy_rc == 0) {
        *init = d->initial_bytes;
        *dirty = d->dirty_bytes;
    }
    return d->precopy_rc;
}

static const SwoVfioOps device_ops = {
    sizeof(SwoVfioOps), 0, read_stop_copy, read_precopy,
};

struct events {
    unsigned warnings;
    char all[16384];
};

static void on_event(void *opaque, const char *json)
{
    struct events *ev = opaque;
    if (strstr(json, "\"DEVICE_SIZE_WARNING\"")) {
        ev->warnings++;
        size_t used = strlen(ev->all);
        snprintf(ev->all + used, sizeof ev->all - used, "%s\n", json);
    }
}

static SwoSession *new_session(struct events *ev)
{
    SwoSession *s = NULL;
    CHECK_EQ(swo_session_new(&s), SWO_OK);
    if (ev) {
        SwoVmmOps vmm = { sizeof(SwoVmmOps), 0, NULL, NULL, on_event };
        CHECK_EQ(swo_session_set_vmm_ops(s, &vmm, ev), SWO_OK);
    }
    return s;
}

static SwoVfioSizes sizes_of(SwoVfio *v)
{
    SwoVfioSizes z = { .struct_size = sizeof z };
    memset(&z, 0xff, sizeof z);
    z.struct_size = sizeof z;
    CHECK_EQ(swo_vfio_get_sizes(v, &z), SWO_OK);
    return z;
}

static void test_arguments_are_checked(void)
{
    SwoSession *s = new_session(NULL);
    struct device d = { .stop_copy_length = GIB };
    SwoVfio *v = NULL;
    SwoVfioOps ops = device_ops;

    CHECK_EQ(swo_vfio_new(NULL, "gpu0", &ops, &d, &v), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_new(s, NULL, &ops, &d, &v), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_new(s, "gpu0", NULL, &d, &v), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_new(s, "gpu0", &ops, &d, NULL), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_new(s, "", &ops, &d, &v), SWO_ERR_INVALID_ARG);
    CHECK_EQ(swo_vfio_new(s, "gpu\xff", &ops, &d, &v), SWO_ERR_INVALID_ARG);
    ops.struct_size = 8;
    CHECK_EQ(swo_vfio_new(s, "gpu0", &ops, &d, &v), SWO_ERR_INVALID_ARG);
    ops = device_ops;
    ops.reserved = 1;
    CHECK_EQ(swo_vfio_new(s, "gpu0", &ops, &d, &v), SWO_ERR_INVALID_ARG);
    ops = device_ops;
    ops.query_stop_copy_size = NULL;
    CHECK_EQ(swo_vfio_new(s, "gpu0", &ops, &d, &v), SWO_ERR_INVALID_ARG);
    CHECK(v == NULL);
    CHECK_EQ(d.stop_reads, 0);

    CHECK_EQ(swo_vfio_new_fd(NULL, "gpu0", 0, &v), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_new_fd(s, NULL, 0, &v), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_new_fd(s, "gpu0", 0, NULL), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_new_fd(s, "gpu0", -1, &v), SWO_ERR_INVALID_ARG);

    CHECK_EQ(swo_vfio_new(s, "gpu0", &device_ops, &d, &v), SWO_OK);
    SwoVfio *dup = NULL;
    CHECK_EQ(swo_vfio_new(s, "gpu0", &device_ops, &d, &dup), SWO_ERR_EXISTS);
    CHECK(dup == NULL);
    char msg[256];
    size_t len = 0;
    CHECK_EQ(swo_last_error_message(msg, sizeof msg, &len), SWO_OK);
    CHECK(strstr(msg, "gpu0") != NULL);

    CHECK_EQ(swo_vfio_set_state(v, 8), SWO_ERR_INVALID_ARG);
    CHECK_EQ(swo_vfio_set_state(v, UINT32_MAX), SWO_ERR_INVALID_ARG);
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY_P2P), SWO_OK);
    CHECK_EQ(swo_vfio_set_data_fd(v, 3), SWO_ERR_UNSUPPORTED);
    CHECK_EQ(swo_vfio_get_sizes(v, NULL), SWO_ERR_NULL_ARG);

    CHECK_EQ(swo_vfio_set_state(NULL, 2), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_set_data_fd(NULL, 3), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_refresh(NULL), SWO_ERR_NULL_ARG);
    CHECK_EQ(swo_vfio_record_read(NULL, 1), SWO_ERR_NULL_ARG);
    SwoVfioSizes z = { .struct_size = sizeof z };
    CHECK_EQ(swo_vfio_get_sizes(NULL, &z), SWO_ERR_NULL_ARG);
    swo_vfio_free(NULL);

    swo_vfio_free(v);
    /* The name is free again once the device is. */
    CHECK_EQ(swo_vfio_new(s, "gpu0", &device_ops, &d, &v), SWO_OK);
    swo_vfio_free(v);
    swo_session_free(s);
}

static void test_reporting_and_reads(void)
{
    SwoSession *s = new_session(NULL);
    struct device d = { .stop_copy_length = 1000 };
    SwoVfio *v = NULL;
    CHECK_EQ(swo_vfio_new(s, "gpu0", &device_ops, &d, &v), SWO_OK);
    CHECK_EQ(d.stop_reads, 1);

    /* RUNNING: no precopy read. */
    SwoPending p;
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(d.precopy_reads, 0);
    CHECK_EQ(p.stopcopy_bytes, 1000);

    /* PRE_COPY: precopy = init + dirty, stopcopy = size - precopy. */
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    d.initial_bytes = 300;
    d.dirty_bytes = 200;
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(d.precopy_reads, 1);
    CHECK_EQ(p.precopy_bytes, 500);
    CHECK_EQ(p.stopcopy_bytes, 500);
    CHECK_EQ(p.postcopy_bytes, 0);
    CHECK_EQ(p.total_bytes, 1000);

    /* A fast query reads nothing. */
    CHECK_EQ(swo_query_pending(s, false, &p), SWO_OK);
    CHECK_EQ(d.stop_reads, 3); /* creation, two exact queries */
    CHECK_EQ(d.precopy_reads, 1);

    /* A read of 400: stop 600, init 0, dirty 100. */
    CHECK_EQ(swo_vfio_record_read(v, 400), SWO_OK);
    SwoVfioSizes z = sizes_of(v);
    CHECK_EQ(z.stopcopy_size, 600);
    CHECK_EQ(z.precopy_init_size, 0);
    CHECK_EQ(z.precopy_dirty_size, 100);
    CHECK_EQ(z.transferred, 400);
    /* A read of 0: init and dirty 0, stop-copy unchanged. */
    CHECK_EQ(swo_vfio_record_read(v, 0), SWO_OK);
    z = sizes_of(v);
    CHECK_EQ(z.stopcopy_size, 600);
    CHECK_EQ(z.precopy_init_size + z.precopy_dirty_size, 0);
    CHECK_EQ(swo_query_pending(s, false, &p), SWO_OK);
    CHECK_EQ(p.precopy_bytes, 0);
    CHECK_EQ(p.stopcopy_bytes, 600);

    swo_vfio_free(v);
    swo_session_free(s);
}

static void test_garbage_and_faults(void)
{
    static struct events ev;
    SwoSession *s = new_session(&ev);
    struct device d = { .stop_copy_length = 100 * MIB };
    SwoVfio *v = NULL;
    CHECK_EQ(swo_vfio_new(s, "gpu0", &device_ops, &d, &v), SWO_OK);
    CHECK_EQ(ev.warnings, 0);

    /* Above INT64_MAX: clamped, QEMU's message, OUT_OF_RANGE, one warning. */
    d.stop_copy_length = UINT64_MAX;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_OUT_OF_RANGE);
    CHECK_EQ(sizes_of(v).stopcopy_size, INT64_MAX_U);
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_OUT_OF_RANGE);
    CHECK_EQ(ev.warnings, 1);
    CHECK(strstr(ev.all, "\"device\": \"gpu0\"") != NULL);
    CHECK(strstr(ev.all, "\"kind\": \"stop-copy-overflow\"") != NULL);
    CHECK(strstr(ev.all, "gpu0: Estimated stop copy size overflow: 0xffffffffffffffff") != NULL);
    SwoPending p;
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(p.total_bytes, INT64_MAX_U);

    /* Precopy larger than stop-copy: stop-copy bucket 0. */
    d.stop_copy_length = 100 * MIB;
    d.initial_bytes = 80 * MIB;
    d.dirty_bytes = 40 * MIB;
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(p.precopy_bytes, 120 * MIB);
    CHECK_EQ(p.stopcopy_bytes, 0);
    CHECK(strstr(ev.all, "\"kind\": \"precopy-exceeds-stop-copy\"") != NULL);

    /* Reader failure: stop-copy 100 GiB, precopy 0, IO. */
    d.stop_rc = -EIO;
    d.precopy_rc = -EINVAL;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_IO);
    SwoVfioSizes z = sizes_of(v);
    CHECK_EQ(z.stopcopy_size, UINT64_C(107374182400));
    CHECK_EQ(z.precopy_init_size, 0);
    CHECK_EQ(z.precopy_dirty_size, 0);
    CHECK(strstr(ev.all, "\"kind\": \"stop-copy-query-failed\"") != NULL);
    CHECK(strstr(ev.all, "\"kind\": \"precopy-query-failed\"") != NULL);
    /* A garbage return code (positive) is a failure too. */
    d.stop_rc = 7;
    d.precopy_rc = 0;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_IO);
    CHECK_EQ(sizes_of(v).stopcopy_size, UINT64_C(107374182400));

    /* A read larger than the cache floors at 0. */
    d.stop_rc = 0;
    d.stop_copy_length = 1000;
    d.initial_bytes = 10;
    d.dirty_bytes = 0;
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    CHECK_EQ(swo_vfio_record_read(v, 5000), SWO_OK);
    z = sizes_of(v);
    CHECK_EQ(z.stopcopy_size, 0);
    CHECK_EQ(z.precopy_init_size, 0);
    CHECK(strstr(ev.all, "\"kind\": \"read-exceeds-cache\"") != NULL);

    /* Initial bytes that grow between reads: kept, warned. */
    d.stop_copy_length = GIB;
    d.initial_bytes = 10 * MIB;
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    d.initial_bytes = 20 * MIB;
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    CHECK_EQ(sizes_of(v).precopy_init_size, 20 * MIB);
    CHECK(strstr(ev.all, "\"kind\": \"precopy-init-grew\"") != NULL);

    /* No precopy reader: precopy info unavailable in PRE_COPY. */
    struct device nic = { .stop_copy_length = 8 * MIB };
    SwoVfioOps ops = device_ops;
    ops.query_precopy_info = NULL;
    SwoVfio *n = NULL;
    CHECK_EQ(swo_vfio_new(s, "nic0", &ops, &nic, &n), SWO_OK);
    CHECK_EQ(swo_vfio_set_state(n, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    CHECK_EQ(swo_vfio_refresh(n), SWO_ERR_BAD_STATE);
    CHECK(strstr(ev.all, "\"kind\": \"precopy-info-unavailable\"") != NULL);

    unsigned before = ev.warnings;
    d.stop_copy_length = UINT64_MAX;
    d.stop_rc = -EIO;
    for (int i = 0; i < 10; i++) {
        CHECK(swo_vfio_refresh(v) != SWO_OK);
    }
    CHECK_EQ(ev.warnings, before); /* every kind was warned already */

    swo_vfio_free(n);
    swo_vfio_free(v);
    swo_session_free(s);
}

static void test_real_ioctl_without_a_device(void)
{
    static struct events ev;
    SwoSession *s = new_session(&ev);
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    SwoVfio *v = NULL;
    CHECK_EQ(swo_vfio_new_fd(s, "gpu0", fd, &v), SWO_OK);
    CHECK_EQ(sizes_of(v).stopcopy_size, UINT64_C(107374182400));
    CHECK(strstr(ev.all, "\"kind\": \"stop-copy-query-failed\"") != NULL);
    CHECK_EQ(swo_vfio_set_data_fd(v, -2), SWO_ERR_INVALID_ARG);
    CHECK_EQ(swo_vfio_set_data_fd(v, fd), SWO_OK);
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_IO);
    CHECK(strstr(ev.all, "\"kind\": \"precopy-query-failed\"") != NULL);
    swo_vfio_free(v);
    close(fd);
    swo_session_free(s);
}

static void test_two_device_session(void)
{
    SwoSession *s = new_session(NULL);
    struct device gpu = { .stop_copy_length = 2 * GIB };
    struct device nic = { .stop_copy_length = 8 * MIB };
    SwoVfio *g = NULL, *n = NULL;
    CHECK_EQ(swo_vfio_new(s, "vgpu", &device_ops, &gpu, &g), SWO_OK);
    CHECK_EQ(swo_vfio_new(s, "nic-vf", &device_ops, &nic, &n), SWO_OK);
    for (int exact = 0; exact <= 1; exact++) {
        SwoPending p;
        CHECK_EQ(swo_query_pending(s, exact, &p), SWO_OK);
        CHECK_EQ(p.precopy_bytes, 0);
        CHECK_EQ(p.stopcopy_bytes, 2 * GIB + 8 * MIB);
        CHECK_EQ(p.total_bytes, UINT64_C(2155872256));
    }
    /* In PRE_COPY the split moves, the total stays. */
    CHECK_EQ(swo_vfio_set_state(g, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    CHECK_EQ(swo_vfio_set_state(n, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    gpu.initial_bytes = GIB;
    nic.initial_bytes = 2 * MIB;
    nic.dirty_bytes = MIB;
    SwoPending p;
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(p.precopy_bytes, GIB + 3 * MIB);
    CHECK_EQ(p.stopcopy_bytes, GIB + 5 * MIB);
    CHECK_EQ(p.total_bytes, UINT64_C(2155872256));
    /* Freeing the NIC leaves the vGPU. */
    swo_vfio_free(n);
    CHECK_EQ(swo_query_pending(s, false, &p), SWO_OK);
    CHECK_EQ(p.total_bytes, 2 * GIB);
    swo_vfio_free(g);
    swo_session_free(s);
}

/* A device freed while another thread queries: the opaque is freed right after
 * swo_vfio_free, so a late reader call is a use-after-free that ASan reports. */
struct querier {
    SwoSession *s;
    atomic_bool stop;
    atomic_ulong queries;
    atomic_int bad;
};

static void *query_loop(void *arg)
{
    struct querier *q = arg;
    unsigned long n = 0;
    while (!atomic_load(&q->stop)) {
        SwoPending p;
        if (swo_query_pending(q->s, (n & 1) == 0, &p) != SWO_OK) {
            atomic_fetch_add(&q->bad, 1);
        }
        /* The NIC always counts; the vGPU counts whole or not at all. */
        if (p.total_bytes != 8 * MIB && p.total_bytes != 8 * MIB + 2 * GIB) {
            atomic_fetch_add(&q->bad, 1);
        }
        n++;
        atomic_store(&q->queries, n);
    }
    return NULL;
}

static void test_free_while_querying(void)
{
    SwoSession *s = new_session(NULL);
    struct device nic = { .stop_copy_length = 8 * MIB };
    SwoVfio *n = NULL;
    CHECK_EQ(swo_vfio_new(s, "nic", &device_ops, &nic, &n), SWO_OK);
    struct querier q = { .s = s };
    atomic_init(&q.stop, false);
    atomic_init(&q.queries, 0);
    atomic_init(&q.bad, 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, query_loop, &q), 0);
    while (atomic_load(&q.queries) == 0) {
        sched_yield();
    }
    for (int i = 0; i < 400; i++) {
        struct device *gpu = calloc(1, sizeof *gpu);
        CHECK(gpu != NULL);
        if (!gpu) {
            break;
        }
        gpu->stop_copy_length = 2 * GIB;
        SwoVfio *g = NULL;
        CHECK_EQ(swo_vfio_new(s, "vgpu", &device_ops, gpu, &g), SWO_OK);
        if (i % 2) {
            CHECK_EQ(swo_vfio_set_state(g, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
        }
        swo_vfio_free(g);
        free(gpu);
    }
    atomic_store(&q.stop, true);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(atomic_load(&q.queries) > 0);
    CHECK_EQ(atomic_load(&q.bad), 0);
    swo_vfio_free(n);
    swo_session_free(s);
}

static void test_device_outlives_session_handle(void)
{
    SwoSession *s = new_session(NULL);
    struct device d = { .stop_copy_length = GIB };
    SwoVfio *v = NULL;
    CHECK_EQ(swo_vfio_new(s, "gpu0", &device_ops, &d, &v), SWO_OK);
    swo_session_free(s);
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    CHECK_EQ(sizes_of(v).stopcopy_size, GIB);
    swo_vfio_free(v);
}

int main(void)
{
    test_arguments_are_checked();
    test_reporting_and_reads();
    test_garbage_and_faults();
    test_real_ioctl_without_a_device();
    test_two_device_session();
    test_free_while_querying();
    test_device_outlives_session_handle();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("vfio: all checks passed\n");
    return 0;
}
