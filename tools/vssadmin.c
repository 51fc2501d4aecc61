/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssadmin: list writers, providers and shadows; create and delete shadow copies. In the spirit
 * of Windows' vssadmin, with --json for scripts. */

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <json-c/json.h>

#include <vss/admin.h>
#include <vss/backup.h>

#include "lib/backup-batch.h"
#include "lib/common.h"
#include "tools/report.h"
#include "tools/vssadmin-usage.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1 }; /* EXIT_USAGE: lib/basic/log.h */

static const char *arg_socket;
static bool arg_json, arg_quiet;

static void help(void) {
        printf("Usage:\n"
               "  vssadmin list writers [--json]\n"
               "  vssadmin list providers [--for PATH]... [--json]\n"
               "  vssadmin list shadows [--json]\n"
               "  vssadmin create shadow --for PATH [--for PATH]... [--provider NAME] [--json]\n"
               "  vssadmin delete shadows (--shadow ID | --set ID | --all | --for PATH --oldest) [--json]\n"
               "  vssadmin expose --shadow ID --at DIR [--json]\n"
               "  vssadmin unexpose --at DIR [--json]\n"
               "  vssadmin cluster list hosts|writers|shadows --etcd URL --cluster NAME [--json]\n"
               "  vssadmin cluster create shadow --etcd URL --cluster NAME --for HOST:PATH [--for HOST:PATH]...\n"
               "                                 [--job NAME] [--lease-ttl SECONDS] [--json]\n"
               "  vssadmin cluster delete shadows --etcd URL --cluster NAME --set ID\n"
               "  vssadmin --help | --version\n"
               "\n"
               "Administers OpenVSS shadow copies through vssd.\n"
               "\n"
               "Options: --json (JSON on stdout, also for errors), -q/--quiet (errors only),\n"
               "         --socket PATH (default $VSS_SOCKET, else " VSS_DEFAULT_SOCKET ").\n"
               "Exit status: 0 success, 1 the operation failed, 2 usage error.\n"
               "\n"
               "See vssadmin(8) for the commands, options and output.\n");
}

/* A failure: "vssadmin: WHAT failed: NAME (CODE): MESSAGE" on stderr (just the message without
 * WHAT), and with --json the error object on stdout as well. */
static int fail(const char *what, int32_t hr, const char *message) {
        const char *name = vss_error_name(hr);
        progress_clear();
        if (what)
                fprintf(stderr, "vssadmin: %s failed: %s (0x%08x): %s\n", what, name ? name : "error", (uint32_t) hr,
                        message);
        else
                fprintf(stderr, "vssadmin: %s\n", message);
        if (arg_json) {
                json_object *o = failure_json(hr, message);
                print_json(o);
                json_object_put(o);
        }
        return EXIT_FAILED;
}

/* A handle connected to vssd, or NULL after saying why. */
static vss_admin *admin_open(const char *what) {
        char why[1024];
        vss_admin *a = NULL;
        if (vss_admin_new(&a) < 0) {
                fail(what, VSS_E_OUTOFMEMORY, "out of memory");
                return NULL;
        }
        if (vss_admin_connect(a, arg_socket) < 0) {
                fail(what, VSS_E_WRITER_INFRASTRUCTURE,
                     vssd_failure_text(arg_socket, VSS_E_WRITER_INFRASTRUCTURE, why, sizeof(why)));
                return vss_admin_free(a);
        }
        return a;
}

static int admin_fail(vss_admin *a, const char *what, int32_t hr) {
        return fail(what, hr, error_cause(vss_admin_errmsg(a)));
}

/* --json: {"result": "ok", key: value} on stdout. Takes value. */
static void print_json_result(const char *key, json_object *value, const char *key2, json_object *value2) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "result", json_object_new_string("ok"));
        json_object_object_add(o, key, value);
        if (key2)
                json_object_object_add(o, key2, value2);
        print_json(o);
        json_object_put(o);
}

static void admin_freep(vss_admin **a) {
        vss_admin_free(*a);
}

