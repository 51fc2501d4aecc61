/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssadmin: list writers, providers and shadows; create and delete shadow copies. In the spirit
 * of Windows' vssadmin, with --json for scripts. */

#include <getopt.h>
#include <json-c/json.h>

#include <vss/backup.h>

#include "lib/client.h"
#include "tools/report.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static const char *arg_socket;
static bool arg_json;

static void help(void) {
        printf("Usage:\n"
               "  vssadmin list writers [--json]\n"
               "  vssadmin list providers [--for PATH]... [--json]\n"
               "  vssadmin list shadows [--json]\n"
               "  vssadmin create shadow --for PATH [--for PATH]... [--provider NAME] [--json]\n"
               "  vssadmin delete shadows (--shadow ID | --set ID | --all | --for PATH --oldest)\n"
               "  vssadmin expose --shadow ID --at DIR\n"
               "  vssadmin unexpose --at DIR\n"
               "\n"
               "Administers OpenVSS shadow copies through vssd.\n"
               "\n"
               "Commands:\n"
               "  list writers     each subscribed writer with its last known status, labelled with\n"
               "                   the session and time that status comes from\n"
               "  list providers   the providers compiled into vssd; with --for PATH, also whether\n"
               "                   shadow copies of PATH will be one instant (point-in-time), and why\n"
               "                   not when not\n"
               "  list shadows     every shadow copy in the registry, by snapshot set\n"
               "  create shadow    a full writer sequence (metadata, prepare for backup, do snapshot\n"
               "                   set, backup complete) making persistent shadow copies of PATHs;\n"
               "                   writer status is gathered and printed after each phase, and the\n"
               "                   set fails (nothing is kept) if any writer fails\n"
               "  delete shadows   delete one shadow copy, a whole set, all of them, or the oldest\n"
               "                   shadow copy of a volume (exposures are unmounted first)\n"
               "  expose           mount a shadow copy read-only at an existing empty directory owned\n"
               "                   by root, named without symbolic links: a bind mount of a directory\n"
               "                   or snapshot, a loop mount of an image, or the exec provider's expose\n"
               "                   command (root only)\n"
               "  unexpose         unmount the shadow copy exposed at DIR\n"
               "\n"
               "Options:\n"
               "      --for PATH       the directory (volume) to shadow; may repeat\n"
               "      --provider NAME  the provider to use (default: chosen by the path; `file`)\n"
               "      --shadow ID      a shadow copy id\n"
               "      --set ID         a snapshot set id\n"
               "      --all            every shadow copy\n"
               "      --oldest         with --for PATH: the oldest shadow copy of that volume\n"
               "      --at DIR         where to expose a shadow copy (an empty directory, no symlink),\n"
               "                       or which exposure to remove\n"
               "      --json           print JSON instead of text (ids are lowercase UUIDs, failure\n"
               "                       codes \"0x\" and 8 hex digits)\n"
               "      --socket PATH    vssd's socket (default $VSS_SOCKET, else " VSS_DEFAULT_SOCKET ")\n"
               "  -h, --help           show this help\n"
               "\n"
               "Exit status: 0 success, 1 the operation failed, 2 usage error.\n");
}

static int usage(const char *fmt, const char *arg) {
        fprintf(stderr, "vssadmin: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\nTry 'vssadmin --help'.\n");
        return EXIT_USAGE;
}

static int connect_or_fail(sd_bus **ret) {
        int r = vss_connect(arg_socket, ret);
        if (r < 0)
                fprintf(stderr, "vssadmin: cannot connect to vssd: %s\n", strerror(-r));
        return r;
}

static int bus_fail(const char *what, const sd_bus_error *e, int r) {
        int32_t hr = vss_hr_from_bus_error(e, r);
        const char *name = vss_error_name(hr);
        fprintf(stderr, "vssadmin: %s failed: %s (0x%08x): %s\n", what, name ? name : "error", (uint32_t) hr,
                e && e->message ? e->message : strerror(-r));
        return EXIT_FAILED;
}

