/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Children doing slow work for vssd, watched by sd-event (a pidfd where the kernel has one). */

#include <errno.h>
#include <signal.h>
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

static _Noreturn void child_main(pid_t parent, ChildFn fn, void *arg) {
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

int child_run(Children *c, const char *what, ChildFn fn, void *arg, ChildDone done, void (*cancel)(void *userdata),
              void *userdata) {
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_main(parent, fn, arg);
        /* Allocated after the fork: the child has no use for it (and would leak it). */
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
