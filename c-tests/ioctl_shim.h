/* The control block of ioctl_shim.c, an LD_PRELOAD module that stands in for a VFIO driver.
 * A test finds the block with dlsym(RTLD_DEFAULT, "ioctl_shim_control"), names the two fds
 * the shim answers for, scripts the answers, and reads back what the library sent.
 * Every other fd goes to the real ioctl. */
#ifndef IOCTL_SHIM_H
#define IOCTL_SHIM_H

#include <stdint.h>

/* What the shim expects from the library (include/uapi/linux/vfio.h). */
#define SHIM_VFIO_DEVICE_FEATURE 0x3b75u          /* _IO(';', 100 + 17) */
#define SHIM_VFIO_MIG_GET_PRECOPY_INFO 0x3b79u    /* _IO(';', 100 + 21) */
#define SHIM_FEATURE_GET_MIG_DATA_SIZE 0x10009u   /* GET (1 << 16) | MIG_DATA_SIZE (9) */
#define SHIM_FEATURE_ARGSZ 16u                    /* vfio_device_feature + mig_data_size */
#define SHIM_PRECOPY_ARGSZ 24u                    /* sizeof(struct vfio_precopy_info) */

struct ioctl_shim_control {
    int device_fd;               /* answered as the VFIO device fd; -1 = none */
    int data_fd;                 /* answered as the migration data fd; -1 = none */

    /* Scripted answers (sticky until changed). errno 0 = success. */
    int stop_copy_errno;
    uint64_t stop_copy_length;
    int precopy_errno;
    uint64_t initial_bytes;
    uint64_t dirty_bytes;
    uint32_t precopy_flags_out;  /* written back into vfio_precopy_info.flags (garbage) */

    /* What the library sent. */
    unsigned feature_calls;
    unsigned precopy_calls;
    unsigned bad_calls;          /* wrong request, argsz or flags: answered EINVAL */
    unsigned long last_request;
    uint32_t last_argsz;
    uint32_t last_flags;
};

#endif