static int list_writers(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *wid, *iid, *msg, *note, *session;
        uint32_t state;
        int32_t failure, code;
        uint64_t usec;
        char ts[32];
        int r;

        if (connect_or_fail(&bus) < 0)
                return EXIT_FAILED;
        r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ListWriters", &error, &reply, NULL);
        if (r < 0)
                return bus_fail("list writers", &error, r);
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sssuiissst)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssuiissst)", &name, &wid, &iid, &state, &failure, &code, &msg,
                                                  &note, &session, &usec)) > 0) {
                format_timestamp(usec, ts);
                if (arg_json) {
                        json_object *o = status_json(name, wid, iid, state, failure, code, msg, note);
                        json_object *asof = json_object_new_object();
                        json_object_object_add(asof, "session", isempty(session) ? NULL : json_object_new_string(session));
                        json_object_object_add(asof, "time", json_object_new_string(ts));
                        json_object_object_add(o, "as_of", asof);
                        json_object_array_add(arr, o);
                } else {
                        status_text(stdout, "", name, wid, iid, state, failure, code, msg, note);
                        if (isempty(session))
                                printf("   As of: subscription at %s (no session yet)\n\n", ts);
                        else
                                printf("   As of: session {%s} at %s\n\n", session, ts);
                }
        }
        if (r < 0) {
                json_object_put(arr);
                return bus_fail("list writers", NULL, r);
        }
        if (arg_json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "writers", arr);
                print_json(o);
                json_object_put(o);
        } else
                json_object_put(arr);
        return EXIT_OK;
}

/* Whether shadows of path will be one instant, and why not when not (ExplainVolume). */
static int explain_volume(sd_bus *bus, const char *path, json_object *out) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *prov, *why;
        int held;
        int r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ExplainVolume", &error, &reply, "s", path);
        if (r < 0)
                return bus_fail("list providers", &error, r);
        r = sd_bus_message_read(reply, "sbs", &prov, &held, &why);
        if (r < 0)
                return bus_fail("list providers", NULL, r);
        if (out) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "provider", json_object_new_string(prov));
                json_object_object_add(o, "point_in_time", json_object_new_boolean(held));
                json_object_object_add(o, "why", json_object_new_string(why));
                json_object_array_add(out, o);
        } else
                printf("Shadow copies of %s (provider '%s'): %s\n   %s\n\n", path, prov,
                       held ? "one instant" : "not point-in-time", why);
        return EXIT_OK;
}

static int list_providers(char *const *paths, size_t n_paths) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *id, *type, *desc, *what;
        int atomic;
        int r;

        if (connect_or_fail(&bus) < 0)
                return EXIT_FAILED;
        r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ListProviders", &error, &reply, NULL);
        if (r < 0)
                return bus_fail("list providers", &error, r);
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sssssb)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssssb)", &name, &id, &type, &desc, &what, &atomic)) > 0) {
                if (arg_json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "id", json_object_new_string(id));
                        json_object_object_add(o, "type", json_object_new_string(type));
                        json_object_object_add(o, "description", json_object_new_string(desc));
                        json_object_object_add(o, "supports", json_object_new_string(what));
                        json_object_object_add(o, "atomic", json_object_new_boolean(atomic));
                        json_object_array_add(arr, o);
                } else
                        printf("Provider name: '%s'\n   Provider type: %s\n   Provider Id: {%s}\n   Description: %s\n"
                               "   Supports: %s\n   Multi-volume sets: %s\n\n",
                               name, type, id, desc, what, atomic ? "atomic" : "not atomic (volumes cut one by one)");
        }
        json_object *volumes = arg_json && n_paths ? json_object_new_array() : NULL;
        for (size_t i = 0; r >= 0 && i < n_paths; i++)
                if (explain_volume(bus, paths[i], volumes) != EXIT_OK) {
                        json_object_put(volumes);
                        json_object_put(arr);
                        return EXIT_FAILED;
                }
        if (arg_json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "providers", arr);
                if (volumes)
                        json_object_object_add(o, "volumes", volumes);
                print_json(o);
                json_object_put(o);
        } else
                json_object_put(arr);
        return r < 0 ? bus_fail("list providers", NULL, r) : EXIT_OK;
}

static json_object *shadow_json(const char *sid, const char *setid, const char *orig, const char *spath,
                                const char *prov, uint64_t created, uint32_t attrs) {
        char ts[32];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "shadow_id", json_object_new_string(sid));
        json_object_object_add(o, "snapshot_set_id", json_object_new_string(setid));
        json_object_object_add(o, "original_path", json_object_new_string(orig));
        json_object_object_add(o, "shadow_path", json_object_new_string(spath));
        json_object_object_add(o, "provider", json_object_new_string(prov));
        json_object_object_add(o, "created", json_object_new_string(format_timestamp(created, ts)));
        json_object_object_add(o, "attributes", json_object_new_int64(attrs));
        json_object_object_add(o, "atomic", json_object_new_boolean(!(attrs & OPENVSS_ATTR_NOT_ATOMIC)));
        json_object_object_add(o, "point_in_time", json_object_new_boolean(!(attrs & OPENVSS_ATTR_NOT_POINT_IN_TIME)));
        json_object_object_add(o, "exposed_at", NULL); /* list shadows fills it in */
        return o;
}

