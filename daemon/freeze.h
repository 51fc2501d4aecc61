/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Freeze leases: filesystem freezes (FIFREEZE/FITHAW on an fd of the mount point) for providers
 * that need flush-and-hold. A freeze is a lease, never a toggle: the freezes are held by a small
 * helper child (fork, no exec) that is armed with its deadline before its first FIFREEZE, and
 * thaws everything it froze, in reverse order, when
 *   (a) the parent asks (freeze_lease_release()),
 *   (b) the deadline passes, or
 *   (c) the parent dies: EOF/POLLHUP on the command pipe, and PR_SET_PDEATHSIG (SIGTERM), as
 *       well as any other catchable terminating signal sent to the helper.
 * Only SIGKILL of the helper itself escapes it; the parent then thaws the lease's mounts itself
 * as soon as it notices (in freeze_lease_new() or freeze_lease_release()), and after a crash of
 * vssd, a restart does, when the lease file says the helper died holding them (never when the
 * helper thawed: a filesystem frozen since is someone else's).
 *
 * PR_SET_PDEATHSIG fires when the *thread* that forked the helper exits: create leases from a
 * thread that outlives them (vssd's main thread).
 *
 * The parent installs no signal handlers and reaps the helper with waitpid() on its pid, which
 * works with SIGCHLD blocked (sd-event). Needs CAP_SYS_ADMIN. Functions return 0 or a negative
 * errno.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct FreezeLease FreezeLease;

/* Freezes the filesystems holding the given paths. Each path is resolved (realpath) to its mount
 * point: the longest matching entry of /proc/self/mountinfo. Duplicates (the same mount point, or
 * the same filesystem: same device in mountinfo, e.g. bind mounts) are frozen once, in first-seen
 * order. deadline_ms counts from this call and includes the time the freezes take.
 * Returns when everything is frozen: it blocks for as long as the FIFREEZE calls take (each one
 * flushes its filesystem). Errors, with a message naming the path or mount point in errbuf
 * (written on failure only; errbuf may be NULL):
 *   -EINVAL      no paths, a NULL path, deadline_ms 0;
 *   -ENOENT etc. a path that cannot be resolved (nothing is frozen then);
 *   -EBUSY       a filesystem already frozen by someone else (it is left as it was);
 *   -EOPNOTSUPP  a filesystem that cannot be frozen;
 *   -ETIME       the deadline passed while freezing;
 *   -EIO         the helper died unexpectedly.
 * On any error nothing this call froze stays frozen. */
int freeze_lease_new(const char *const *paths, size_t n_paths, uint32_t deadline_ms, FreezeLease **ret,
                     char *errbuf, size_t errlen);

/* The same, with a lease file: a restarted vssd tells from it whether the freezes are still its
 * own. The file is created here (it must not exist: -EEXIST); the helper locks it (fcntl write
 * lock) and writes the boot id into it before its first FIFREEZE, and unlinks it after its last
 * FITHAW, whichever way it thaws; the parent does the same when it thaws for a dead helper. So:
 * no file, nothing of the lease is frozen; a locked file, the helper is alive and holds it; a file
 * with a line and no lock, the helper was SIGKILLed before it thawed. freeze_lease_settle() reads
 * it. */
int freeze_lease_new_with_file(const char *const *paths, size_t n_paths, uint32_t deadline_ms, const char *lease_file,
                               FreezeLease **ret, char *errbuf, size_t errlen);

/* freeze_lease_new_with_file() in two steps, so that the freeze itself is all a freeze window
 * holds. freeze_lease_prepare() does everything that can be done before: resolves and opens the
 * mount points, makes the lease file (lease_file may be NULL), forks the helper and waits for it
 * to be set up (its signals, its fds, the lease file locked). Nothing is frozen; the helper waits
 * for the freeze, and a release now (or the parent's death) ends it without a thaw. The lease
 * file gets its line only at the freeze: a helper killed while it waits leaves a file that thaws
 * nothing. Errors as freeze_lease_new_with_file()'s, before the freezes. */
/* flags: FREEZE_PATHS_RESOLVED, the paths were resolved when they were chosen (vssd's volumes):
 * one that resolves elsewhere now (a directory on the way replaced by a symlink since, by whoever
 * may write there) fails with -EXDEV, so that no filesystem is frozen but those chosen. */
#define FREEZE_PATHS_RESOLVED 1u
int freeze_lease_prepare(const char *const *paths, size_t n_paths, unsigned flags, const char *lease_file, FreezeLease **ret,
                         char *errbuf, size_t errlen);
/* Freezes a prepared lease, with a deadline counted from this call; returns when everything is
 * frozen. On failure (errors as freeze_lease_new_with_file()'s) nothing of it stays frozen and
 * the lease is freed (*l is NULL). */
int freeze_lease_freeze(FreezeLease **l, uint32_t deadline_ms, char *errbuf, size_t errlen);

/* Asks the helper to thaw (reverse order), waits for it, frees the lease. A prepared lease that
 * was never frozen ends with 0 (-EIO if its helper had died), thawing nothing. Returns 0 when it thawed
 * on command; -ETIME when the deadline had already thawed the filesystems (the hold window was
 * exceeded); -ESTALE when a filesystem had been thawed by someone else meanwhile (the hold was not
 * continuous); -EIO when the helper had died (the mounts are then thawed here); another -errno of a
 * failed FITHAW. The lease is freed in every case. Accepts NULL (returns 0). */
int freeze_lease_release(FreezeLease *l);
/* The thaw of freeze_lease_release() alone, with the same result: once it returns, the mounts are
 * thawed and the lease file settled, but the helper may still be exiting (a process's teardown,
 * a millisecond on a small VM); freeze_lease_release() reaps it later and returns that result
 * again. Accepts NULL (returns 0). */
int freeze_lease_thaw(FreezeLease *l);

static inline void freeze_lease_releasep(FreezeLease **l) {
        (void) freeze_lease_release(*l);
}

/* The mount points frozen, in freeze order (valid until release). Returns their number. */
size_t freeze_lease_mounts(FreezeLease *l, const char *const **ret);
/* The helper's pid. */
pid_t freeze_lease_pid(FreezeLease *l);

/* Thaws a mount point regardless of who froze it (FITHAW; EINVAL = was not frozen -> 0). For
 * recovery after a crash. */
int freeze_thaw_path(const char *mount_point);

/* For recovery, in the lease's owner's stead (the owner is gone): settles the lease file.
 *   0      nothing of the lease is frozen: no file (the helper thawed and retired it), a file its
 *          helper never armed, or one from before a reboot (then removed); a live helper is sent
 *          SIGTERM, which makes it thaw, and awaited for up to timeout_ms;
 *   1      the helper died holding the freezes (SIGKILL): the caller thaws the lease's mount
 *          points, then removes the file;
 *   -ETIME a live helper did not exit in time; another -errno when the file cannot be read. */
int freeze_lease_settle(const char *lease_file, uint32_t timeout_ms);
