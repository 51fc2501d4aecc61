/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The metadata of an inode that mode, owner and times do not cover: extended attributes (all
 * namespaces: user.*, trusted.*, security.* including the file capability security.capability,
 * and the POSIX ACLs system.posix_acl_access/default, which Linux filesystems exchange as raw
 * xattrs) and the file attributes of chattr(1) (FS_IOC_GETFLAGS/SETFLAGS).
 *
 * Order matters, and is the caller's: contents, owner, mode, meta_copy_xattrs() (chown clears
 * security.capability, so it comes after), times, then meta_apply_flags_last() (an immutable or
 * append-only inode refuses times, xattrs and links; setting flags leaves mtime alone).
 *
 * What the target cannot keep (a filesystem refusing trusted.* or a flag: EOPNOTSUPP, EPERM when
 * not root, ...) is not an error: it is counted in the MetaReport and passed to its callback, one
 * call per item and file, so it is never dropped silently. Functions return 0 or a negative errno.
 */

#include <linux/fs.h>
#include <stdbool.h>
#include <stdint.h>

/* The attributes chattr can set and every Linux filesystem means the same by; read-only state
 * (ext4's extents flag, inline data, verity, encryption, casefold) is not copied. */
#define META_FLAGS_COPIED                                                                          \
        (FS_SECRM_FL | FS_UNRM_FL | FS_COMPR_FL | FS_SYNC_FL | FS_IMMUTABLE_FL | FS_APPEND_FL |      \
         FS_NODUMP_FL | FS_NOATIME_FL | FS_JOURNAL_DATA_FL | FS_NOTAIL_FL | FS_DIRSYNC_FL |           \
         FS_TOPDIR_FL | FS_NOCOW_FL | FS_PROJINHERIT_FL | FS_NOCOMP_FL)
/* The attributes that forbid changing the inode: applied after everything else. */
#define META_FLAGS_PROTECT (FS_IMMUTABLE_FL | FS_APPEND_FL)

/* path: where the item was to be kept (a full path when known); what: "xattr NAME" or "flags +X". */
typedef void (*meta_lost_fn)(const char *path, const char *what, int error, void *userdata);

typedef struct MetaReport {
        uint64_t n_lost;      /* items that could not be kept */
        meta_lost_fn lost;    /* may be NULL */
        void *userdata;
} MetaReport;

/* Reports one item that could not be kept on dfd/name (dfd's path is looked up only then). */
void meta_report(MetaReport *report, int dfd, const char *name, const char *what, int error);

/*
 * Makes the xattrs of the destination those of the source: copies every one (security.capability
 * last) and removes what the destination has that the source has not (an ACL inherited from a
 * default ACL, say). Regular files and directories by fd (src_fd, dst_fd); other nodes (symlinks,
 * fifos, device nodes: fds < 0) by name in their directories (sdfd/sname, ddfd/dname, never
 * followed). ddfd/dname also name the destination in reports.
 */
int meta_copy_xattrs(int src_fd, int sdfd, const char *sname, int dst_fd, int ddfd, const char *dname,
                     MetaReport *report);

/* The chattr attributes of an open regular file or directory, masked with META_FLAGS_COPIED;
 * 0 where the filesystem has none. */
int meta_get_flags(int fd, unsigned *ret);
/* Sets flags (masked with META_FLAGS_COPIED) on fd, last: see above. What the filesystem refuses is
 * reported (ddfd/dname name it), one flag at a time, and the others are still set. */
int meta_apply_flags_last(int fd, unsigned flags, int ddfd, const char *dname, MetaReport *report);
/* meta_copy_xattrs() then meta_apply_flags_last() from one open regular file or directory onto
 * another: the last step of copying an inode, after contents, owner, mode and times. */
int meta_copy_fd(int src_fd, int dst_fd, int ddfd, const char *dname, MetaReport *report);
/* Clears immutable and append-only on an open regular file or directory, so it can be changed or
 * removed; stores what was set in *ret_saved (may be NULL). 0 also when there was nothing to clear. */
int meta_unprotect(int fd, unsigned *ret_saved);
/* linkat() of an O_PATH fd's protected (immutable/append-only) inode to ddfd/dname: the flags are
 * lifted for the link and set again. */
int meta_link_protected(int path_fd, int ddfd, const char *dname);
/* The flag letters of chattr for flags ("ia" ...), into buf (at least 33 bytes). */
const char *meta_flags_string(unsigned flags, char *buf);

/* Makes the xattrs and chattr attributes of every entry of the copy dst those of src (same
 * relative paths; entries not in dst are skipped), children before their directory so protected
 * flags come last: for a copy whose data and owners, modes and times another pass made (the file
 * provider's copy-ahead). Symlinks are never followed; the walk stays on src's filesystem. */
int meta_sync_tree(int src_fd, const char *dst, MetaReport *report);