static void attributes_text(uint32_t a, char *buf, size_t size) {
        snprintf(buf, size, "%s%s%s%s%s%s", a & OPENVSS_ATTR_NOT_POINT_IN_TIME ? "Not point-in-time, " : "",
                 a & OPENVSS_ATTR_NOT_ATOMIC ? "Not atomic across volumes, " : "",
                 a & VSS_VOLSNAP_ATTR_PERSISTENT ? "Persistent, " : "Auto-release, ",
                 a & VSS_VOLSNAP_ATTR_CLIENT_ACCESSIBLE ? "Client-accessible, " : "",
                 a & VSS_VOLSNAP_ATTR_NO_AUTO_RELEASE ? "No auto release, " : "",
                 a & VSS_VOLSNAP_ATTR_NO_WRITERS ? "No writers" : "Application consistent");
}

/* Where a shadow is exposed ("" when it is not), from ListExposures' reply. */
static const char *exposed_at(sd_bus_message *exposures, const char *shadow_id) {
        const char *id, *at;
        if (!exposures || sd_bus_message_rewind(exposures, true) < 0 ||
            sd_bus_message_enter_container(exposures, 'a', "(ss)") < 0)
                return "";
        while (sd_bus_message_read(exposures, "(ss)", &id, &at) > 0)
                if (streq(id, shadow_id))
                        return at;
        return "";
}

static int list_shadows(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *exposures = NULL;
        const char *sid, *setid, *orig, *spath, *prov;
        uint64_t created, reserved;
        uint32_t attrs;
        char last_set[VSS_ID_STRING_MAX] = "", ts[32], attrs_text[128];
        int r;

        if (connect_or_fail(&bus) < 0)
                return EXIT_FAILED;
        r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ListShadows", &error, &reply, NULL);
        if (r < 0)
                return bus_fail("list shadows", &error, r);
        r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ListExposures", &error, &exposures, NULL);
        if (r < 0)
                return bus_fail("list shadows", &error, r);
        json_object *arr = json_object_new_array();
        r = sd_bus_message_enter_container(reply, 'a', "(sssssttu)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssssttu)", &sid, &setid, &orig, &spath, &prov, &created,
                                                  &reserved, &attrs)) > 0) {
                const char *at = exposed_at(exposures, sid);
                if (arg_json) {
                        json_object *o = shadow_json(sid, setid, orig, spath, prov, created, attrs);
                        if (*at)
                                json_object_object_add(o, "exposed_at", json_object_new_string(at));
                        json_object_array_add(arr, o);
                        continue;
                }
                if (!streq(last_set, setid)) {
                        snprintf(last_set, sizeof(last_set), "%s", setid);
                        printf("Contents of shadow copy set ID: {%s}\n   Created at: %s\n", setid,
                               format_timestamp(created, ts));
                }
                attributes_text(attrs, attrs_text, sizeof(attrs_text));
                printf("      Shadow Copy ID: {%s}\n         Original Volume: %s\n         Shadow Copy Volume: %s\n"
                       "         Provider: '%s'\n         Attributes: %s\n%s%s%s\n",
                       sid, orig, spath, prov, attrs_text, *at ? "         Exposed at: " : "", at, *at ? "\n" : "");
        }
        if (arg_json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "shadows", arr);
                print_json(o);
                json_object_put(o);
        } else {
                if (!last_set[0] && r >= 0)
                        printf("No items found that satisfy the query.\n");
                json_object_put(arr);
        }
        return r < 0 ? bus_fail("list shadows", NULL, r) : EXIT_OK;
}

static int delete_shadows(const char *kind, const char *id) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t n;
        int r;

        if (connect_or_fail(&bus) < 0)
                return EXIT_FAILED;
        r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "DeleteShadows", &error, &reply, "ss", kind,
                               strempty(id));
        if (r < 0)
                return bus_fail("delete shadows", &error, r);
        if (sd_bus_message_read(reply, "u", &n) < 0)
                return EXIT_FAILED;
        printf("Deleted %u shadow copies.\n", n);
        return EXIT_OK;
}

