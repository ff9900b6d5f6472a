/* Checks shared by the C tests: count failures (from any thread), report where and why, and
 * never stop at the first one. Include after <switchover.h>. */
#ifndef SWO_C_TESTS_CHECK_H
#define SWO_C_TESTS_CHECK_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__,     \
                    __func__, #cond);                                                \
            failures++;                                                              \
        }                                                                            \
    } while (0)

/* The calling thread's last error message (a per-thread buffer; test use only). */
static inline const char *last_message(void)
{
    static _Thread_local char msg[1024];
    size_t len;
    if (swo_last_error_message(msg, sizeof msg, &len) != SWO_OK)
        strcpy(msg, "(message does not fit)");
    return msg;
}

/* Checks a status code and, on a mismatch, prints both names and the thread's message. */
#define CHECK_STATUS(call, want)                                                     \
    do {                                                                             \
        SwoStatus got_ = (call);                                                     \
        if (got_ != (SwoStatus)(want)) {                                             \
            fprintf(stderr, "%s:%d: %s: %s returned %s, expected %s (%s)\n",         \
                    __FILE__, __LINE__, __func__, #call, swo_status_name(got_),      \
                    swo_status_name(want), last_message());                          \
            failures++;                                                              \
        }                                                                            \
    } while (0)

#define OK(call) CHECK_STATUS(call, SWO_OK)

#define CHECK_EQ(got, want)                                                          \
    do {                                                                             \
        uint64_t g_ = (uint64_t)(got), w_ = (uint64_t)(want);                        \
        if (g_ != w_) {                                                              \
            fprintf(stderr, "%s:%d: %s: %s is %" PRIu64 ", expected %s = %" PRIu64 "\n", \
                    __FILE__, __LINE__, __func__, #got, g_, #want, w_);              \
            failures++;                                                              \
        }                                                                            \
    } while (0)

/* main's return value: 0 when every check passed, with a one-line summary either way. */
static inline int check_summary(const char *test)
{
    int n = atomic_load(&failures);
    if (n)
        fprintf(stderr, "%s: %d check(s) failed\n", test, n);
    else
        printf("%s: all checks passed\n", test);
    return n ? 1 : 0;
}

#endif
