/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Children doing slow work for vssd, watched by sd-event (a pidfd where the kernel has one). */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/child.h"
#include "providers/provider.h"
#include "daemon/log.h"
#include "lib/common.h"

struct Child {
        Children *children;
        pid_t pid;
        sd_event_source *source;
        char what[64];
        ChildDone done;
        void (*cancel)(void *userdata);
        void *userdata;
        LIST_FIELDS(Child, list);
};

/* In the child: vssd stopped or died. A command the child runs has a process group of its own
 * (so it can be cleaned up after it exits); it goes too. */
static void on_term(int sig) {
        pid_t g = provider_command_group;
        if (g > 0)
                (void) kill(-g, SIGKILL);
        _exit(128 + sig);
}

_Noreturn void child_main(pid_t parent, ChildFn fn, void *arg) {
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(128 + SIGTERM); /* vssd is gone already */
        struct sigaction sa = { .sa_handler = on_term };
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGINT, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        int r = fn(arg);
        /* The exit status carries the errno; 255 stands for one that does not fit. */
        _exit(r >= 0 ? 0 : -r < 255 ? -r : 255);
}

static Child *child_free(Child *ch) {
        if (!ch)
                return NULL;
        LIST_REMOVE(list, ch->children->list, ch);
        ch->children->n--;
        sd_event_source_disable_unref(ch->source);
        free(ch);
        return NULL;
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Child *ch = userdata;
        int result = si->si_code != CLD_EXITED ? -ECANCELED
                     : si->si_status == 0      ? 0
                     : si->si_status == 255    ? -EIO
                                               : -si->si_status;
        ChildDone done = ch->done;
        void *ud = ch->userdata;
        if (si->si_code != CLD_EXITED)
                log_warn("%s: child %d killed by signal %d", ch->what, (int) ch->pid, si->si_status);
        child_free(ch);
        done(result, ud);
        return 0;
}

/* Watches a started child: 0, or <0 when it cannot (the child is killed and reaped then). */
static int child_watch(Children *c, const char *what, pid_t pid, ChildDone done, void (*cancel)(void *userdata),
                       void *userdata) {
        Child *ch = calloc(1, sizeof(*ch));
        int r = ch ? 0 : -ENOMEM;
        if (ch) {
                *ch = (Child) { .children = c, .pid = pid, .done = done, .cancel = cancel, .userdata = userdata };
                snprintf(ch->what, sizeof(ch->what), "%s", what);
                r = sd_event_add_child(c->event, &ch->source, pid, WEXITED, on_child_exit, ch);
        }
        if (r < 0) {
                (void) kill(pid, SIGTERM);
                (void) waitpid(pid, NULL, 0);
                free(ch);
                return r;
        }
        LIST_PREPEND(list, c->list, ch);
        c->n++;
        return 0;
}

int child_run(Children *c, const char *what, ChildFn fn, void *arg, ChildDone done, void (*cancel)(void *userdata),
              void *userdata) {
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_main(parent, fn, arg);
        /* Allocated after the fork: the child has no use for it (and would leak it). */
        return child_watch(c, what, pid, done, cancel, userdata);
}

/* vssd's own binary, by name (a wrapper such as valgrind answers with its client's); one replaced
 * since vssd started (an upgrade) through the link, so the program runs the same code as the vssd
 * that starts it. */
static void self_exe(char exe[static PATH_MAX]) {
        static const char deleted[] = " (deleted)";
        ssize_t k = readlink("/proc/self/exe", exe, PATH_MAX - 1);
        if (k <= 0 || k >= PATH_MAX - 1)
                k = 0;
        exe[k] = 0;
        if (k < (ssize_t) sizeof(deleted) || streq(exe + k - (sizeof(deleted) - 1), deleted))
                snprintf(exe, PATH_MAX, "/proc/self/exe");
}

int spawn_self(char *const argv[], const int *fds, size_t n, bool unblock, pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int src[SPAWN_MAX_FDS], n_src = 0, r = 0;
        char exe[PATH_MAX];

        if (n > SPAWN_MAX_FDS)
                return -E2BIG;
        /* Each source moves above every target first, so no dup2 clobbers one not yet moved. */
        for (size_t i = 0; i < n && r >= 0; i++) {
                src[n_src] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + (int) n);
                if (src[n_src] < 0)
                        r = -errno;
                else
                        n_src++;
        }
        self_exe(exe);
        if (r >= 0 && (r = -posix_spawn_file_actions_init(&fa)) >= 0) {
                for (int i = 0; i < n_src && r >= 0; i++)
                        r = -posix_spawn_file_actions_adddup2(&fa, src[i], 3 + i);
                if (r >= 0)
                        r = -posix_spawn_file_actions_addclosefrom_np(&fa, 3 + n_src);
                if (r >= 0 && (r = -posix_spawnattr_init(&attr)) >= 0) {
                        if (unblock) {
                                sigset_t none;
                                sigemptyset(&none);
                                r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
                                if (r >= 0)
                                        r = -posix_spawnattr_setsigmask(&attr, &none);
                        }
                        /* vfork-like: no copy of vssd's page tables, nothing shared once it execs. */
                        if (r >= 0)
                                r = -posix_spawn(ret_pid, exe, &fa, &attr, argv, environ);
                        posix_spawnattr_destroy(&attr);
                }
                posix_spawn_file_actions_destroy(&fa);
        }
        for (int i = 0; i < n_src; i++)
                close(src[i]);
        return r;
}

int child_spawn(Children *c, const char *what, char *const argv[], int job_fd, ChildDone done,
                void (*cancel)(void *userdata), void *userdata) {
        pid_t pid;
        /* vssd blocks the signals its event loop reads; the child wants SIGTERM. */
        int r = spawn_self(argv, &job_fd, 1, true, &pid);
        return r < 0 ? r : child_watch(c, what, pid, done, cancel, userdata);
}

void children_stop(Children *c) {
        LIST_FOREACH(list, ch, c->list)
                (void) kill(ch->pid, SIGTERM);
        while (c->list) {
                Child *ch = c->list;
                void *ud = ch->userdata;
                void (*cancel)(void *) = ch->cancel;
                while (waitpid(ch->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                child_free(ch);
                if (cancel)
                        cancel(ud);
        }
}