/* A handle with a list fetched (count in *ret_n), or NULL after saying why. */
static vss_admin *admin_list(int (*list)(vss_admin *a, size_t *ret_n), const char *what, size_t *ret_n) {
        vss_admin *a = admin_open(what);
        if (!a)
                return NULL;
        int32_t hr = list(a, ret_n);
        if (hr < 0) {
                admin_fail(a, what, hr);
                return vss_admin_free(a);
        }
        return a;
}

/* --json: {key: arr[, key2: v2]} on stdout. Takes arr and v2 either way. */
static void print_json_list(const char *key, json_object *arr, const char *key2, json_object *v2) {
        if (!arg_json) {
                json_object_put(arr);
                json_object_put(v2);
                return;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, key, arr);
        if (v2)
                json_object_object_add(o, key2, v2);
        print_json(o);
        json_object_put(o);
}

static int list_writers(void) {
        size_t n;
        _cleanup_(admin_freep) vss_admin *a = admin_list(vss_admin_list_writers, "list writers", &n);
        char ts[32], wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX], sid[VSS_ID_STRING_MAX];
        if (!a)
                return EXIT_FAILED;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                const vss_admin_writer *w = vss_admin_writer_get(a, i);
                const vss_writer_status *st = &w->status;
                bool no_session = vss_id_is_null(&w->session_id);
                id_string(&st->writer_id, wid);
                id_string(&st->instance_id, iid);
                id_string(&w->session_id, sid);
                format_timestamp(w->as_of_usec, ts);
                if (arg_json)
                        json_object_array_add(arr, admin_writer_json(w));
                else {
                        status_text(stdout, "", st->name, wid, iid, st->state, st->failure, st->application_code,
                                    st->application_message, st->note);
                        if (no_session)
                                printf("   As of: subscription at %s (no session yet)\n\n", ts);
                        else
                                printf("   As of: session {%s} at %s\n\n", sid, ts);
                }
        }
        print_json_list("writers", arr, NULL, NULL);
        return EXIT_OK;
}

/* Whether shadows of path will be one instant, and why not when not. */
static int explain_volume(vss_admin *a, const char *path, json_object *out) {
        const vss_admin_volume *v;
        int32_t hr = vss_admin_explain_volume(a, path, &v);
        if (hr < 0)
                return admin_fail(a, "list providers", hr);
        if (out) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "provider", json_object_new_string(v->provider));
                json_object_object_add(o, "point_in_time", json_object_new_boolean(v->point_in_time));
                json_object_object_add(o, "why", json_object_new_string(v->why));
                json_object_array_add(out, o);
        } else
                printf("Shadow copies of %s (provider '%s'): %s\n   %s\n\n", path, v->provider,
                       v->point_in_time ? "one instant" : "not point-in-time", v->why);
        return EXIT_OK;
}

static int list_providers(char *const *paths, size_t n_paths) {
        size_t n;
        _cleanup_(admin_freep) vss_admin *a = admin_list(vss_admin_list_providers, "list providers", &n);
        char id[VSS_ID_STRING_MAX];
        if (!a)
                return EXIT_FAILED;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                const vss_admin_provider *p = vss_admin_provider_get(a, i);
                id_string(&p->provider_id, id);
                if (arg_json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(p->name));
                        json_object_object_add(o, "id", json_object_new_string(id));
                        json_object_object_add(o, "type", json_object_new_string(p->type));
                        json_object_object_add(o, "description", json_object_new_string(p->description));
                        json_object_object_add(o, "supports", json_object_new_string(p->supports));
                        json_object_object_add(o, "atomic", json_object_new_boolean(p->atomic));
                        json_object_array_add(arr, o);
                } else
                        printf("Provider name: '%s'\n   Provider type: %s\n   Provider Id: {%s}\n   Description: %s\n"
                               "   Supports: %s\n   Multi-volume sets: %s\n\n",
                               p->name, p->type, id, p->description, p->supports,
                               p->atomic ? "atomic" : "not atomic (volumes cut one by one)");
        }
        json_object *volumes = arg_json && n_paths ? json_object_new_array() : NULL;
        for (size_t i = 0; i < n_paths; i++)
                if (explain_volume(a, paths[i], volumes) != EXIT_OK) {
                        json_object_put(volumes);
                        json_object_put(arr);
                        return EXIT_FAILED;
                }
        print_json_list("providers", arr, "volumes", volumes);
        return EXIT_OK;
}

