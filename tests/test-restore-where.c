/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where vssbackup restore puts a component's files: the writer's restore method and target. */

#include <errno.h>
#include <stdlib.h>

#include "lib/common.h"
#include "tests/check.h"
#include "tools/restore-where.h"

int test_failures;

static void test_targets(void) {
        vss_file_mapping alt = { .path = "/srv/db", .filespec = "*", .recursive = true, .destination = "/srv/alt" };
        vss_writer_metadata wm = { .restore_method = VSS_RME_RESTORE_TO_ALTERNATE_LOCATION,
                                   .n_alternate_mappings = 1, .alternate_mappings = &alt };
        char *to = NULL;
        /* The method asks for the alternate location... */
        CHECK(restore_destination(&wm, NULL, VSS_RT_ORIGINAL, "/srv/db", &to) == 0 && to && streq(to, "/srv/alt"));
        free(to);
        /* ...unless the writer says ORIGINAL_LOCATION in PreRestore (VSS_RESTORE_TARGET). */
        CHECK(restore_destination(&wm, NULL, VSS_RT_ORIGINAL_LOCATION, "/srv/db", &to) == 0 && !to);
        /* A method restoring in place goes to the alternate location when the writer says ALTERNATE. */
        wm.restore_method = VSS_RME_RESTORE_IF_CAN_REPLACE;
        CHECK(restore_destination(&wm, NULL, VSS_RT_ORIGINAL, "/srv/db/x", &to) == 0 && !to);
        CHECK(restore_destination(&wm, NULL, VSS_RT_ALTERNATE, "/srv/db/x", &to) == 0 && to && streq(to, "/srv/alt/x"));
        free(to);
        /* VSS: ALTERNATE asked for (by the target, or by the method) and nothing maps the path: the
         * writer's error, not a restore in place. */
        to = NULL;
        CHECK(restore_destination(&wm, NULL, VSS_RT_ALTERNATE, "/srv/web", &to) == -ENXIO && !to);
        wm.restore_method = VSS_RME_RESTORE_TO_ALTERNATE_LOCATION;
        CHECK(restore_destination(&wm, NULL, VSS_RT_ORIGINAL, "/srv/web", &to) == -ENXIO && !to);
        CHECK(restore_destination(&wm, NULL, VSS_RT_ORIGINAL_LOCATION, "/srv/web", &to) == 0 && !to);
}

int main(void) {
        test_targets();
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
