/* The real ioctl path of swo_vfio_new_fd, without a device: run with ioctl_shim.so in
 * LD_PRELOAD (meson does), which checks what the library sends and answers as scripted. */
#define _GNU_SOURCE
#include "ioctl_shim.h"
#include <switchover.h>

#include "check.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)
#define INT64_MAX_U UINT64_C(9223372036854775807)



struct events {
    unsigned warnings;
    char last[1024];
    char all[16384];
};

static void on_event(void *opaque, const char *json)
{
    struct events *ev = opaque;
    if (strstr(json, "\"DEVICE_SIZE_WARNING\"")) {
        ev->warnings++;
        snprintf(ev->last, sizeof ev->last, "%s", json);
        size_t used = strlen(ev->all);
        snprintf(ev->all + used, sizeof ev->all - used, "%s\n", json);
    }
}

static SwoVfioSizes sizes_of(SwoVfio *v)
{
    SwoVfioSizes s = { .struct_size = sizeof s };
    memset(&s, 0xff, sizeof s);
    s.struct_size = sizeof s;
    CHECK_EQ(swo_vfio_get_sizes(v, &s), SWO_OK);
    return s;
}

int main(void)
{
    struct ioctl_shim_control *ctl = dlsym(RTLD_DEFAULT, "ioctl_shim_control");
    if (!ctl) {
        fprintf(stderr, "ioctl_shim.so is not preloaded (LD_PRELOAD)\n");
        return 1;
    }
    int dev_fd = open("/dev/null", O_RDONLY);
    int data_fd = open("/dev/null", O_RDONLY);
    if (dev_fd < 0 || data_fd < 0) {
        perror("open /dev/null");
        return 1;
    }
    ctl->device_fd = dev_fd;
    ctl->data_fd = data_fd;
    ctl->stop_copy_length = 2 * GIB;

    SwoSession *s = NULL;
    CHECK_EQ(swo_session_new(&s), SWO_OK);
    static struct events ev;
    SwoVmmOps vmm = { sizeof(SwoVmmOps), 0, NULL, NULL, on_event };
    CHECK_EQ(swo_session_set_vmm_ops(s, &vmm, &ev), SWO_OK);

    /* Creation reads the stop-copy size once: VFIO_DEVICE_FEATURE, argsz 16, GET|9. */
    SwoVfio *v = NULL;
    CHECK_EQ(swo_vfio_new_fd(s, "gpu0", dev_fd, &v), SWO_OK);
    CHECK(v != NULL);
    CHECK_EQ(ctl->feature_calls, 1);
    CHECK_EQ(ctl->last_request, 0x3b75);
    CHECK_EQ(ctl->last_argsz, 16);
    CHECK_EQ(ctl->last_flags, (1u << 16) | 9u);
    CHECK_EQ(sizes_of(v).stopcopy_size, 2 * GIB);

    /* A fast query issues no ioctl. */
    SwoPending p;
    CHECK_EQ(swo_query_pending(s, false, &p), SWO_OK);
    CHECK_EQ(p.stopcopy_bytes, 2 * GIB);
    CHECK_EQ(ctl->feature_calls, 1);

    /* RUNNING: an exact query re-reads the stop-copy size only. */
    ctl->stop_copy_length = 3 * GIB;
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(p.stopcopy_bytes, 3 * GIB);
    CHECK_EQ(ctl->feature_calls, 2);
    CHECK_EQ(ctl->precopy_calls, 0);

    /* PRE_COPY without a data fd: precopy info unavailable, 0, warning, BAD_STATE. */
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    ctl->initial_bytes = 512 * MIB;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_BAD_STATE);
    CHECK_EQ(ctl->precopy_calls, 0);
    CHECK_EQ(sizes_of(v).precopy_init_size, 0);
    CHECK_EQ(ev.warnings, 1);
    CHECK(strstr(ev.last, "\"kind\": \"precopy-info-unavailable\"") != NULL);

    /* With the data fd: VFIO_MIG_GET_PRECOPY_INFO, argsz 24, flags 0; flags coming back
     * (garbage here) are ignored. */
    CHECK_EQ(swo_vfio_set_data_fd(v, data_fd), SWO_OK);
    ctl->stop_copy_length = 2 * GIB;
    ctl->initial_bytes = 512 * MIB;
    ctl->dirty_bytes = 64 * MIB;
    ctl->precopy_flags_out = 0xdeadbeefu;
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    CHECK_EQ(ctl->precopy_calls, 1);
    CHECK_EQ(ctl->last_request, 0x3b79);
    CHECK_EQ(ctl->last_argsz, 24);
    CHECK_EQ(ctl->last_flags, 0);
    SwoVfioSizes z = sizes_of(v);
    CHECK_EQ(z.stopcopy_size, 2 * GIB);
    CHECK_EQ(z.precopy_init_size, 512 * MIB);
    CHECK_EQ(z.precopy_dirty_size, 64 * MIB);
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(ctl->precopy_calls, 2);
    CHECK_EQ(p.precopy_bytes, 576 * MIB);
    CHECK_EQ(p.stopcopy_bytes, 2 * GIB - 576 * MIB);
    CHECK_EQ(p.total_bytes, 2 * GIB);

    /* PRE_COPY_P2P reads precopy info too; STOP_COPY does not. */
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY_P2P), SWO_OK);
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    CHECK_EQ(ctl->precopy_calls, 3);
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_STOP_COPY), SWO_OK);
    unsigned feature_before = ctl->feature_calls;
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    CHECK_EQ(ctl->precopy_calls, 3);
    CHECK_EQ(ctl->feature_calls, feature_before + 1);

    /* Garbage: a stop-copy size above INT64_MAX is clamped, QEMU's message, OUT_OF_RANGE. */
    ctl->stop_copy_length = UINT64_MAX;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_OUT_OF_RANGE);
    CHECK_EQ(sizes_of(v).stopcopy_size, INT64_MAX_U);
    CHECK(strstr(ev.last, "gpu0: Estimated stop copy size overflow: 0xffffffffffffffff") != NULL);
    unsigned warned = ev.warnings;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_OUT_OF_RANGE);
    CHECK_EQ(ev.warnings, warned); /* once per device and kind */

    /* Garbage: precopy sizes above INT64_MAX. */
    CHECK_EQ(swo_vfio_set_state(v, SWO_VFIO_STATE_PRE_COPY), SWO_OK);
    ctl->stop_copy_length = GIB;
    ctl->initial_bytes = UINT64_MAX;
    ctl->dirty_bytes = 1;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_OUT_OF_RANGE);
    z = sizes_of(v);
    CHECK_EQ(z.precopy_init_size, INT64_MAX_U);
    CHECK_EQ(z.precopy_dirty_size, 1);
    CHECK(strstr(ev.all, "gpu0: Estimated precopy init size overflow: 0xffffffffffffffff") != NULL);
    CHECK(strstr(ev.all, "\"kind\": \"precopy-exceeds-stop-copy\"") != NULL);
    /* ... and precopy larger than stop-copy leaves a stop-copy bucket of 0. */
    CHECK_EQ(swo_query_pending(s, false, &p), SWO_OK);
    CHECK_EQ(p.stopcopy_bytes, 0);
    CHECK_EQ(p.precopy_bytes, INT64_MAX_U + 1);

    /* Faults: the stop-copy ioctl fails -> 100 GiB; the precopy ioctl fails -> 0. */
    ctl->initial_bytes = 0;
    ctl->dirty_bytes = 0;
    ctl->stop_copy_errno = ENOTTY;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_IO);
    CHECK_EQ(sizes_of(v).stopcopy_size, UINT64_C(107374182400));
    CHECK(strstr(ev.last, "\"kind\": \"stop-copy-query-failed\"") != NULL);
    ctl->stop_copy_errno = 0;
    ctl->stop_copy_length = GIB;
    ctl->initial_bytes = 100 * MIB;
    CHECK_EQ(swo_vfio_refresh(v), SWO_OK);
    CHECK_EQ(sizes_of(v).precopy_init_size, 100 * MIB);
    ctl->precopy_errno = EINVAL;
    CHECK_EQ(swo_vfio_refresh(v), SWO_ERR_IO);
    z = sizes_of(v);
    CHECK_EQ(z.stopcopy_size, GIB);
    CHECK_EQ(z.precopy_init_size, 0);
    CHECK_EQ(z.precopy_dirty_size, 0);
    CHECK(strstr(ev.last, "\"kind\": \"precopy-query-failed\"") != NULL);
    ctl->precopy_errno = 0;

    /* After free no ioctl is issued for the device. */
    swo_vfio_free(v);
    unsigned f_calls = ctl->feature_calls, p_calls = ctl->precopy_calls;
    CHECK_EQ(swo_query_pending(s, true, &p), SWO_OK);
    CHECK_EQ(p.total_bytes, 0);
    CHECK_EQ(ctl->feature_calls, f_calls);
    CHECK_EQ(ctl->precopy_calls, p_calls);

    /* The library never sent a request the shim did not expect. */
    CHECK_EQ(ctl->bad_calls, 0);

    swo_session_free(s);
    close(dev_fd);
    close(data_fd);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("vfio ioctl shim: all checks passed\n");
    return 0;
}
