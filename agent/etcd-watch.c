/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Watches: a streaming POST /v3/watch driven by curl's multi interface. */

#include <errno.h>

#include "etcd-internal.h"

struct etcd_watch {
        etcd *e;
};

int etcd_watch_new(etcd *e, const char *prefix, int64_t start_revision, etcd_watch **ret) {
        return -EOPNOTSUPP;
}
etcd_watch *etcd_watch_free(etcd_watch *w) {
        return NULL;
}
int etcd_watch_next(etcd_watch *w, int timeout_ms, struct pollfd *extra, size_t nextra, etcd_event **ret_events) {
        return -EOPNOTSUPP;
}
bool etcd_watch_connected(const etcd_watch *w) {
        return false;
}
void etcd_events_free(etcd_event *ev, size_t n) {
}
