/* A device reports what it still has to send; the library sums every device's buckets.
 * Build: cc -std=c11 first_handler.c $(pkg-config --cflags --libs switchover) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <switchover.h>

struct my_vgpu { uint64_t precopy_bytes, stopcopy_bytes; };

static void my_vgpu_refresh_sizes(struct my_vgpu *dev)
{
    dev->stopcopy_bytes = 1910ull << 20;     /* a driver query in a real VMM */
}

static void vgpu_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    struct my_vgpu *dev = opaque;
    (void)final;
    if (exact)
        my_vgpu_refresh_sizes(dev);          /* the expensive, synchronised figure */
    p->precopy_bytes  += dev->precopy_bytes; /* ADD into the buckets */
    p->stopcopy_bytes += dev->stopcopy_bytes;
}

int main(void)
{
    struct my_vgpu dev = { .precopy_bytes = 64u << 20, .stopcopy_bytes = 0 };
    const SwoHandlerOps ops = { .struct_size = sizeof ops, .flags = SWO_HANDLER_NO_POSTCOPY,
                                .save_query_pending = vgpu_pending };
    SwoSession *s;
    SwoPending p;
    uint64_t id;

    if (swo_session_new(&s) != SWO_OK)
        abort();
    if (swo_register_handler(s, "0000:3b:00.0/vfio", 0, &ops, &dev, &id) != SWO_OK ||
        swo_set_parameter(s, "downtime-limit", "2000") != SWO_OK ||
        swo_query_pending(s, true, &p) != SWO_OK)  /* exact: refreshes the vGPU's size */
        abort();
    printf("remaining %" PRIu64 " bytes: precopy %" PRIu64 ", stop-copy %" PRIu64 "\n",
           p.total_bytes, p.precopy_bytes, p.stopcopy_bytes);
    swo_unregister_handler(s, id);           /* returns once no callback can run: free dev now */
    swo_session_free(s);
    return 0;
}
