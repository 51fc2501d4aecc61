/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vssbackup exec: any backup tool run against a consistent shadow copy. */

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib/basic/fd-util.h"
#include "lib/basic/log.h"
#include "lib/common.h"
#include "lib/openat.h"
#include "tools/vssbackup.h"

static pid_t child_pid;

static void forward_signal(int sig) {
        if (child_pid > 0)
                kill(child_pid, sig);
}

static char *replace_braces(const char *arg, const char *with) {
        size_t n = 0;
        for (const char *p = strstr(arg, "{}"); p; p = strstr(p + 2, "{}"))
                n++;
        char *out = malloc(strlen(arg) + n * strlen(with) + 1), *o = out;
        if (!out)
                return NULL;
        for (const char *p = arg; *p;) {
                if (p[0] == '{' && p[1] == '}') {
                        o = stpcpy(o, with);
                        p += 2;
                } else
                        *o++ = *p++;
        }
        *o = 0;
        return out;
}

/* --at-original: COMMAND runs in a mount namespace of its own where each shadow copy is bind-mounted
 * read-only over its original path, so a tool sees the same paths on every run. Nothing is
 * mounted on the host: the mounts live and die with the namespace, that is with COMMAND and its
 * children, however they end. */

static bool sysctl_is(const char *path, const char *value) {
        char buf[32];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return streq(buf, value);
}

/* Why user namespaces are refused, as far as the system tells, and what allows them. */
static const char *userns_blocker(void) {
        if (sysctl_is("/proc/sys/kernel/unprivileged_userns_clone", "0"))
                return "kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1 allows them)";
        if (sysctl_is("/proc/sys/user/max_user_namespaces", "0"))
                return "user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=10000 allows them)";
        if (sysctl_is("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"))
                return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns "
                       "is 1; an AppArmor profile for vssbackup with \"userns,\" allows them)";
        return "the system forbids them (a seccomp filter or a container's policy?)";
}

static int write_proc(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, text, strlen(text));
        close(fd);
        return r;
}

/* A user namespace (with a mount namespace it owns) where our uid and gid map to themselves, so
 * COMMAND keeps its identity, and loses the namespace's capabilities at execve. 0 or -errno, step
 * naming what failed. */
static int enter_userns(const char **step) {
        uid_t uid = geteuid();
        gid_t gid = getegid();
        char map[64];
        int r;

        *step = "unshare";
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return -errno;
        /* Needed before gid_map without CAP_SETGID; a kernel before 3.19 has no such file, nor need. */
        *step = "/proc/self/setgroups";
        r = write_proc(*step, "deny");
        if (r < 0 && r != -ENOENT)
                return r;
        *step = "/proc/self/uid_map";
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) uid, (unsigned) uid);
        r = write_proc(*step, map);
        if (r < 0)
                return r;
        *step = "/proc/self/gid_map";
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned) gid, (unsigned) gid);
        return write_proc(*step, map);
}

/* In a child: a mount namespace of its own whose mounts reach no other (slave: the host's new
 * mounts still show in it). Without the right to mount (not root): inside a user namespace. */
static bool enter_namespace(char *err, size_t size) {
        const char *step = "unshare";
        bool userns = false;
        int r = 0;

        if (unshare(CLONE_NEWNS) < 0) {
                if (errno != EPERM) {
                        snprintf(err, size, "--at-original: cannot make a mount namespace: unshare: %s", strerror(errno));
                        return false;
                }
                userns = true;
                r = enter_userns(&step);
        }
        if (r >= 0 && mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
                step = "making its mounts private";
                r = -errno;
        }
        if (r >= 0)
                return true;
        if (userns)
                snprintf(err, size,
                         "--at-original needs a mount namespace of its own; uid %u may not mount here, so that "
                         "takes a user namespace, which failed (%s: %s): %s. Fix: allow unprivileged user "
                         "namespaces, run vssbackup as root, or leave out --at-original (then {} names the "
                         "shadow copy's path)",
                         (unsigned) getuid(), step, strerror(-r), userns_blocker());
        else
                snprintf(err, size, "--at-original: cannot make its mount namespace private (%s: %s)", step, strerror(-r));
        return false;
}

typedef struct Exec {
        char **argv;
        const Volume *vols;
        size_t n_vols;
        const vss_id *set_id;
        bool at_original;
        bool stitch;      /* volumes within others are mounted into COMMAND's tree (a namespace) */
        char error[1024]; /* run_command() == -2: why COMMAND did not start */
} Exec;

