/* Names through functions and the version macros (DESIGN.md §ABI evolution; issue 10 items 2
 * and 5): every enum the library returns has a swo_*_name giving a static string for each
 * value and "unknown" for any other number; SWITCHOVER_VERSION_MAJOR/MINOR/PATCH (from
 * Cargo.toml, the one place the version is declared) agree with swo_version(). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <switchover.h>

#include "check.h"

#define STR2(x) #x
#define STR(x) STR2(x)

static void test_version_macros_equal_swo_version(void)
{
    const char *v = swo_version();
    char from_macros[32];
    snprintf(from_macros, sizeof from_macros, "%d.%d.%d", SWITCHOVER_VERSION_MAJOR,
             SWITCHOVER_VERSION_MINOR, SWITCHOVER_VERSION_PATCH);
    CHECK(v != NULL);
    if (v)
        CHECK(strcmp(v, from_macros) == 0);
    /* Usable by the preprocessor, as a program checks what it builds against. */
#if SWITCHOVER_VERSION_MAJOR != 0 || SWITCHOVER_VERSION_MINOR < 2
#error "this test is for the 0.x series from 0.2 on"
#endif
    CHECK(strcmp(STR(SWITCHOVER_VERSION_MAJOR) "." STR(SWITCHOVER_VERSION_MINOR) "."
                 STR(SWITCHOVER_VERSION_PATCH), from_macros) == 0);
}

/* Each name for its value, "unknown" for the first number past the last value and for
 * UINT32_MAX, and the same pointer on every call (a static string). */
static void check_names(const char *what, const char *(*name)(uint32_t),
                        const uint32_t *values, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = name(values[i]);
        if (!got || strcmp(got, names[i]) != 0) {
            fprintf(stderr, "%s(%u) is \"%s\", expected \"%s\"\n", what, values[i],
                    got ? got : "(null)", names[i]);
            failures++;
        }
        CHECK(name(values[i]) == got);
    }
    const uint32_t unknown[] = { (uint32_t)n, 1000, UINT32_MAX };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *got = name(unknown[i]);
        if (!got || strcmp(got, "unknown") != 0) {
            fprintf(stderr, "%s(%u) is \"%s\", expected \"unknown\"\n", what, unknown[i],
                    got ? got : "(null)");
            failures++;
        }
    }
}

/* QEMU's MigrationStatus spellings (qapi/migration.json), as query-migrate shows them. */
static void test_migration_status_names(void)
{
    static const uint32_t v[] = {
        SWO_STATUS_NONE, SWO_STATUS_SETUP, SWO_STATUS_ACTIVE, SWO_STATUS_PRE_SWITCHOVER,
        SWO_STATUS_DEVICE, SWO_STATUS_POSTCOPY_ACTIVE, SWO_STATUS_COMPLETED,
        SWO_STATUS_CANCELLING, SWO_STATUS_CANCELLED, SWO_STATUS_FAILED,
    };
    static const char *const names[] = {
        "none", "setup", "active", "pre-switchover", "device", "postcopy-active",
        "completed", "cancelling", "cancelled", "failed",
    };
    _Static_assert(sizeof v / sizeof v[0] == sizeof names / sizeof names[0], "one name each");
    check_names("swo_migration_status_name", swo_migration_status_name, v, names, 10);
}

static void test_action_names(void)
{
    static const uint32_t v[] = {
        SWO_ACTION_ITERATE, SWO_ACTION_SWITCHOVER, SWO_ACTION_START_POSTCOPY,
        SWO_ACTION_COMPLETE, SWO_ACTION_WAIT,
    };
    static const char *const names[] = {
        "iterate", "switchover", "start-postcopy", "complete", "wait",
    };
    check_names("swo_action_name", swo_action_name, v, names, 5);
}

/* QEMU's mig_state_to_str (hw/vfio/migration.c) for the uAPI enum vfio_device_mig_state. */
static void test_vfio_state_names(void)
{
    static const uint32_t v[] = {
        SWO_VFIO_STATE_ERROR, SWO_VFIO_STATE_STOP, SWO_VFIO_STATE_RUNNING,
        SWO_VFIO_STATE_STOP_COPY, SWO_VFIO_STATE_RESUMING, SWO_VFIO_STATE_RUNNING_P2P,
        SWO_VFIO_STATE_PRE_COPY, SWO_VFIO_STATE_PRE_COPY_P2P,
    };
    static const char *const names[] = {
        "ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY",
        "PRE_COPY_P2P",
    };
    check_names("swo_vfio_state_name", swo_vfio_state_name, v, names, 8);
}

/* The values the library returns get their names: the status of a live session and the
 * action of a real step. */
static void test_names_of_returned_values(void)
{
    SwoSession *s = NULL;
    OK(swo_session_new(&s));
    CHECK(strcmp(swo_migration_status_name(swo_get_status(s)), "none") == 0);
    OK(swo_migration_start(s, 0));
    OK(swo_setup_done(s, 10));
    CHECK(strcmp(swo_migration_status_name(swo_get_status(s)), "active") == 0);
    SwoStep step = { .struct_size = sizeof step };
    OK(swo_iteration_step(s, 20, &step));
    /* No handler, nothing pending: precopy is 0, so the step switches over. */
    CHECK(strcmp(swo_action_name(step.action), "switchover") == 0);
    CHECK(strcmp(swo_status_name(swo_set_parameter(s, "no-such", "1")), "SWO_ERR_NOT_FOUND")
          == 0);
    swo_session_free(s);
}

int main(void)
{
    test_version_macros_equal_swo_version();
    test_migration_status_names();
    test_action_names();
    test_vfio_state_names();
    test_names_of_returned_values();
    return check_summary("test_abi_names");
}