static void attributes_text(uint32_t a, char *buf, size_t size) {
        snprintf(buf, size, "%s%s%s%s%s%s", a & OPENVSS_ATTR_NOT_POINT_IN_TIME ? "Not point-in-time, " : "",
                 a & OPENVSS_ATTR_NOT_ATOMIC ? "Not atomic across volumes, " : "",
                 a & VSS_VOLSNAP_ATTR_PERSISTENT ? "Persistent, " : "Auto-release, ",
                 a & VSS_VOLSNAP_ATTR_CLIENT_ACCESSIBLE ? "Client-accessible, " : "",
                 a & VSS_VOLSNAP_ATTR_NO_AUTO_RELEASE ? "No auto release, " : "",
                 a & VSS_VOLSNAP_ATTR_NO_WRITERS ? "No writers" : "Application consistent");
}

static int list_shadows(void) {
        size_t n;
        _cleanup_(admin_freep) vss_admin *a = admin_list(vss_admin_list_shadows, "list shadows", &n);
        char last_set[VSS_ID_STRING_MAX] = "", ts[32], attrs_text[128];
        char sid[VSS_ID_STRING_MAX], setid[VSS_ID_STRING_MAX];
        if (!a)
                return EXIT_FAILED;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                const vss_admin_shadow *s = vss_admin_shadow_get(a, i);
                const char *at = s->exposed_at;
                id_string(&s->shadow_id, sid);
                id_string(&s->snapshot_set_id, setid);
                if (arg_json) {
                        json_object *o = shadow_json(sid, setid, s->original_path, s->shadow_path, s->provider,
                                                     s->created_usec, s->attributes);
                        if (*at)
                                json_object_object_add(o, "exposed_at", json_object_new_string(at));
                        json_object_array_add(arr, o);
                        continue;
                }
                if (!streq(last_set, setid)) {
                        snprintf(last_set, sizeof(last_set), "%s", setid);
                        printf("Contents of shadow copy set ID: {%s}\n   Created at: %s\n", setid,
                               format_timestamp(s->created_usec, ts));
                }
                attributes_text(s->attributes, attrs_text, sizeof(attrs_text));
                printf("      Shadow Copy ID: {%s}\n         Original Volume: %s\n         Shadow Copy Volume: %s\n"
                       "         Provider: '%s'\n         Attributes: %s\n%s%s%s\n",
                       sid, s->original_path, s->shadow_path, s->provider, attrs_text,
                       *at ? "         Exposed at: " : "", at, *at ? "\n" : "");
        }
        if (!arg_json && !last_set[0])
                printf("No items found that satisfy the query.\n");
        print_json_list("shadows", arr, NULL, NULL);
        return EXIT_OK;
}

static int delete_shadows(vss_admin_delete kind, const vss_id *id) {
        _cleanup_(admin_freep) vss_admin *a = admin_open("delete shadows");
        uint32_t n;
        if (!a)
                return EXIT_FAILED;
        int32_t hr = vss_admin_delete_shadows(a, kind, id, &n);
        if (hr < 0)
                return admin_fail(a, "delete shadows", hr);
        if (arg_json)
                print_json_result("deleted", json_object_new_int64(n), NULL, NULL);
        else
                printf("Deleted %u shadow copies.\n", n);
        return EXIT_OK;
}