static int expose(const char *shadow, const char *at) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *where;
        int r;
        if (connect_or_fail(&bus) < 0)
                return EXIT_FAILED;
        if (shadow)
                r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ExposeShadow", &error, &reply, "ss",
                                       shadow, at);
        else
                r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "UnexposeShadow", &error, NULL, "s", at);
        if (r < 0)
                return bus_fail(shadow ? "expose" : "unexpose", &error, r);
        if (shadow && sd_bus_message_read(reply, "s", &where) >= 0)
                printf("Shadow copy {%s} exposed read-only at %s\n", shadow, where);
        else if (!shadow)
                printf("Unexposed %s\n", at);
        return EXIT_OK;
}

/* The oldest shadow of a volume, found through ListShadows, then deleted by id. */
static int delete_oldest(const char *path) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *sid, *setid, *orig, *spath, *prov;
        uint64_t created, reserved, best_created = UINT64_MAX;
        uint32_t attrs;
        char real[4096], best[VSS_ID_STRING_MAX] = "";
        int r;

        if (!realpath(path, real))
                snprintf(real, sizeof(real), "%s", path); /* the volume may be gone; match the name */
        if (connect_or_fail(&bus) < 0)
                return EXIT_FAILED;
        r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ListShadows", &error, &reply, NULL);
        if (r < 0)
                return bus_fail("list shadows", &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "(sssssttu)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssssttu)", &sid, &setid, &orig, &spath, &prov, &created,
                                                  &reserved, &attrs)) > 0)
                if (streq(orig, real) && created < best_created) {
                        best_created = created;
                        snprintf(best, sizeof(best), "%s", sid);
                }
        if (r < 0)
                return bus_fail("list shadows", NULL, r);
        if (!best[0]) {
                fprintf(stderr, "vssadmin: delete shadows failed: VSS_E_OBJECT_NOT_FOUND (0x%08x): no shadow copy of '%s'\n",
                        (uint32_t) VSS_E_OBJECT_NOT_FOUND, real);
                return EXIT_FAILED;
        }
        return delete_shadows("shadow", best);
}

static int delete_set(const vss_id *set_id) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        char id[VSS_ID_STRING_MAX];
        int r = vss_connect(arg_socket, &bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "DeleteShadows", NULL, NULL, "ss", "set",
                                       vss_id_to_string(set_id, id));
        return r;
}