/* Where COMMAND sees shadow copy i. */
static const char *seen_path(const Exec *x, size_t i) {
        return x->at_original ? x->vols[i].path : x->vols[i].shadow_path;
}

/* The outermost other volume holding volume j (a mount below it), or NULL. */
static const Volume *outer_volume(const Exec *x, size_t j) {
        const Volume *v = x->vols, *r = NULL;
        for (size_t i = 0; i < x->n_vols; i++)
                if (i != j && !streq(v[i].path, v[j].path) && path_within(v[j].path, v[i].path) &&
                    (!r || strlen(v[i].path) < strlen(r->path)))
                        r = &v[i];
        return r;
}

/* Whether COMMAND needs a mount namespace: --at-original, or volumes below others to stitch. */
static bool wants_namespace(const Exec *x) {
        for (size_t j = 0; j < x->n_vols; j++)
                if (x->at_original || outer_volume(x, j))
                        return true;
        return false;
}

/* Where shadow copy i goes in COMMAND's namespace, opened with no symlink on the way (a user
 * whose component it is could swap its path for a symlink to /etc once the copy is cut): over
 * its original path (--at-original), which must still be the directory it was (volume_add());
 * for a volume below another, at its place in that one's mounted copy (trees[outer]), or in its
 * shadow copy when that is not mounted. -EBADF: it is not mounted (COMMAND reads its shadow
 * copy's path); else an fd or -errno. */
static int mount_target(const Exec *x, size_t i, const int *trees) {
        const Volume *v = &x->vols[i], *r = outer_volume(x, i);
        if (!r && !x->at_original)
                return -EBADF;
        if (!r) {
                struct stat st;
                int fd = open_no_symlinks(AT_FDCWD, v->path, O_PATH | O_DIRECTORY, 0, false);
                if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != v->dev || st.st_ino != v->ino)) {
                        close(fd);
                        return -ESTALE;
                }
                return fd;
        }
        const char *rel = v->path + strlen(r->path);
        while (*rel == '/')
                rel++;
        int base = trees[r - x->vols];
        _cleanup_close_ int own = base >= 0 ? -EBADF : open(r->shadow_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return open_no_symlinks(base >= 0 ? base : own, rel, O_PATH | O_DIRECTORY, 0, true);
}

/* In the new namespace: each shadow copy read-only (nosuid, nodev) at its mount_target(), outer
 * volumes first, an inner one mounted into the outer one's copy. All that are mounted are cloned
 * (open_tree) before anything is mounted, since a shadow copy may lie beneath an original path,
 * and each is moved onto the opened target (move_mount), so what was checked is where it goes. */
