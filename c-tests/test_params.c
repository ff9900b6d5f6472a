/* Parameters, capabilities, size parsing and formatting through the public header
 * (docs/qemu-model.md §Parameters and the <size> paragraph of §HMP). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

static void check_message(const char *want, int line)
{
    const char *got = last_message();
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "test_params.c:%d: message \"%s\", want \"%s\"\n", line, got, want);
        failures++;
    }
}
#define CHECK_MESSAGE(want) check_message((want), __LINE__)

/* ---- size_to_str ---------------------------------------------------------------------- */

static void check_size_text(uint64_t value, const char *want)
{
    char buf[32];
    size_t n = swo_size_to_str(value, buf, sizeof buf);
    if (n != strlen(want) || strcmp(buf, want) != 0) {
        fprintf(stderr, "swo_size_to_str(%" PRIu64 ") = \"%s\" (%zu), want \"%s\"\n", value,
                buf, n, want);
        failures++;
    }
}

/* An independent statement of QEMU's rule: the largest binary unit u for which
 * value * 1024 / 1000 >= 1024^u, then printf's %0.3g of value / 1024^u. */
static void reference_size_text(uint64_t value, char *out, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double scaled = (double)value / (1000.0 / 1024.0);
    int u = 0;
    while (u < 6 && scaled >= (double)(1ULL << (10 * (u + 1))))
        u++;
    snprintf(out, len, "%0.3g %s", (double)value / (double)(1ULL << (10 * u)), units[u]);
}

static void test_size_to_str(void)
{
    check_size_text(0, "0 B");
    check_size_text(999, "999 B");
    check_size_text(1000, "0.977 KiB");
    check_size_text(4096, "4 KiB");
    check_size_text(104857600, "100 MiB");
    check_size_text(123456789, "118 MiB");
    check_size_text(1460288880, "1.36 GiB");
    check_size_text(1610612736, "1.5 GiB");
    check_size_text(UINT64_MAX, "16 EiB");

    /* Against the reference: unit boundaries (125 * 2^(10u - 7) is where value * 1.024 reaches
     * 1024^u), powers of two and their neighbours, and pseudo-random values. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 20000; i++) {
        uint64_t v;
        if (i < 64 * 3) {
            uint64_t p = 1ULL << (i / 3);
            v = p + (uint64_t)(i % 3) - 1;
        } else if (i < 64 * 3 + 6 * 5) {
            int k = (i - 64 * 3) / 5 + 1;
            v = (125ULL << (10 * k - 7)) + (uint64_t)((i - 64 * 3) % 5) - 2;
        } else {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            v = x >> (x % 64);
        }
        char want[32], got[32];
        reference_size_text(v, want, sizeof want);
        size_t n = swo_size_to_str(v, got, sizeof got);
        if (n != strlen(want) || strcmp(got, want) != 0) {
            fprintf(stderr, "swo_size_to_str(%" PRIu64 ") = \"%s\", reference \"%s\"\n", v, got,
                    want);
            failures++;
            break;
        }
    }

    /* Size query and short buffers: the length comes back, nothing is written. */
    CHECK(swo_size_to_str(1000, NULL, 0) == strlen("0.977 KiB"));
    char small[9];
    memset(small, '#', sizeof small);
    CHECK(swo_size_to_str(1000, small, sizeof small) == 9); /* needs 10 with the NUL */
    CHECK(small[0] == '#' && small[8] == '#');
    char exact[10];
    CHECK(swo_size_to_str(1000, exact, sizeof exact) == 9);
    CHECK(strcmp(exact, "0.977 KiB") == 0);
}

/* ---- parse_size ----------------------------------------------------------------------- */

static void check_parse(const char *text, uint64_t want)
{
    uint64_t out = 0;
    SwoStatus st = swo_parse_size(text, 'M', &out);
    if (st != SWO_OK || out != want) {
        fprintf(stderr, "swo_parse_size(\"%s\") = %s, %" PRIu64 "; want %" PRIu64 " (%s)\n",
                text, swo_status_name(st), out, want, last_message());
        failures++;
    }
}

static void check_parse_refused(const char *text, SwoStatus want)
{
    uint64_t out = 12345;
    char message[128];
    snprintf(message, sizeof message, "Invalid size %s", text);
    CHECK_STATUS(swo_parse_size(text, 'M', &out), want);
    CHECK_MESSAGE(message);
    CHECK(out == 12345); /* untouched on failure */
}