static int expose(const char *shadow, const char *at) {
        _cleanup_(admin_freep) vss_admin *a = admin_open(shadow ? "expose" : "unexpose");
        const char *where;
        vss_id id;
        int32_t hr;
        if (!a)
                return EXIT_FAILED;
        if (shadow) {
                (void) vss_id_from_string(shadow, &id); /* checked by main() */
                hr = vss_admin_expose(a, &id, at, &where);
        } else
                hr = vss_admin_unexpose(a, at);
        if (hr < 0)
                return admin_fail(a, shadow ? "expose" : "unexpose", hr);
        if (arg_json && shadow)
                print_json_result("shadow_id", json_object_new_string(shadow), "exposed_at", json_object_new_string(where));
        else if (arg_json)
                print_json_result("unexposed", json_object_new_string(at), NULL, NULL);
        else if (shadow)
                printf("Shadow copy {%s} exposed read-only at %s\n", shadow, where);
        else
                printf("Unexposed %s\n", at);
        return EXIT_OK;
}

/* The oldest shadow of a volume, found in the list, then deleted by id. */
static int delete_oldest(const char *path) {
        char real[4096];
        const vss_admin_shadow *best = NULL;
        size_t n;

        if (!realpath(path, real))
                snprintf(real, sizeof(real), "%s", path); /* the volume may be gone; match the name */
        _cleanup_(admin_freep) vss_admin *a = admin_list(vss_admin_list_shadows, "list shadows", &n);
        if (!a)
                return EXIT_FAILED;
        for (size_t i = 0; i < n; i++) {
                const vss_admin_shadow *s = vss_admin_shadow_get(a, i);
                if (streq(s->original_path, real) && (!best || s->created_usec < best->created_usec))
                        best = s;
        }
        if (!best) {
                char msg[sizeof(real) + 64];
                snprintf(msg, sizeof(msg), "no shadow copy of '%s' (vssadmin list shadows shows them)", real);
                return fail("delete shadows", VSS_E_OBJECT_NOT_FOUND, msg);
        }
        return delete_shadows(VSS_ADMIN_DELETE_SHADOW, &best->shadow_id);
}

static int delete_set(const vss_id *set_id) {
        _cleanup_(admin_freep) vss_admin *a = NULL;
        int r = vss_admin_new(&a);
        if (r >= 0)
                r = vss_admin_connect(a, arg_socket);
        if (r >= 0)
                r = vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_SET, set_id, NULL);
        return r;
}

/* Files a writer made after the cut (PostgreSQL's backup_label and WAL in its base-backup mode)
 * belong with the copy: a shadow copy alone does not hold them, so one copied out by another tool
 * restores wrong. Said on stderr and, with --json, in "warnings" ([{component, writer, path}]). */
static json_object *writer_files_warnings(vss_backup *b) {
        vss_backup_document *d = NULL;
        json_object *w = json_object_new_array();
        if (vss_backup_get_document(b, &d) < 0)
                return w;
        for (size_t i = 0; i < d->n_components; i++) {
                const vss_bc_component *c = &d->components[i];
                const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
                for (size_t f = 0; f < c->n_writer_files; f++) {
                        fprintf(stderr, "vssadmin: warning: component '%s' of writer '%s' needs files its writer made "
                                "after the cut (%s, to go to %s), which the shadow copy does not hold: a copy of the "
                                "shadow alone does not restore it; back it up with vssbackup backup\n",
                                c->name, wm ? wm->name : "?", c->writer_files[f].path, c->writer_files[f].destination);
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "component", json_object_new_string(c->name));
                        json_object_object_add(o, "writer", json_object_new_string(wm ? wm->name : ""));
                        json_object_object_add(o, "path", json_object_new_string(c->writer_files[f].path));
                        json_object_array_add(w, o);
                }
        }
        vss_backup_document_free(d);
        return w;
}

