/* An LD_PRELOAD module that interposes ioctl() and plays a VFIO driver for the two fds named
 * in its control block (see ioctl_shim.h): it checks the request number, argsz and flags
 * the library sends, and answers with scripted sizes, errors and garbage. */
#define _GNU_SOURCE
#include "ioctl_shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>

__attribute__((visibility("default")))
struct ioctl_shim_control ioctl_shim_control = { .device_fd = -1, .data_fd = -1 };

typedef int (*ioctl_fn)(int, unsigned long, ...);

static int real_ioctl(int fd, unsigned long request, void *arg)
{
    static ioctl_fn real;
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "ioctl");
        if (!sym) {
            errno = ENOSYS;
            return -1;
        }
        memcpy(&real, &sym, sizeof real);
    }
    return real(fd, request, arg);
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* Notes what the library sent: the request and the uAPI header (argsz, flags). */
static void record(struct ioctl_shim_control *c, unsigned long request, const unsigned char *arg,
                   uint32_t *argsz, uint32_t *flags)
{
    memcpy(argsz, arg, 4);
    memcpy(flags, arg + 4, 4);
    c->last_request = request;
    c->last_argsz = *argsz;
    c->last_flags = *flags;
}

static int answer_feature(struct ioctl_shim_control *c, unsigned long request, unsigned char *arg)
{
    uint32_t argsz, flags;
    record(c, request, arg, &argsz, &flags);
    if (request != SHIM_VFIO_DEVICE_FEATURE || argsz != SHIM_FEATURE_ARGSZ
        || flags != SHIM_FEATURE_GET_MIG_DATA_SIZE) {
        c->bad_calls++;
        return fail(EINVAL);
    }
    c->feature_calls++;
    if (c->stop_copy_errno) {
        return fail(c->stop_copy_errno);
    }
    memcpy(arg + 8, &c->stop_copy_length, 8);
    return 0;
}

static int answer_precopy(struct ioctl_shim_control *c, unsigned long request, unsigned char *arg)
{
    uint32_t argsz, flags;
    record(c, request, arg, &argsz, &flags);
    if (request != SHIM_VFIO_MIG_GET_PRECOPY_INFO || argsz != SHIM_PRECOPY_ARGSZ || flags != 0) {
        c->bad_calls++;
        return fail(EINVAL);
    }
    c->precopy_calls++;
    if (c->precopy_errno) {
        return fail(c->precopy_errno);
    }
    memcpy(arg + 4, &c->precopy_flags_out, 4);
    memcpy(arg + 8, &c->initial_bytes, 8);
    memcpy(arg + 16, &c->dirty_bytes, 8);
    return 0;
}

__attribute__((visibility("default")))
int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);

    struct ioctl_shim_control *c = &ioctl_shim_control;
    if (fd >= 0 && fd == c->device_fd) {
        return arg ? answer_feature(c, request, arg) : fail(EFAULT);
    }
    if (fd >= 0 && fd == c->data_fd) {
        return arg ? answer_precopy(c, request, arg) : fail(EFAULT);
    }
    return real_ioctl(fd, request, arg);
}
