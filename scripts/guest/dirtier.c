/*
 * The guest workload of the real-migration tests (scripts/guest-image.sh puts it in the
 * initramfs as /bin/dirtier; /init runs it with the kernel command line's parameters as
 * environment variables).
 *
 *   swo_fill_mib     MiB filled once with non-zero bytes (default 512): pages QEMU must send
 *                    in full, not as zero pages
 *   swo_region_mib   MiB the dirtying loop writes over (default 256; the first MiB of the
 *                    filled area when it fits inside it)
 *   swo_dirty_mib_s  MiB/s of pages dirtied (default 0: idle after the fill); one byte is
 *                    written per 4 KiB page, so a page written is a page dirtied
 *   swo_pattern      sequential (default): page 0, 1, 2, ... of the region, wrapping; the whole
 *                    region is dirty again every region / rate seconds.
 *                    uniform: pages drawn uniformly at random from the region; after w writes
 *                    a region of P pages has P * (1 - exp(-w / P)) distinct dirty pages.
 *                    hotspot: a swo_hot_share (percent, default 90) of the writes go uniformly
 *                    to the first swo_hot_mib MiB (default region / 10), the rest uniformly to
 *                    the whole region.
 *
 * Prints to the console (the tests read the serial log):
 *   "SWO-READY fill_mib=.. region_mib=.. dirty_mib_s=.. pattern=.." once the fill is done and
 *   the dirtying starts;
 *   "SWO-STAT t=<s since ready> writes=<pages written since ready>" every 5 s, so the rate the
 *   guest really achieved (a TCG guest may fall behind) can be measured.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL
#define MIB (1024UL * 1024UL)

static unsigned long env_ul(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long n;
    if (!v || !*v)
        return dflt;
    n = strtoul(v, &end, 10);
    if (*end) {
        printf("SWO-ERROR %s=%s is not a whole number; using %lu\n", name, v, dflt);
        return dflt;
    }
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t next_random(void)
{
    /* xorshift64*: fast and good enough to spread writes over pages */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

enum pattern { SEQUENTIAL, UNIFORM, HOTSPOT };

int main(void)
{
    unsigned long fill_mib = env_ul("swo_fill_mib", 512);
    unsigned long region_mib = env_ul("swo_region_mib", 256);
    unsigned long rate_mib_s = env_ul("swo_dirty_mib_s", 0);
    unsigned long hot_share = env_ul("swo_hot_share", 90);
    unsigned long hot_mib = env_ul("swo_hot_mib", region_mib / 10 ? region_mib / 10 : 1);
    const char *pattern_name = getenv("swo_pattern");
    enum pattern pattern = SEQUENTIAL;
    unsigned long size_mib, region_pages, hot_pages, pos = 0;
    unsigned char *mem;
    uint64_t writes = 0;
    double start, next_stat;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!pattern_name || !*pattern_name)
        pattern_name = "sequential";
    if (!strcmp(pattern_name, "uniform")) {
        pattern = UNIFORM;
    } else if (!strcmp(pattern_name, "hotspot")) {
        pattern = HOTSPOT;
    } else if (strcmp(pattern_name, "sequential")) {
        printf("SWO-ERROR swo_pattern=%s is not sequential, uniform or hotspot\n", pattern_name);
        pattern_name = "sequential";
    }
    if (hot_share > 100)
        hot_share = 100;
    if (hot_mib > region_mib)
        hot_mib = region_mib;

    size_mib = fill_mib > region_mib ? fill_mib : region_mib;
    if (size_mib == 0)
        size_mib = 1;
    mem = mmap(NULL, size_mib * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        printf("SWO-ERROR cannot map %lu MiB\n", size_mib);
        return 1;
    }
    /* Non-zero and not all the same byte, so no page is a zero page. */
    for (unsigned long i = 0; i < fill_mib * MIB; i += 8)
        *(uint64_t *)(mem + i) = 0x0101010101010101ULL * (((i / PAGE) & 0x7f) + 1) + i;

    region_pages = region_mib * MIB / PAGE;
    hot_pages = hot_mib * MIB / PAGE;
    printf("SWO-READY fill_mib=%lu region_mib=%lu dirty_mib_s=%lu pattern=%s hot_share=%lu "
           "hot_mib=%lu\n",
           fill_mib, region_mib, rate_mib_s, pattern_name, hot_share, hot_mib);

    start = now_s();
    next_stat = start + 5.0;
    for (;;) {
        double t = now_s();
        if (t >= next_stat) {
            printf("SWO-STAT t=%.3f writes=%llu\n", t - start, (unsigned long long)writes);
            next_stat += 5.0;
        }
        if (rate_mib_s == 0 || region_pages == 0) {
            struct timespec idle = {1, 0};
            nanosleep(&idle, NULL);
            continue;
        }
        /* Catch up with the schedule: pages due = elapsed * rate; at most 10 ms of writes at
         * a time so the statistics lines keep coming even when the guest falls behind. */
        uint64_t due = (uint64_t)((t - start) * (double)rate_mib_s * (double)(MIB / PAGE));
        uint64_t burst = (uint64_t)rate_mib_s * (MIB / PAGE) / 100 + 1;
        uint64_t n = 0;
        while (writes < due && n < burst) {
            unsigned long page;
            switch (pattern) {
            case UNIFORM:
                page = next_random() % region_pages;
                break;
            case HOTSPOT:
                if (hot_pages && next_random() % 100 < hot_share)
                    page = next_random() % hot_pages;
                else
                    page = next_random() % region_pages;
                break;
            default:
                page = pos;
                pos = pos + 1 == region_pages ? 0 : pos + 1;
            }
            mem[page * PAGE + (writes % 64)] += 1 + (writes & 1);
            writes++;
            n++;
        }
        if (writes >= due) {
            struct timespec nap = {0, 1000000};
            nanosleep(&nap, NULL);
        }
    }
}