static int create_shadow(char **paths, size_t n_paths, const char *provider) {
        Report c = { .phases = json_object_new_array(), .json = arg_json };
        vss_id set_id = {}, shadow_ids[VSS_MAX_VOLUMES];
        BackupBatch props = {};
        char buf[VSS_ID_STRING_MAX], hex[16];
        bool committed = false;
        json_object *warnings = NULL;
        int32_t hr;

        hr = vss_backup_new(arg_socket, &c.b);
        if (hr < 0) {
                char why[1024];
                json_object_put(c.phases);
                return fail("create shadow", hr, vssd_failure_text(arg_socket, hr, why, sizeof(why)));
        }
        /* The steps no reply is waited for in between go out together (lib/backup-batch.h):
         * InitializeForBackup, SetContext, SetBackupState and GatherWriterMetadata; StartSnapshotSet
         * and the volumes. */
        if (report_step(&c, backup_begin_gather(c.b, VSS_CTX_CLIENT_ACCESSIBLE_WRITERS, VSS_BT_FULL)) &&
            report_step(&c, backup_start_set(c.b, paths, n_paths, provider, &set_id, shadow_ids))) {
                progress_status("Preparing the writers for backup...");
                if (report_step(&c, vss_backup_prepare_for_backup_sync(c.b)) && report_phase(&c, "prepare-for-backup")) {
                        progress_status("Making the shadow copies (writers frozen)...");
                        hr = vss_backup_do_snapshot_set_sync(c.b);
                        committed = hr >= 0;
                        /* Asked now, answered while the writers' status is gathered. */
                        if (committed) {
                                (void) backup_properties_ask(c.b, &props, shadow_ids, n_paths);
                                warnings = writer_files_warnings(c.b);
                        }
                        bool st_ok = report_phase(&c, "do-snapshot-set");
                        if (!committed)
                                c.error_hr = 0; /* the operation's own error names the cause */
                        if (report_step(&c, hr) && st_ok && report_step(&c, vss_backup_backup_complete_sync(c.b)))
                                report_phase(&c, "backup-complete");
                }
        }
        if (c.error_hr && committed) {
                /* A writer failed: the set is not consistent, so none of it is kept. AbortBackup
                 * no longer applies once backup-complete ran; deleting the set always does. */
                if (delete_set(&set_id) < 0)
                        fprintf(stderr, "vssadmin: warning: could not delete the failed set {%s}\n", id_string(&set_id, buf));
                committed = false;
        }

        json_object *out = json_object_new_object();
        json_object_object_add(out, "result", json_object_new_string(c.error_hr ? "failed" : "ok"));
        if (c.error_hr) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "code", json_object_new_string(hex32(c.error_hr, hex)));
                json_object_object_add(e, "name", json_object_new_string(strempty(vss_error_name(c.error_hr))));
                json_object_object_add(e, "message", json_object_new_string(c.error_msg));
                json_object_object_add(out, "error", e);
        }
        json_object_object_add(out, "snapshot_set_id",
                               vss_id_is_null(&set_id) ? NULL : json_object_new_string(id_string(&set_id, buf)));
        json_object *shadows = json_object_new_array();
        for (size_t i = 0; committed && i < n_paths; i++) {
                vss_snapshot_prop p;
                char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX], at[128];
                if (backup_properties_get(&props, i, &p) < 0 && /* asked again */
                    vss_backup_get_snapshot_properties(c.b, &shadow_ids[i], &p) < 0)
                        continue;
                id_string(&p.shadow_id, a);
                id_string(&p.snapshot_set_id, b);
                json_object_array_add(shadows, shadow_json(a, b, p.original_path, p.shadow_path, p.provider,
                                                           p.created_usec, p.attributes));
                if (!arg_json) {
                        attributes_text(p.attributes, at, sizeof(at));
                        printf("Successfully created shadow copy for '%s'\n    Shadow Copy ID: {%s}\n"
                               "    Shadow Copy Set ID: {%s}\n    Shadow Copy Volume Name: %s\n    Provider: '%s'\n"
                               "    Attributes: %s\n",
                               p.original_path, a, b, p.shadow_path, p.provider, at);
                }
        }
        json_object_object_add(out, "shadows", shadows);
        json_object_object_add(out, "phases", c.phases);
        if (warnings && json_object_array_length(warnings) > 0 && committed)
                json_object_object_add(out, "warnings", warnings);
        else
                json_object_put(warnings);
        progress_clear();
        if (arg_json)
                print_json(out);
        if (c.error_hr)
                fprintf(stderr, "vssadmin: create shadow failed: %s (%s): %s\n", strempty(vss_error_name(c.error_hr)),
                        hex32(c.error_hr, hex), c.error_msg);
        json_object_put(out);
        backup_batch_done(&props);
        vss_backup_free(c.b);
        return c.error_hr ? EXIT_FAILED : EXIT_OK;
}

