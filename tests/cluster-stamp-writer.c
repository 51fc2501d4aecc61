/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A trivial in-process libvss writer for the cluster benchmark: it does nothing at any event but
 * append "NAME EVENT NS" (CLOCK_MONOTONIC) to a file at Freeze, Thaw and Abort, so a host's part
 * costs no hook processes and the measured window is the protocol's, not the machine's fork rate.
 *   cluster-stamp-writer NAME SOCKET STAMPFILE */
#include <stdio.h>
#include <time.h>

#include <vss/writer.h>

static const char *path;

/* Opened at each event: the benchmark removes the file between sets. */
static bool stamp(vss_writer *w, const vss_event_info *info, void *userdata) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        FILE *out = fopen(path, "ae");
        if (!out)
                return true;
        fprintf(out, "%s %s %llu\n", (const char *) userdata, vss_event_name(info->event),
                (unsigned long long) ts.tv_sec * 1000000000ull + (unsigned long long) ts.tv_nsec);
        fclose(out);
        return true;
}

int main(int argc, char *argv[]) {
        if (argc != 4)
                return 2;
        path = argv[3];
        vss_writer_options o = { .name = argv[1] };
        vss_writer_callbacks cb = { .freeze = stamp, .thaw = stamp, .abort = stamp };
        vss_writer *w = NULL;
        if (vss_writer_new(&o, &cb, argv[1], &w) < 0)
                return 1;
        int r = vss_writer_main(w, argv[2], "cluster-stamp-writer");
        vss_writer_free(w);
        return r;
}