static bool mount_shadows(const Exec *x, char *err, size_t size) {
        const Volume *vols = x->vols;
        size_t n_vols = x->n_vols, order[MAX_VOLUMES];
        int trees[MAX_VOLUMES];
        bool ok = true;
        for (size_t i = 0; i < n_vols; i++) {
                order[i] = i;
                trees[i] = -EBADF;
                if (!x->at_original && !outer_volume(x, i))
                        continue; /* not mounted: COMMAND reads it at its shadow copy's path */
                trees[i] = open_tree(AT_FDCWD, vols[i].shadow_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
                if (ok && (trees[i] < 0 || mount_setattr(trees[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)) {
                        bool denied = errno == EACCES;
                        snprintf(err, size, "cannot mount the shadow copy %s: %s%s", vols[i].shadow_path, strerror(errno),
                                 denied ? " (its provider keeps it where this user cannot reach: {} without "
                                          "--at-original could not read it either)"
                                        : "");
                        ok = false;
                }
        }
        /* Shorter paths first: a volume's outer ones are mounted before it. */
        for (size_t i = 1; i < n_vols; i++)
                for (size_t k = i; k > 0 && strlen(vols[order[k - 1]].path) > strlen(vols[order[k]].path); k--) {
                        size_t t = order[k];
                        order[k] = order[k - 1];
                        order[k - 1] = t;
                }
        int attached[MAX_VOLUMES];
        for (size_t i = 0; i < n_vols; i++)
                attached[i] = -EBADF;
        for (size_t o = 0; ok && o < n_vols; o++) {
                size_t i = order[o];
                int target = mount_target(x, i, attached);
                if (target == -EBADF)
                        continue;
                if (target < 0 || move_mount(trees[i], "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
                        int e = target < 0 ? -target : errno;
                        snprintf(err, size, "cannot mount the shadow copy of %s where COMMAND sees it: %s", vols[i].path,
                                 e == ESTALE ? "the directory there is not the one shadowed (changed since)"
                                 : e == ELOOP ? "a symlink on the way (changed since)"
                                              : strerror(e));
                        ok = false;
                } else
                        attached[i] = trees[i];
                if (target >= 0)
                        close(target);
        }
        for (size_t i = 0; i < n_vols; i++)
                if (trees[i] >= 0)
                        close(trees[i]);
        return ok;
}

/* The text a child wrote on fd before it ended or exec'd (closed on exec), into err; whether
 * there was any. */
static bool child_error(int fd, char *err, size_t size) {
        _cleanup_free_ char *text = NULL;
        bool any = read_all(fd, size - 1, &text, NULL) >= 0 && !isempty(text);
        close(fd);
        if (any)
                snprintf(err, size, "%s", text);
        return any;
}

/* Whether this process may have a mount namespace of its own, asked before any writer is frozen. */
static bool namespace_possible(char *err, size_t size) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                snprintf(err, size, "pipe: %s", strerror(errno));
                return false;
        }
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                if (!enter_namespace(err, size))
                        (void) write_all(p[1], err, strlen(err));
                _exit(0);
        }
        close(p[1]);
        if (pid < 0) {
                close(p[0]);
                snprintf(err, size, "fork: %s", strerror(errno));
                return false;
        }
        bool failed = child_error(p[0], err, size);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return !failed;
}

static _Noreturn void command_child(Exec *x, char **args, const char *shadows, const char *origs, int errfd) {
        char sid[VSS_ID_STRING_MAX];

        /* The shadow copies end with us: so does the command. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if ((x->at_original || x->stitch) && (!enter_namespace(x->error, sizeof(x->error)) || !mount_shadows(x, x->error, sizeof(x->error)))) {
                (void) write_all(errfd, x->error, strlen(x->error));
                _exit(127);
        }
        if (!args || !shadows || !origs || setenv("VSS_SHADOW_PATH", seen_path(x, 0), 1) < 0 ||
            setenv("VSS_SHADOW_PATHS", shadows, 1) < 0 || setenv("VSS_ORIGINAL_PATHS", origs, 1) < 0 ||
            setenv("VSS_SNAPSHOT_SET_ID", vss_id_to_string(x->set_id, sid), 1) < 0)
                _exit(127);
        execvp(args[0], args);
        log_msg("cannot run %s: %s", args[0], strerror(errno));
        _exit(127);
}

/* COMMAND's exit status (128+N if killed by signal N); -1 when it cannot be started (errno), -2
 * when --at-original cannot be set up (x->error). */
static int run_command(Exec *x) {
        size_t argc = 0;
        while (x->argv[argc])
                argc++;
        char **args = calloc(argc + 1, sizeof(char *));
        char *shadows = NULL, *origs = NULL;
        size_t ls = 0, lo = 0;
        int p[2] = { -1, -1 }, ret = -1, saved_errno = 0;
        FILE *fs = open_memstream(&shadows, &ls), *fo = open_memstream(&origs, &lo);
        for (size_t i = 0; fs && fo && i < x->n_vols; i++) {
                fprintf(fs, "%s%s", i ? "\n" : "", seen_path(x, i));
                fprintf(fo, "%s%s", i ? "\n" : "", x->vols[i].path);
        }
        if (fs)
                fclose(fs);
        if (fo)
                fclose(fo);
        for (size_t i = 0; args && i < argc; i++)
                args[i] = replace_braces(x->argv[i], seen_path(x, 0));
        if (pipe2(p, O_CLOEXEC) < 0) {
                saved_errno = errno;
                goto finish;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                command_child(x, args, shadows, origs, p[1]);
        }
        saved_errno = errno;
        close(p[1]);
        if (pid > 0) {
                child_pid = pid;
                struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGHUP, &sa, NULL);
                /* Returns at COMMAND's execve (the pipe is closed on exec) or the child's end. */
                bool setup_failed = child_error(p[0], x->error, sizeof(x->error));
                p[0] = -1;
                int status = 0;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                child_pid = 0;
                ret = setup_failed ? -2 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
finish:
        if (p[0] >= 0)
                close(p[0]);
        for (size_t i = 0; args && i < argc; i++)
                free(args[i]);
        free(args);
        free(shadows);
        free(origs);
        errno = saved_errno;
        return ret;
}

/* Without --for: the volumes of every writer's components' files (a user's writer's only where
 * they are that user's), root's and the caller's writers' first: {} is the first volume, which a
 * user's writer subscribed later must not become. */
static bool all_volumes(Run *run, Volume *vols, size_t *n_vols, void *userdata) {
        vss_backup *b = run->r.b;
        vss_backup_document *d = NULL;
        bool ok = report_step(&run->r, vss_backup_get_document(b, &d));

        for (int pass = 0; ok && pass < 2; pass++)
                for (size_t i = 0; ok && i < vss_backup_metadata_count(b); i++) {
                        const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                        if (owner_trusted(document_writer(d, wm)) != (pass == 0))
                                continue;
                        for (size_t k = 0; ok && k < wm->n_components; k++)
                                if (!component_left_out(d, wm, &wm->components[k], "name its paths with --for to shadow them"))
                                        for (size_t f = 0; ok && f < wm->components[k].n_files; f++)
                                                ok = volume_add(run, vols, n_vols, wm->components[k].files[f].path);
                }
        vss_backup_document_free(d);
        return ok;
}

/* With --for: a writer's component below a --for volume on another filesystem (a mount there)
 * gets a shadow copy of its own (volume_add() adds only those); the volume's own shadow holds
 * only an empty directory there. */
static bool below_on_other_fs(const Volume *vols, size_t n_vols, const char *path) {
        char real[PATH_MAX];
        struct stat st;
        if (volume_resolve(path, real, &st, NULL) < 0)
                return false;
        const Volume *v = volume_of(vols, n_vols, real);
        return v && v->dev != st.st_dev;
}

static bool exec_nested_volumes(Run *run, Volume *vols, size_t *n_vols, void *userdata) {
        vss_backup *b = run->r.b;
        vss_backup_document *d = NULL;
        bool ok = report_step(&run->r, vss_backup_get_document(b, &d));

        for (size_t i = 0; ok && i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                for (size_t k = 0; ok && k < wm->n_components; k++) {
                        const vss_component_info *ci = &wm->components[k];
                        int left_out = -1; /* asked at its first path below */
                        for (size_t f = 0; ok && left_out != 1 && f < ci->n_files; f++) {
                                if (!below_on_other_fs(vols, *n_vols, ci->files[f].path))
                                        continue;
                                if (left_out < 0)
                                        left_out = component_left_out(d, wm, ci, "its filesystem below --for is not shadowed");
                                if (!left_out)
                                        ok = volume_add(run, vols, n_vols, ci->files[f].path);
                        }
                }
        }
        vss_backup_document_free(d);
        return ok;
}

/* Files a writer made after the cut (PostgreSQL's backup_label and WAL, say) belong in the
 * backup: vssbackup backup stores them, but COMMAND sees only the shadow copies, so a copy it
 * makes without them would restore silently wrong. Refused before COMMAND runs. */
static bool no_writer_files(Run *run) {
        vss_backup_document *d = NULL;
        bool ok = report_step(&run->r, vss_backup_get_document(run->r.b, &d));
        for (size_t i = 0; ok && i < d->n_components; i++) {
                const vss_bc_component *c = &d->components[i];
                const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
                if (c->n_writer_files > 0)
                        ok = run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                      "component '%s' of writer '%s' needs files its writer made after the cut (%s, "
                                      "to go to %s), which COMMAND would not see; back it up with vssbackup backup "
                                      "(or make the writer's copy self-contained: a PostgreSQL cluster on one btrfs "
                                      "subvolume)",
                                      c->name, wm ? wm->name : "?", c->writer_files[0].path, c->writer_files[0].destination);
        }
        vss_backup_document_free(d);
        return ok;
}

/* $VSS_SHADOW_PATHS and $VSS_ORIGINAL_PATHS hold a path a line: one with a newline would read as
 * two (vssd refuses such paths in writers' metadata; this is for --for's). */
static bool one_line_each(Run *run, const Volume *vols, size_t n_vols) {
        for (size_t i = 0; i < n_vols; i++)
                if (strchr(vols[i].path, '\n') || strchr(vols[i].shadow_path, '\n'))
                        return run_fail(run, VSS_E_INVALIDARG, "'%s' holds a newline, and $VSS_SHADOW_PATHS lists paths "
                                        "one a line: COMMAND not run", vols[i].path);
        return true;
}

int cmd_exec(char **paths, size_t n_paths, vss_backup_type type, bool at_original, char **argv) {
        char err[1024];
        Run run;
        Volume vols[MAX_VOLUMES];
        size_t n_vols = 0;
        vss_id set_id = {};
        int code = -1;
        const SnapshotPlan plan = {
                .type = type,
                .paths = paths,
                .n_paths = n_paths,
                .nothing = "nothing to shadow: no writer has components; give --for PATH",
                .default_volumes = all_volumes,
                .nested_volumes = exec_nested_volumes,
        };

        bool ok = run_start(&run, "exec");
        run.r.out = arg_quiet ? devnull_file() : stderr; /* stdout is the command's */
        run.attempts = json_object_new_array();
        if (ok && at_original && !namespace_possible(err, sizeof(err)))
                ok = run_fail(&run, VSS_E_ACCESSDENIED, "%s", err);
        ok = snapshot_attempts(&run, ok, &plan, vols, &n_vols, &set_id);
        vss_backup *b = run.r.b;
        ok = ok && no_writer_files(&run) && one_line_each(&run, vols, n_vols);
        if (ok) {
                Exec x = { .argv = argv, .vols = vols, .n_vols = n_vols, .set_id = &set_id, .at_original = at_original };
                progress_clear();
                /* A mount below a volume has a shadow copy of its own: COMMAND sees it in place in
                 * {}'s tree when it may have a namespace; otherwise it is told where it is. */
                if (!at_original && wants_namespace(&x) && !(x.stitch = namespace_possible(err, sizeof(err))) && !arg_quiet)
                        for (size_t j = 0; j < n_vols; j++)
                                if (outer_volume(&x, j))
                                        log_msg("%s is a filesystem of its own: %s shows it as an empty directory, since "
                                                "this user may make no mount namespace to put it there; its shadow copy "
                                                "is %s (in $VSS_SHADOW_PATHS)",
                                                vols[j].path, outer_volume(&x, j)->shadow_path, vols[j].shadow_path);
                for (size_t j = 0; j < n_vols; j++) {
                        if (!outer_volume(&x, j))
                                warn_mounts_below(vols[j].path, vols, n_vols, NULL, NULL,
                                                  "COMMAND sees this mount point as an empty directory: no shadow "
                                                  "copy of its filesystem is in the set (name it with --for to have one)");
                        /* No mount points: the mount table does not show them. */
                        warn_subvolumes_below(vols[j].path, vols, n_vols,
                                              "COMMAND sees this subvolume as an empty directory: no shadow copy of "
                                              "it is in the set (name it with --for to have one)");
                }
                if (arg_json || arg_quiet)
                        ;
                else if (at_original)
                        log_msg("running %s against %s (its shadow copy, mounted there read-only for %s alone)",
                                argv[0], vols[0].path, argv[0]);
                else
                        log_msg("running %s against %s", argv[0], vols[0].shadow_path);
                code = run_command(&x);
                if (code == -2) {
                        ok = run_fail(&run, VSS_E_UNEXPECTED, "%s", x.error);
                        code = -1; /* not started, as exit_status says it */
                } else if (code < 0)
                        ok = run_fail(&run, VSS_E_UNEXPECTED, "cannot start %s: %s", argv[0], strerror(errno));
                else if (code != 0)
                        run_fail(&run, VSS_E_UNEXPECTED, "%s exited with status %d", argv[0], code);
                /* The command's verdict is each component's. */
                vss_backup_document *d = NULL;
                if (ok && vss_backup_get_document(b, &d) >= 0)
                        for (size_t i = 0; i < d->n_components; i++)
                                (void) vss_backup_set_backup_succeeded(b, &d->components[i].instance_id,
                                                                       &d->components[i].writer_id,
                                                                       d->components[i].logical_path,
                                                                       d->components[i].name, code == 0);
                vss_backup_document_free(d);
                run_closing_phase(&run, vss_backup_backup_complete_sync(b), "backup-complete");
        }
        json_object *extra = json_object_new_object();
        json_object_object_add(extra, "exit_status", json_object_new_int(code));
        add_warnings(extra);
        volumes_free(vols, n_vols);
        int r = run_finish(&run, extra); /* releasing the session deletes the shadow copies */
        return code >= 0 ? code : r == EXIT_OK ? EXIT_FAILED : r;
}