/* getopt's own messages are off (opterr = 0): the one message is ours. */
static int bad_option(int argc, char *argv[], int c) {
        char buf[256];
        return vssadmin_usage("%s", bad_option_text(argc, argv, c, buf, sizeof(buf)));
}

/* `vssadmin cluster` is a program of its own, vssadmin-cluster (beside vssadmin, as in the build
 * tree, else in OPENVSS_LIBEXECDIR): its etcd client links libcurl and 30 more libraries, whose
 * loading would cost every local vssadmin command milliseconds (the create shadow benchmark). */
static int run_cluster(char *argv[]) {
        char self[PATH_MAX], path[PATH_MAX + 32];
        ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (k > 0) {
                self[k] = 0;
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        snprintf(path, sizeof(path), "%s/vssadmin-cluster", self);
                        if (access(path, X_OK) == 0)
                                execv(path, argv);
                }
        }
        execv(OPENVSS_LIBEXECDIR "/vssadmin-cluster", argv);
        fprintf(stderr, "vssadmin: cannot run %s: %s\n", OPENVSS_LIBEXECDIR "/vssadmin-cluster", strerror(errno));
        return EXIT_FAILED;
}

static const char *const commands = "list, create, delete, expose or unexpose";

static int run_expose(bool ex, const char *shadow, const char *at, bool other_options) {
        vss_id tmp;
        if (!at || (ex && !shadow) || (!ex && shadow) || other_options)
                return vssadmin_usage("%s", ex ? "expose takes --shadow ID --at DIR" : "unexpose takes --at DIR");
        if (shadow && vss_id_from_string(shadow, &tmp) < 0)
                return vssadmin_usage("'%s' is not an id", shadow);
        return expose(shadow, at);
}