static void test_parse_size(void)
{
    check_parse("100", 104857600);
    check_parse("1.5", 1572864);
    check_parse("1.5G", 1610612736);
    check_parse("100B", 100);
    check_parse("1k", 1024);
    check_parse("0x10", 16ULL << 20);

    uint64_t out = 0;
    CHECK_STATUS(swo_parse_size("100", 'B', &out), SWO_OK);
    CHECK(out == 100);
    CHECK_STATUS(swo_parse_size("100", 'k', &out), SWO_OK);
    CHECK(out == 102400);

    check_parse_refused("1KiB", SWO_ERR_PARSE);
    check_parse_refused("1 M", SWO_ERR_PARSE);
    check_parse_refused("10MB", SWO_ERR_PARSE);
    check_parse_refused("1.5B", SWO_ERR_PARSE);
    check_parse_refused("0x1.5", SWO_ERR_PARSE);
    check_parse_refused("", SWO_ERR_PARSE);
    check_parse_refused("-1", SWO_ERR_OUT_OF_RANGE);
    check_parse_refused("18446744073709551616B", SWO_ERR_OUT_OF_RANGE);
    check_parse_refused("16E", SWO_ERR_OUT_OF_RANGE);
    check_parse_refused("9223372036854775808B", SWO_ERR_OUT_OF_RANGE); /* INT64_MAX + 1 */
    CHECK_STATUS(swo_parse_size("9223372036854775807B", 'M', &out), SWO_OK);
    CHECK(out == 9223372036854775807ULL);

    CHECK_STATUS(swo_parse_size("1", 'X', &out), SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_parse_size("1", '\0', &out), SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_parse_size(NULL, 'M', &out), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_parse_size("1", 'M', NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_parse_size("1\xff", 'M', &out), SWO_ERR_INVALID_ARG);
}

/* ---- parameters and capabilities on a session ----------------------------------------- */

/* Reads query-migrate-parameters into buf; returns its status. */
static SwoStatus query_params(SwoSession *s, char *buf, size_t len)
{
    size_t out_len = 0;
    return swo_query_parameters_json(s, buf, len, &out_len);
}

static void test_parameters(SwoSession *s)
{
    char before[1024], after[1024];
    CHECK_STATUS(query_params(s, before, sizeof before), SWO_OK);
    CHECK(strstr(before, "\"downtime-limit\": 300") != NULL);
    CHECK(strstr(before, "\"max-bandwidth\": 134217728") != NULL);

    /* HMP: downtime-limit 2000001 refused with QEMU's message, nothing changes. */
    CHECK_STATUS(swo_set_parameter(s, "downtime-limit", "2000001"), SWO_ERR_OUT_OF_RANGE);
    CHECK_MESSAGE("Parameter 'downtime_limit' expects an integer in the range of 0 to "
                  "(2000 * 1000) ms");
    CHECK_STATUS(swo_set_parameter(s, "max-bandwidth", "10MB"), SWO_ERR_PARSE);
    CHECK_MESSAGE("Invalid size 10MB");
    CHECK_STATUS(query_params(s, after, sizeof after), SWO_OK);
    CHECK(strcmp(before, after) == 0);

    /* QMP: the same bound, and one bad member changes nothing. */
    CHECK_STATUS(swo_set_parameters_json(s, "{\"downtime-limit\": 2000001}"),
                 SWO_ERR_OUT_OF_RANGE);
    CHECK_MESSAGE("Parameter 'downtime_limit' expects an integer in the range of 0 to "
                  "(2000 * 1000) ms");
    CHECK_STATUS(swo_set_parameters_json(s, "{\"max-bandwidth\": 1000, \"bogus\": 1}"),
                 SWO_ERR_NOT_FOUND);
    CHECK_MESSAGE("Parameter 'bogus' is unexpected");
    CHECK_STATUS(swo_set_parameters_json(s, "{\"max-bandwidth\": 1000, \"downtime-limit\": \"1\"}"),
                 SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_set_parameters_json(s, "[1, 2]"), SWO_ERR_PARSE);
    CHECK_STATUS(query_params(s, after, sizeof after), SWO_OK);
    CHECK(strcmp(before, after) == 0);

    /* Good calls. */
    CHECK_STATUS(swo_set_parameter(s, "max-bandwidth", "100"), SWO_OK);
    CHECK_STATUS(swo_set_parameters_json(s, "{\"downtime-limit\": 2000000}"), SWO_OK);
    CHECK_STATUS(query_params(s, after, sizeof after), SWO_OK);
    CHECK(strstr(after, "\"max-bandwidth\": 104857600") != NULL);
    CHECK(strstr(after, "\"downtime-limit\": 2000000") != NULL);

    /* Unknown names, NULLs, bad UTF-8. */
    CHECK_STATUS(swo_set_parameter(s, "no-such-parameter", "1"), SWO_ERR_NOT_FOUND);
    CHECK_STATUS(swo_set_parameter(NULL, "downtime-limit", "1"), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_set_parameter(s, NULL, "1"), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_set_parameter(s, "downtime-limit", NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_set_parameter(s, "downtime-limit\xc3", "1"), SWO_ERR_INVALID_ARG);
    CHECK_STATUS(swo_set_parameters_json(NULL, "{}"), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_set_parameters_json(s, NULL), SWO_ERR_NULL_ARG);

    /* String-out convention: size query, short buffer left untouched, NULL out_len. */
    size_t needed = 0;
    CHECK_STATUS(swo_query_parameters_json(s, NULL, 0, &needed), SWO_OK);
    CHECK(needed == strlen(after));
    char small[8];
    memset(small, '#', sizeof small);
    size_t reported = 0;
    CHECK_STATUS(swo_query_parameters_json(s, small, sizeof small, &reported),
                 SWO_ERR_BUFFER_TOO_SMALL);
    CHECK(reported == needed);
    CHECK(small[0] == '#' && small[7] == '#');
    CHECK_STATUS(swo_query_parameters_json(s, after, sizeof after, NULL), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_query_parameters_json(NULL, after, sizeof after, &reported),
                 SWO_ERR_NULL_ARG);
}

static void test_capabilities(SwoSession *s)
{
    char buf[512];
    size_t len = 0;
    CHECK_STATUS(swo_query_capabilities_json(s, buf, sizeof buf, &len), SWO_OK);
    CHECK(strstr(buf, "{\"capability\": \"events\", \"state\": false}") != NULL);
    CHECK(len == strlen(buf));

    CHECK_STATUS(swo_set_capability(s, "events", true), SWO_OK);
    CHECK_STATUS(swo_set_capability(s, "switchover-ack", true), SWO_OK);
    CHECK_STATUS(swo_query_capabilities_json(s, buf, sizeof buf, &len), SWO_OK);
    CHECK(strstr(buf, "{\"capability\": \"events\", \"state\": true}") != NULL);
    CHECK(strstr(buf, "{\"capability\": \"switchover-ack\", \"state\": true}") != NULL);
    CHECK(strstr(buf, "{\"capability\": \"postcopy-ram\", \"state\": false}") != NULL);

    CHECK_STATUS(swo_set_capability(s, "xbzrle", true), SWO_ERR_NOT_FOUND);
    CHECK_MESSAGE("Parameter 'capability' does not accept value 'xbzrle'");
    CHECK_STATUS(swo_set_capability(NULL, "events", true), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_set_capability(s, NULL, true), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_set_capability(s, "\xff", true), SWO_ERR_INVALID_ARG);

    size_t needed = 0;
    CHECK_STATUS(swo_query_capabilities_json(s, NULL, 0, &needed), SWO_OK);
    CHECK(needed == len);
    char small[4] = { '#', '#', '#', '#' };
    CHECK_STATUS(swo_query_capabilities_json(s, small, sizeof small, &needed),
                 SWO_ERR_BUFFER_TOO_SMALL);
    CHECK(small[0] == '#');
    CHECK_STATUS(swo_query_capabilities_json(NULL, buf, sizeof buf, &len), SWO_ERR_NULL_ARG);
    CHECK_STATUS(swo_query_capabilities_json(s, buf, sizeof buf, NULL), SWO_ERR_NULL_ARG);
}

int main(void)
{
    test_size_to_str();
    test_parse_size();

    SwoSession *s = NULL;
    SwoStatus st = swo_session_new(&s);
    if (st != SWO_OK) {
        fprintf(stderr, "swo_session_new: %s\n", swo_status_name(st));
        return 1;
    }
    test_parameters(s);
    test_capabilities(s);
    swo_session_free(s);

    if (failures) {
        fprintf(stderr, "test_params: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_params: ok\n");
    return 0;
}
