/* bench_pending's third baseline for swo_record_transferred: the same relaxed add behind a call
 * into a shared library (this file is built as one), shaped like the export: handle -> session
 * pointer, NULL and channel checks, then the add. What a call from a program into any shared
 * library costs next to an inline add shows as the ratio between this and the inline C add;
 * the library's own work as the ratio between swo_record_transferred and this. */
#include "bench_call.h"

SwoStatus bench_plain_record(struct bench_plain_session *s, uint32_t channel, uint64_t bytes)
{
    if (!s)
        return SWO_ERR_NULL_ARG;
    if (channel > SWO_CHANNEL_MULTIFD)
        return SWO_ERR_INVALID_ARG;
    atomic_fetch_add_explicit(s->counter, bytes, memory_order_relaxed);
    return SWO_OK;
}
