/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vssbackup exec: any backup tool run against a consistent shadow copy. */

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "lib/basic/log.h"
#include "lib/common.h"
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

static int run_command(char **argv, const Volume *vols, size_t n_vols, const vss_id *set_id) {
        char sid[VSS_ID_STRING_MAX];
        size_t argc = 0;
        while (argv[argc])
                argc++;
        char **args = calloc(argc + 1, sizeof(char *));
        char *shadows = NULL, *origs = NULL;
        size_t ls = 0, lo = 0;
        FILE *fs = open_memstream(&shadows, &ls), *fo = open_memstream(&origs, &lo);
        for (size_t i = 0; fs && fo && i < n_vols; i++) {
                fprintf(fs, "%s%s", i ? "\n" : "", vols[i].shadow_path);
                fprintf(fo, "%s%s", i ? "\n" : "", vols[i].path);
        }
        if (fs)
                fclose(fs);
        if (fo)
                fclose(fo);
        for (size_t i = 0; args && i < argc; i++)
                args[i] = replace_braces(argv[i], vols[0].shadow_path);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                /* The shadow copies end with us: so does the command. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (!args || !shadows || !origs || setenv("VSS_SHADOW_PATH", vols[0].shadow_path, 1) < 0 ||
                    setenv("VSS_SHADOW_PATHS", shadows, 1) < 0 || setenv("VSS_ORIGINAL_PATHS", origs, 1) < 0 ||
                    setenv("VSS_SNAPSHOT_SET_ID", vss_id_to_string(set_id, sid), 1) < 0)
                        _exit(127);
                execvp(args[0], args);
                log_msg("cannot run %s: %s", args[0], strerror(errno));
                _exit(127);
        }
        int status = -1;
        if (pid > 0) {
                child_pid = pid;
                struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGHUP, &sa, NULL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                child_pid = 0;
        }
        for (size_t i = 0; args && i < argc; i++)
                free(args[i]);
        free(args);
        free(shadows);
        free(origs);
        if (pid < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Without --for: the volumes of every writer's components' files. */
static bool all_volumes(Run *run, Volume *vols, size_t *n_vols, void *userdata) {
        vss_backup *b = run->r.b;
        bool ok = true;

        for (size_t i = 0; ok && i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                for (size_t k = 0; ok && k < wm->n_components; k++)
                        for (size_t f = 0; ok && f < wm->components[k].n_files; f++)
                                ok = volume_add(run, vols, n_vols, wm->components[k].files[f].path);
        }
        return ok;
}

int cmd_exec(char **paths, size_t n_paths, vss_backup_type type, char **argv) {
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
        };

        bool ok = run_start(&run, "exec");
        run.r.out = stderr; /* stdout is the command's */
        run.attempts = json_object_new_array();
        ok = snapshot_attempts(&run, ok, &plan, vols, &n_vols, &set_id);
        vss_backup *b = run.r.b;
        if (ok) {
                if (!arg_json)
                        log_msg("running %s against %s", argv[0], vols[0].shadow_path);
                code = run_command(argv, vols, n_vols, &set_id);
                if (code < 0)
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
        volumes_free(vols, n_vols);
        int r = run_finish(&run, extra); /* releasing the session deletes the shadow copies */
        return code >= 0 ? code : r == EXIT_OK ? EXIT_FAILED : r;
}