static int create_shadow(char **paths, size_t n_paths, const char *provider) {
        Report c = { .phases = json_object_new_array(), .json = arg_json };
        vss_id set_id = {}, shadow_ids[VSS_MAX_VOLUMES];
        char buf[VSS_ID_STRING_MAX], hex[16];
        bool committed = false;
        int32_t hr;

        hr = vss_backup_new(arg_socket, &c.b);
        if (hr < 0) {
                fprintf(stderr, "vssadmin: cannot open a session with vssd: %s (0x%08x)\n",
                        strempty(vss_error_name(hr)), (uint32_t) hr);
                json_object_put(c.phases);
                return EXIT_FAILED;
        }
        if (report_step(&c, vss_backup_initialize_for_backup(c.b)) &&
            report_step(&c, vss_backup_set_context(c.b, VSS_CTX_CLIENT_ACCESSIBLE_WRITERS)) &&
            report_step(&c, vss_backup_set_backup_state(c.b, false, false, VSS_BT_FULL, false)) &&
            report_step(&c, vss_backup_gather_writer_metadata_sync(c.b)) && report_step(&c, vss_backup_start_snapshot_set(c.b, &set_id))) {
                bool ok = true;
                for (size_t i = 0; ok && i < n_paths; i++)
                        ok = report_step(&c, vss_backup_add_to_snapshot_set(c.b, paths[i], provider, &shadow_ids[i]));
                if (ok && report_step(&c, vss_backup_prepare_for_backup_sync(c.b)) && report_phase(&c, "prepare-for-backup")) {
                        hr = vss_backup_do_snapshot_set_sync(c.b);
                        committed = hr >= 0;
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
                if (vss_backup_get_snapshot_properties(c.b, &shadow_ids[i], &p) < 0)
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
        if (arg_json)
                print_json(out);
        if (c.error_hr)
                fprintf(stderr, "vssadmin: create shadow failed: %s (%s): %s\n", strempty(vss_error_name(c.error_hr)),
                        hex32(c.error_hr, hex), c.error_msg);
        json_object_put(out);
        vss_backup_release(c.b);
        return c.error_hr ? EXIT_FAILED : EXIT_OK;
}

int main(int argc, char *argv[]) {
        enum { OPT_FOR = 0x100, OPT_PROVIDER, OPT_SHADOW, OPT_SET, OPT_ALL, OPT_JSON, OPT_SOCKET, OPT_OLDEST, OPT_AT };
        static const struct option options[] = {
                { "for", required_argument, NULL, OPT_FOR },     { "provider", required_argument, NULL, OPT_PROVIDER },
                { "shadow", required_argument, NULL, OPT_SHADOW }, { "set", required_argument, NULL, OPT_SET },
                { "all", no_argument, NULL, OPT_ALL },           { "json", no_argument, NULL, OPT_JSON },
                { "oldest", no_argument, NULL, OPT_OLDEST },     { "at", required_argument, NULL, OPT_AT },
                { "socket", required_argument, NULL, OPT_SOCKET }, { "help", no_argument, NULL, 'h' },
                {},
        };
        char *paths[VSS_MAX_VOLUMES];
        size_t n_paths = 0;
        const char *provider = NULL, *shadow = NULL, *set = NULL, *at = NULL;
        bool all = false, oldest = false;
        vss_id tmp;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case OPT_FOR:
                        if (n_paths >= VSS_MAX_VOLUMES)
                                return usage("at most %s --for paths", "64");
                        if (optarg[0] != '/')
                                return usage("--for needs an absolute path, not '%s'", optarg);
                        paths[n_paths++] = optarg;
                        break;
                case OPT_PROVIDER: provider = optarg; break;
                case OPT_SHADOW: shadow = optarg; break;
                case OPT_SET: set = optarg; break;
                case OPT_ALL: all = true; break;
                case OPT_OLDEST: oldest = true; break;
                case OPT_AT:
                        if (optarg[0] != '/')
                                return usage("--at needs an absolute path, not '%s'", optarg);
                        at = optarg;
                        break;
                case OPT_JSON: arg_json = true; break;
                case OPT_SOCKET: arg_socket = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return usage("%s", "bad option");
                }
        }
        if (optind + 1 == argc && (streq(argv[optind], "expose") || streq(argv[optind], "unexpose"))) {
                bool ex = streq(argv[optind], "expose");
                if (!at || (ex && !shadow) || (!ex && shadow) || n_paths || provider || set || all || oldest || arg_json)
                        return usage("%s", ex ? "expose takes --shadow ID --at DIR" : "unexpose takes --at DIR");
                if (shadow && vss_id_from_string(shadow, &tmp) < 0)
                        return usage("'%s' is not an id", shadow);
                return expose(shadow, at);
        }
        if (at)
                return usage("%s", "--at is for expose and unexpose");
        if (optind + 2 != argc)
                return usage("%s", argc - optind < 2 ? "missing command" : "too many arguments");
        const char *verb = argv[optind], *noun = argv[optind + 1];

        if (streq(verb, "list")) {
                if (streq(noun, "providers") && !(provider || shadow || set || all || oldest))
                        return list_providers(paths, n_paths);
                if (n_paths || provider || shadow || set || all || oldest)
                        return usage("%s", "list takes only --json (and list providers --for PATH)");
                if (streq(noun, "writers"))
                        return list_writers();
                if (streq(noun, "shadows"))
                        return list_shadows();
                return usage("cannot list '%s' (writers, providers or shadows)", noun);
        }
        if (streq(verb, "create")) {
                if (!streq(noun, "shadow"))
                        return usage("cannot create '%s' (shadow)", noun);
                if (n_paths == 0)
                        return usage("%s", "create shadow needs --for PATH");
                if (shadow || set || all || oldest)
                        return usage("%s", "create shadow takes --for, --provider and --json");
                return create_shadow(paths, n_paths, provider);
        }
        if (streq(verb, "delete")) {
                if (!streq(noun, "shadows"))
                        return usage("cannot delete '%s' (shadows)", noun);
                if ((!!shadow + !!set + all + (n_paths > 0)) != 1)
                        return usage("%s", "delete shadows needs exactly one of --shadow ID, --set ID, --all, --for PATH --oldest");
                if (provider || arg_json || n_paths > 1 || (n_paths == 1) != oldest)
                        return usage("%s", "delete shadows takes only --shadow, --set, --all, or --for PATH with --oldest");
                if (n_paths == 1)
                        return delete_oldest(paths[0]);
                if ((shadow || set) && vss_id_from_string(shadow ? shadow : set, &tmp) < 0)
                        return usage("'%s' is not an id", shadow ? shadow : set);
                return delete_shadows(shadow ? "shadow" : set ? "set" : "all", shadow ? shadow : set);
        }
        return usage("unknown command '%s'", verb);
}
