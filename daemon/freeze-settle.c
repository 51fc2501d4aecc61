/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recovery of freeze leases whose owner died: what the lease file says (see freeze.h). */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/common.h"
#include "freeze.h"

static int boot_id(char *buf, size_t size) {
        _cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t k;

        if (fd < 0)
                return -errno;
        k = read(fd, buf, size - 1);
        if (k <= 0)
                return k < 0 ? -errno : -EIO;
        buf[k] = '\0';
        return 0;
}

/* The pid holding the file's write lock, or 0. */
static int lock_holder(int fd, pid_t *ret) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

        if (fcntl(fd, F_GETLK, &fl) < 0)
                return -errno;
        *ret = fl.l_type == F_UNLCK ? 0 : fl.l_pid;
        return 0;
}

/* SIGTERM makes the helper thaw what it holds and retire the file, then exit. Through a pidfd
 * taken while it still held the lock, so the signal cannot reach a process that reused its pid. */
static int stop_helper(int fd, pid_t pid, uint32_t timeout_ms) {
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p;
        pid_t again;
        int r, k;

        if (pidfd < 0)
                return errno == ESRCH ? 0 : -errno; /* gone already */
        r = lock_holder(fd, &again);
        if (r < 0)
                return r;
        if (again != pid)
                return 0; /* it exited meanwhile; the caller looks again */
        if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                return -errno;
        p = (struct pollfd) { .fd = pidfd, .events = POLLIN };
        do
                k = poll(&p, 1, (int) timeout_ms);
        while (k < 0 && errno == EINTR);
        return k > 0 ? 0 : k == 0 ? -ETIME : -errno;
}

int freeze_lease_settle(const char *lease_file, uint32_t timeout_ms) {
        char line[64] = {}, boot[64];

        if (!lease_file)
                return -EINVAL;
        /* Twice at most: once more after a live helper was stopped. */
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_close_ int fd = open(lease_file, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                struct stat st;
                pid_t holder;
                ssize_t k;
                int r;

                if (fd < 0)
                        return errno == ENOENT ? 0 : -errno;
                r = lock_holder(fd, &holder);
                if (r < 0)
                        return r;
                if (holder > 0) {
                        r = stop_helper(fd, holder, timeout_ms);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* Unlocked. The helper unlinks before its lock goes, so a file still linked now is
                 * one it never retired. */
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (st.st_nlink == 0)
                        return 0;
                k = pread(fd, line, sizeof line - 1, 0);
                if (k < 0)
                        return -errno;
                /* Never armed: its helper froze nothing. From before a reboot: the reboot thawed. */
                if (k == 0 || boot_id(boot, sizeof boot) < 0 || !streq(line, boot)) {
                        (void) unlink(lease_file);
                        return 0;
                }
                return 1;
        }
        return -ETIME;
}