int main(int argc, char *argv[]) {
        enum { OPT_FOR = 0x100, OPT_PROVIDER, OPT_SHADOW, OPT_SET, OPT_ALL, OPT_JSON, OPT_SOCKET, OPT_OLDEST, OPT_AT,
               OPT_VERSION };
        static const struct option options[] = {
                { "for", required_argument, NULL, OPT_FOR },     { "provider", required_argument, NULL, OPT_PROVIDER },
                { "shadow", required_argument, NULL, OPT_SHADOW }, { "set", required_argument, NULL, OPT_SET },
                { "all", no_argument, NULL, OPT_ALL },           { "json", no_argument, NULL, OPT_JSON },
                { "oldest", no_argument, NULL, OPT_OLDEST },     { "at", required_argument, NULL, OPT_AT },
                { "socket", required_argument, NULL, OPT_SOCKET }, { "help", no_argument, NULL, 'h' },
                { "quiet", no_argument, NULL, 'q' },             { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        char *paths[VSS_MAX_VOLUMES];
        size_t n_paths = 0;
        const char *provider = NULL, *shadow = NULL, *set = NULL, *at = NULL;
        bool all = false, oldest = false;
        vss_id tmp;
        int c;

        /* Cluster sets (issue 16) have their own options: "cluster" comes first. */
        if (argc > 1 && streq(argv[1], "cluster"))
                return run_cluster(argv + 1);
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hq", options, NULL)) >= 0) {
                switch (c) {
                case OPT_FOR:
                        if (n_paths >= VSS_MAX_VOLUMES)
                                return vssadmin_usage("at most %s --for paths", "64");
                        if (optarg[0] != '/')
                                return vssadmin_usage("--for needs an absolute path, not '%s'", optarg);
                        paths[n_paths++] = optarg;
                        break;
                case OPT_PROVIDER: provider = optarg; break;
                case OPT_SHADOW: shadow = optarg; break;
                case OPT_SET: set = optarg; break;
                case OPT_ALL: all = true; break;
                case OPT_OLDEST: oldest = true; break;
                case OPT_AT:
                        if (optarg[0] != '/')
                                return vssadmin_usage("--at needs an absolute path, not '%s'", optarg);
                        at = optarg;
                        break;
                case OPT_JSON: arg_json = true; break;
                case OPT_SOCKET: arg_socket = optarg; break;
                case 'q': arg_quiet = true; break;
                case 'h': help(); return EXIT_OK;
                case OPT_VERSION: fputs(VERSION_LINE("vssadmin"), stdout); return EXIT_OK;
                default: return bad_option(argc, argv, c);
                }
        }
        if (optind == argc)
                return vssadmin_usage("missing command: %s", commands);
        const char *verb = argv[optind];
        bool ex = streq(verb, "expose");
        if (!ex && !streq(verb, "unexpose") && !streq(verb, "list") && !streq(verb, "create") && !streq(verb, "delete"))
                return vssadmin_usage("unknown command '%s' (%s)", verb, commands);
        /* Errors only: the text that says what was done goes nowhere (JSON was asked for). */
        if (arg_quiet && !arg_json && !freopen("/dev/null", "w", stdout))
                return fail(NULL, VSS_E_UNEXPECTED, "cannot open /dev/null");
        progress_enable(!arg_quiet);
        if (ex || streq(verb, "unexpose")) {
                if (optind + 1 != argc)
                        return vssadmin_usage("%s takes no argument '%s'", verb, argv[optind + 1]);
                return run_expose(ex, shadow, at, n_paths || provider || set || all || oldest);
        }
        if (at)
                return vssadmin_usage("%s", "--at is for expose and unexpose");
        if (optind + 1 == argc)
                return vssadmin_usage("%s", streq(verb, "list")     ? "list what: writers, providers or shadows"
                                   : streq(verb, "create") ? "create what: shadow"
                                                           : "delete what: shadows");
        if (optind + 2 != argc)
                return vssadmin_usage("too many arguments: '%s'", argv[optind + 2]);
        const char *noun = argv[optind + 1];

        if (streq(verb, "list")) {
                if (streq(noun, "providers") && !(provider || shadow || set || all || oldest))
                        return list_providers(paths, n_paths);
                if (n_paths || provider || shadow || set || all || oldest)
                        return vssadmin_usage("%s", "list takes only --json (and list providers --for PATH)");
                if (streq(noun, "writers"))
                        return list_writers();
                if (streq(noun, "shadows"))
                        return list_shadows();
                return vssadmin_usage("cannot list '%s' (writers, providers or shadows)", noun);
        }
        if (streq(verb, "create")) {
                if (!streq(noun, "shadow"))
                        return vssadmin_usage("cannot create '%s' (shadow)", noun);
                if (n_paths == 0)
                        return vssadmin_usage("%s", "create shadow needs --for PATH");
                if (shadow || set || all || oldest)
                        return vssadmin_usage("%s", "create shadow takes --for, --provider and --json");
                return create_shadow(paths, n_paths, provider);
        }
        if (!streq(noun, "shadows"))
                return vssadmin_usage("cannot delete '%s' (shadows)", noun);
        if ((!!shadow + !!set + all + (n_paths > 0)) != 1)
                return vssadmin_usage("%s", "delete shadows needs exactly one of --shadow ID, --set ID, --all, --for PATH --oldest");
        if (provider || n_paths > 1 || (n_paths == 1) != oldest)
                return vssadmin_usage("%s", "delete shadows takes only --shadow, --set, --all, or --for PATH with --oldest");
        if (n_paths == 1)
                return delete_oldest(paths[0]);
        if ((shadow || set) && vss_id_from_string(shadow ? shadow : set, &tmp) < 0)
                return vssadmin_usage("'%s' is not an id", shadow ? shadow : set);
        return delete_shadows(shadow ? VSS_ADMIN_DELETE_SHADOW : set ? VSS_ADMIN_DELETE_SET : VSS_ADMIN_DELETE_ALL,
                              shadow || set ? &tmp : NULL);
}
