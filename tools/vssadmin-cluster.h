/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* `vssadmin cluster ...`: the cluster requester (issue 16). vssadmin-cluster.c reads the command
 * line and lists; vssadmin-cluster-create.c coordinates a cluster set. */

#include <stdbool.h>
#include <json-c/json.h>

#include "agent/cluster.h"

#include "tools/vssadmin-usage.h"

/* argv[0] is "cluster". Returns the exit status (0, 1 failed, 2 usage). */
int vssadmin_cluster(int argc, char *argv[]);

typedef struct ClusterFor {
        char *host;
        char *path;
} ClusterFor;

typedef struct ClusterArgs {
        ClusterEtcdArgs etcd;
        const char *cluster;
        ClusterFor fors[CLUSTER_MAX_HOSTS];
        size_t n_fors;
        const char *job;
        const char *set;
        int64_t lease_ttl_s;
        uint32_t prepared_s, ready_s, complete_s, frozen_margin_ms;
        bool json;
} ClusterArgs;

int cluster_create_shadow(const ClusterArgs *args);

/* Shared by the two files. */
int cluster_fail(const ClusterArgs *args, int32_t hr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writer status objects (JSON, as `vssadmin list writers --json`) as the local text layout. */
void cluster_print_writers(json_object *writers, const char *indent);
