/* The smallest use of the pending-data registry: a RAM-like handler and a device with
 * stop-copy state report their buckets; the library sums them and keeps the system-wide
 * remaining. Build: cc two_handlers.c $(pkg-config --cflags --libs switchover) */
#include <inttypes.h>
#include <stdio.h>
#include <switchover.h>

struct ram { uint64_t dirty_bytes; };
struct device { uint64_t precopy_bytes, stopcopy_bytes; };

static void ram_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    const struct ram *ram = opaque;
    (void)exact; (void)final;
    p->precopy_bytes += ram->dirty_bytes;
}

static void device_pending(void *opaque, SwoPending *p, bool exact, bool final)
{
    const struct device *dev = opaque;
    (void)exact; (void)final;
    p->precopy_bytes += dev->precopy_bytes;
    p->stopcopy_bytes += dev->stopcopy_bytes;
}

static int fail(const char *what, SwoStatus st)
{
    char msg[256];
    size_t len;
    if (swo_last_error_message(msg, sizeof msg, &len) != SWO_OK)
        msg[0] = '\0';
    fprintf(stderr, "%s: %s: %s\n", what, swo_status_name(st), msg);
    return 1;
}

int main(void)
{
    struct ram ram = { .dirty_bytes = 512u << 20 };
    struct device gpu = { .precopy_bytes = 64u << 20, .stopcopy_bytes = 1910ull << 20 };
    const SwoHandlerOps ram_ops = { sizeof ram_ops, 0, ram_pending, NULL };
    const SwoHandlerOps gpu_ops = { sizeof gpu_ops, SWO_HANDLER_NO_POSTCOPY, device_pending, NULL };
    SwoSession *s = NULL;
    uint64_t ram_id, gpu_id;
    SwoPending p;
    SwoStatus st;
    char size[32];

    printf("switchover %s\n", swo_version());
    if ((st = swo_session_new(&s)) != SWO_OK)
        return fail("swo_session_new", st);
    if ((st = swo_register_handler(s, "ram", 0, &ram_ops, &ram, &ram_id)) != SWO_OK ||
        (st = swo_register_handler(s, "0000:3b:00.0/vfio", 0, &gpu_ops, &gpu, &gpu_id)) != SWO_OK) {
        swo_session_free(s);
        return fail("swo_register_handler", st);
    }
    if ((st = swo_query_pending(s, true, &p)) != SWO_OK) {
        swo_session_free(s);
        return fail("swo_query_pending", st);
    }
    printf("precopy  %" PRIu64 " bytes\n", p.precopy_bytes);
    printf("stopcopy %" PRIu64 " bytes\n", p.stopcopy_bytes);
    printf("postcopy %" PRIu64 " bytes\n", p.postcopy_bytes);
    swo_size_to_str(p.total_bytes, size, sizeof size);
    printf("remaining %" PRIu64 " bytes (%s)\n", p.total_bytes, size);
    swo_unregister_handler(s, gpu_id);
    swo_unregister_handler(s, ram_id);
    swo_session_free(s);
    return 0;
}
