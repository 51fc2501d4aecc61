/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between the two sides of a freeze lease (freeze.c, the parent; freeze-helper.c, the helper it
 * forks): the commands, the messages, the lease file the helper keeps. */

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "lib/basic/time-util.h"

#define NSEC_PER_MSEC INT64_C(1000000)
#define NSEC_PER_SEC INT64_C(1000000000)

/* Parent -> helper: one byte; CMD_FREEZE is followed by the deadline (int64_t, CLOCK_MONOTONIC
 * ns) in the same write, smaller than PIPE_BUF and so atomic. */
#define CMD_THAW 't'
#define CMD_FREEZE 'f'

/* Helper -> parent: one message once set up, one after freezing, one in reply to CMD_THAW. Smaller than PIPE_BUF,
 * so each write is atomic. */
enum {
        MSG_READY = 'r',         /* set up, the lease file locked: waiting for CMD_FREEZE */
        MSG_FROZEN = 'o',        /* everything is frozen */
        MSG_FREEZE_FAILED = 'f', /* error: errno of mounts[index]; what was frozen is thawed again */
        MSG_THAWED = 't',        /* thawed on command; error: first failed FITHAW, or 0 */
        MSG_EXPIRED = 'e',       /* the deadline had thawed everything before the command came */
        MSG_ARM_FAILED = 'a',    /* error: errno of taking or writing the lease file; nothing was frozen */
};

typedef struct HelperMsg {
        int32_t kind;
        int32_t error;
        uint32_t index;
} HelperMsg;

/* What the helper needs of its lease file: the fd it locks, the path it unlinks once it has
 * thawed, the line it writes before freezing. */
typedef struct LeaseFile {
        int fd; /* -1: no lease file */
        const char *path;
        char line[64];
} LeaseFile;

/* The helper's deadline arithmetic is signed: time left may be negative. */
static inline int64_t now_ns(void) {
        return (int64_t) now_monotonic_nsec();
}

/* FIFREEZE and FITHAW ignore their argument but are declared _IOWR(..., int): pass a real int, so
 * checkers such as valgrind do not see a NULL pointer. */
static inline int fs_ioctl(int fd, unsigned long request) {
        int unused = 0;

        return ioctl(fd, request, &unused);
}

/* The helper, in the child after fork(): never returns. keep has room for n + 3 fds. */
_Noreturn void freeze_helper_main(int cmd_fd, int status_fd, int *fds, size_t n, char *const *mounts, int *keep,
                                  LeaseFile *lf, pid_t parent);
