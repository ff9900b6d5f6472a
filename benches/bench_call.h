/* The shared-library baseline of bench_pending (bench_call.c). */
#ifndef BENCH_CALL_H
#define BENCH_CALL_H
#include <stdatomic.h>
#include <stdint.h>
#include <switchover.h>

struct bench_plain_session {
    atomic_uint_fast64_t *counter;
};

SwoStatus bench_plain_record(struct bench_plain_session *s, uint32_t channel, uint64_t bytes);
#endif
