/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssadmin against the real vssd with real vss-writer-exec writers: its text and JSON formats are
 * contracts, so they are checked line by line and field by field. */

#include <json-c/json.h>
#include <limits.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "tests/harness.h"

static const char *const front[] = { "--app-level", "front-end", NULL };
static const char *const back[] = { "--app-level", "back-end", NULL };

/* JSON helpers: every lookup checks presence and type, and is safe on NULL. */

static json_object *parse_json(const char *text, const char *what) {
        json_object *o = text ? json_tokener_parse(text) : NULL;
        if (!o || !json_object_is_type(o, json_type_object)) {
                fprintf(stderr, "%s: output is not a JSON object:\n%s\n", what, text ? text : "(null)");
                test_failures++;
                json_object_put(o);
                return NULL;
        }
        return o;
}

static const char *type_name(json_type t) {
        return json_type_to_name(t);
}

static json_object *field(json_object *o, const char *key, json_type t) {
        json_object *v = NULL;
        if (!o)
                return NULL; /* the failure was reported where o was looked up */
        if (!json_object_object_get_ex(o, key, &v)) {
                fprintf(stderr, "JSON key '%s' missing in %s\n", key, json_object_to_json_string(o));
                test_failures++;
                return NULL;
        }
        if (!json_object_is_type(v, t)) {
                fprintf(stderr, "JSON key '%s' is %s, expected %s\n", key, type_name(json_object_get_type(v)),
                        type_name(t));
                test_failures++;
                return NULL;
        }
        return v;
}

static const char *fstr(json_object *o, const char *key) {
        json_object *v = field(o, key, json_type_string);
        return v ? json_object_get_string(v) : NULL;
}

static size_t alen(json_object *a) {
        return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static json_object *aget(json_object *a, size_t i) {
        return i < alen(a) ? json_object_array_get_idx(a, i) : NULL;
}

static void check_int(json_object *o, const char *key, int64_t want) {
        json_object *v = field(o, key, json_type_int);
        if (v && json_object_get_int64(v) != want) {
                fprintf(stderr, "JSON key '%s' = %lld, expected %lld\n", key, (long long) json_object_get_int64(v),
                        (long long) want);
                test_failures++;
        }
}

static bool is_uuid(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!strchr("0123456789abcdef", s[i]))
                        return false;
        }
        return true;
}

static bool is_hex32(const char *s) {
        if (!s || strlen(s) != 10 || strncmp(s, "0x", 2) != 0)
                return false;
        for (int i = 2; i < 10; i++)
                if (!strchr("0123456789abcdef", s[i]))
                        return false;
        return true;
}

#define CHECK_UUID(s)                                                                                     \
        do {                                                                                              \
                const char *_s = (s);                                                                     \
                if (!is_uuid(_s)) {                                                                       \
                        fprintf(stderr, "%s:%d: %s = \"%s\" is not a lowercase UUID\n", __FILE__, __LINE__, #s, \
                                _s ? _s : "(null)");                                                      \
                        test_failures++;                                                                  \
                }                                                                                         \
        } while (0)

/* One writer status object: every field with its type, and the values given (NULL ids: any UUID). */
static void check_status_json(json_object *o, const char *name, const char *wid, const char *iid, int state,
                              const char *failure, const char *failure_name, int app_code, const char *app_msg) {
        if (!o) {
                fprintf(stderr, "no status object for writer '%s'\n", name);
                test_failures++;
                return;
        }
        CHECK_STR(fstr(o, "name"), name);
        const char *w = fstr(o, "writer_id"), *i = fstr(o, "instance_id");
        CHECK_UUID(w);
        CHECK_UUID(i);
        if (wid)
                CHECK_STR(w, wid);
        if (iid)
                CHECK_STR(i, iid);
        check_int(o, "state", state);
        CHECK_STR(fstr(o, "state_name"), vss_writer_state_name(state));
        const char *f = fstr(o, "failure");
        CHECK(is_hex32(f));
        CHECK_STR(f, failure);
        CHECK_STR(fstr(o, "failure_name"), failure_name);
        check_int(o, "application_code", app_code);
        CHECK_STR(fstr(o, "application_message"), app_msg);
}

/* The element of array a whose key has value val. */
static json_object *find_by(json_object *a, const char *key, const char *val) {
        for (size_t i = 0; i < alen(a); i++) {
                json_object *v = NULL;
                if (json_object_object_get_ex(aget(a, i), key, &v) && json_object_is_type(v, json_type_string) &&
                    streq(json_object_get_string(v), val))
                        return aget(a, i);
        }
        return NULL;
}

/* text contains block starting at the beginning of a line. */
static bool has_block(const char *text, const char *block) {
        size_t n = strlen(block);
        for (const char *p = text; p && (p = strstr(p, block)); p++)
                if (p == text || p[-1] == '\n')
                        return n > 0;
        return false;
}

#define CHECK_BLOCK(text, block)                                                                                   \
        do {                                                                                                       \
                if (!has_block((text), (block))) {                                                                 \
                        fprintf(stderr, "%s:%d: output lacks the lines\n%s---- output ----\n%s----\n", __FILE__, \
                                __LINE__, (block), (text) ? (text) : "(null)");                                    \
                        test_failures++;                                                                           \
                }                                                                                                  \
        } while (0)

static size_t count_of(const char *text, const char *needle) {
        size_t n = 0;
        for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* Ids of a writer from a session's metadata. */
static bool writer_ids(vss_backup *b, const char *name, char wid[static VSS_ID_STRING_MAX],
                       char iid[static VSS_ID_STRING_MAX]) {
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *md = vss_backup_metadata_get(b, i);
                if (md && streq(md->name, name)) {
                        vss_id_to_string(&md->writer_id, wid);
                        vss_id_to_string(&md->instance_id, iid);
                        return true;
                }
        }
        fprintf(stderr, "no metadata for writer '%s'\n", name);
        test_failures++;
        wid[0] = iid[0] = 0;
        return false;
}

static json_object *list_json(Harness *h, const char *what) {
        char *out = NULL;
        int rc = harness_sh(h, &out, "vssadmin list %s --json", what);
        if (rc != 0) {
                fprintf(stderr, "vssadmin list %s --json exited %d\n", what, rc);
                test_failures++;
        }
        json_object *o = parse_json(out, what);
        free(out);
        return o;
}

/* list shadows --json: the array, checked to be one. Caller puts root. */
static json_object *list_shadows(Harness *h, json_object **root) {
        *root = list_json(h, "shadows");
        return field(*root, "shadows", json_type_array);
}

/* vssadmin create shadow --json for the paths (space separated, each quoted by the caller). */
static int create_json(Harness *h, json_object **ret, const char *for_args) {
        char *out = NULL;
        int rc = harness_sh(h, &out, "vssadmin create shadow %s --json 2>>%s/vssadmin-stderr", for_args, harness_dir(h));
        *ret = parse_json(out, "create shadow");
        free(out);
        return rc;
}

static void check_shadow_json(json_object *s, const char *original, const char *set_id) {
        if (!s) {
                fprintf(stderr, "no shadow object\n");
                test_failures++;
                return;
        }
        CHECK_UUID(fstr(s, "shadow_id"));
        CHECK_UUID(fstr(s, "snapshot_set_id"));
        if (set_id)
                CHECK_STR(fstr(s, "snapshot_set_id"), set_id);
        CHECK_STR(fstr(s, "original_path"), original);
        const char *sp = fstr(s, "shadow_path");
        CHECK(sp && sp[0] == '/');
        struct stat st;
        CHECK(sp && stat(sp, &st) == 0 && S_ISDIR(st.st_mode));
        CHECK_STR(fstr(s, "provider"), "file");
        const char *created = fstr(s, "created");
        CHECK(created && created[0] != 0);
}

static void test_list_writers(void) {
        Harness *h = harness_new(NULL);
        harness_writer(h, "alpha", front);
        harness_writer(h, "beta", back);
        char awid[VSS_ID_STRING_MAX], aiid[VSS_ID_STRING_MAX], bwid[VSS_ID_STRING_MAX], biid[VSS_ID_STRING_MAX];
        vss_backup *b = harness_session(h);
        CHECK(vss_backup_metadata_count(b) == 2);
        writer_ids(b, "alpha", awid, aiid);
        writer_ids(b, "beta", bwid, biid);
        vss_backup_free(b);
        CHECK(!streq(aiid, biid));

        char *out = NULL, block[1024];
        CHECK(harness_sh(h, &out, "vssadmin list writers") == 0);
        const char *names[] = { "alpha", "beta" }, *wids[] = { awid, bwid }, *iids[] = { aiid, biid };
        for (int i = 0; i < 2; i++) {
                snprintf(block, sizeof(block),
                         "Writer name: '%s'\n"
                         "   Writer Id: {%s}\n"
                         "   Writer Instance Id: {%s}\n"
                         "   State: [1] Stable\n"
                         "   Last error: No error\n",
                         names[i], wids[i], iids[i]);
                CHECK_BLOCK(out, block);
        }
        CHECK(count_of(out, "Writer name: '") == 2);
        CHECK(count_of(out, "\n   As of: ") == 2);
        free(out);

        json_object *root = list_json(h, "writers"), *ws = field(root, "writers", json_type_array);
        CHECK(alen(ws) == 2);
        for (int i = 0; i < 2; i++) {
                json_object *w = find_by(ws, "name", names[i]);
                check_status_json(w, names[i], wids[i], iids[i], VSS_WS_STABLE, "0x00000000", "S_OK", 0, "");
                json_object *asof = field(w, "as_of", json_type_object), *sess = NULL;
                CHECK(json_object_object_get_ex(asof, "session", &sess));
                CHECK(!sess || is_uuid(json_object_get_string(sess)));
                const char *t = fstr(asof, "time");
                CHECK(t && t[0] != 0);
        }
        json_object_put(root);
}

static void test_list_writers_as_of(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), path[600], sid[VSS_ID_STRING_MAX], *out = NULL;
        harness_writer(h, "w", NULL);
        harness_set(h, "w", "freeze", "fail 75 busy");

        /* The session that saw the veto, driven here through libvss. */
        vss_backup *b = harness_session(h);
        vss_id session;
        CHECK_HR(vss_backup_get_session_id(b, &session), 0);
        vss_id_to_string(&session, sid);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_WRITERERROR_RETRYABLE);

        for (int round = 0; round < 2; round++) {
                /* While the session lives, and after it was released. */
                if (round == 1)
                        b = vss_backup_free(b);
                json_object *root = list_json(h, "writers"), *ws = field(root, "writers", json_type_array);
                CHECK(alen(ws) == 1);
                json_object *w = find_by(ws, "name", "w");
                check_status_json(w, "w", NULL, NULL, VSS_WS_FAILED_AT_FREEZE, "0x800423f3", "VSS_E_WRITERERROR_RETRYABLE",
                                  75, "busy");
                json_object *asof = field(w, "as_of", json_type_object);
                CHECK_STR(fstr(asof, "session"), sid);
                const char *t = fstr(asof, "time");
                CHECK(t && t[0] != 0);
                json_object_put(root);
        }
        CHECK(harness_sh(h, &out, "vssadmin list writers") == 0);
        CHECK_BLOCK(out, "   State: [9] FailedAtFreeze\n");
        char line[200];
        snprintf(line, sizeof(line), "   As of: session {%s} at ", sid);
        CHECK_BLOCK(out, line);
        free(out);

        /* A later successful run replaces it. */
        snprintf(path, sizeof(path), "%s/ctl/w.freeze", harness_dir(h));
        CHECK(unlink(path) == 0);
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for '%s'", data) == 0);
        free(out);
        json_object *root = list_json(h, "writers"), *ws = field(root, "writers", json_type_array);
        CHECK(alen(ws) == 1);
        json_object *w = find_by(ws, "name", "w");
        check_status_json(w, "w", NULL, NULL, VSS_WS_STABLE, "0x00000000", "S_OK", 0, "");
        json_object *asof = field(w, "as_of", json_type_object);
        const char *later = fstr(asof, "session");
        CHECK_UUID(later);
        CHECK(later && !streq(later, sid));
        const char *t = fstr(asof, "time");
        CHECK(t && t[0] != 0);
        json_object_put(root);
}

static void test_list_providers(void) {
        Harness *h = harness_new(NULL);
        char *out = NULL;
        CHECK(harness_sh(h, &out, "vssadmin list providers") == 0);
        CHECK_BLOCK(out, "Provider name: 'file'\n");
        free(out);
        json_object *root = list_json(h, "providers"), *ps = field(root, "providers", json_type_array);
        CHECK(alen(ps) >= 1);
        json_object *p = find_by(ps, "name", "file");
        CHECK(p != NULL);
        const char *id = fstr(p, "id");
        CHECK_UUID(id);
        json_object_put(root);
}

static void test_create_shadow_text(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), real[PATH_MAX], line[PATH_MAX + 100], *out = NULL;
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        CHECK(realpath(data, real) != NULL);

        CHECK(harness_sh(h, &out, "vssadmin create shadow --for '%s'", data) == 0);
        snprintf(line, sizeof(line), "Successfully created shadow copy for '%s'\n", real);
        CHECK_BLOCK(out, line);
        /* Status after each phase, in order, each with both writers in their expected state. */
        static const char *const phases[] = { "prepare-for-backup", "do-snapshot-set", "backup-complete" };
        static const char *const states[] = { "      State: [1] Stable\n", "      State: [5] WaitingForBackupComplete\n",
                                              "      State: [1] Stable\n" };
        const char *pos[4] = {};
        for (int i = 0; i < 3; i++) {
                snprintf(line, sizeof(line), "Writer status after %s:\n", phases[i]);
                pos[i] = out ? strstr(out, line) : NULL;
                CHECK_BLOCK(out, line);
        }
        pos[3] = out ? strstr(out, "Successfully created shadow copy") : NULL;
        for (int i = 0; i < 3; i++) {
                if (!pos[i] || !pos[i + 1] || pos[i + 1] <= pos[i]) {
                        fprintf(stderr, "phase %s out of order\n%s", phases[i], out);
                        test_failures++;
                        continue;
                }
                char *seg = strndup(pos[i], (size_t) (pos[i + 1] - pos[i]));
                CHECK(count_of(seg, "   Writer name: 'fe'\n") == 1);
                CHECK(count_of(seg, "   Writer name: 'be'\n") == 1);
                CHECK(count_of(seg, states[i]) == 2);
                CHECK(count_of(seg, "      Last error: No error\n") == 2);
                free(seg);
        }

        /* The shadow's id and path, from the report. */
        char sid[VSS_ID_STRING_MAX] = "", spath[PATH_MAX] = "";
        const char *p = out ? strstr(out, "    Shadow Copy ID: {") : NULL;
        if (p)
                sscanf(p, "    Shadow Copy ID: {%36[0-9a-f-]}", sid);
        p = out ? strstr(out, "    Shadow Copy Volume Name: ") : NULL;
        if (p)
                sscanf(p, "    Shadow Copy Volume Name: %4095[^\n]", spath);
        CHECK_UUID(sid);
        CHECK(spath[0] == '/');
        free(out);

        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        snprintf(line, sizeof(line), "Shadow Copy ID: {%s}", sid);
        CHECK(out && strstr(out, line) != NULL);
        snprintf(line, sizeof(line), "Original Volume: %s\n", real);
        CHECK(out && strstr(out, line) != NULL);
        snprintf(line, sizeof(line), "Shadow Copy Volume: %s\n", spath);
        CHECK(out && strstr(out, line) != NULL);
        free(out);
        CHECK(harness_sh(h, NULL, "diff -r '%s' '%s'", data, spath) == 0);
        /* Make sure diff can fail: the shadow differs from a changed source. */
        CHECK(harness_sh(h, NULL, "echo changed > '%s/a.txt'; diff -r '%s' '%s' >/dev/null", data, data, spath) == 1);
}

static void test_create_shadow_json(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), real[PATH_MAX], args[PATH_MAX + 20];
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        CHECK(realpath(data, real) != NULL);
        char fwid[VSS_ID_STRING_MAX], fiid[VSS_ID_STRING_MAX], bwid[VSS_ID_STRING_MAX], biid[VSS_ID_STRING_MAX];
        vss_backup *b = harness_session(h);
        writer_ids(b, "fe", fwid, fiid);
        writer_ids(b, "be", bwid, biid);
        vss_backup_free(b);

        json_object *root = NULL;
        snprintf(args, sizeof(args), "--for '%s'", data);
        CHECK(create_json(h, &root, args) == 0);
        CHECK_STR(fstr(root, "result"), "ok");
        CHECK(root && !json_object_object_get_ex(root, "error", NULL));
        const char *set_id = fstr(root, "snapshot_set_id");
        CHECK_UUID(set_id);

        json_object *phases = field(root, "phases", json_type_array);
        static const char *const names[] = { "prepare-for-backup", "do-snapshot-set", "backup-complete" };
        static const int states[] = { VSS_WS_STABLE, VSS_WS_WAITING_FOR_BACKUP_COMPLETE, VSS_WS_STABLE };
        CHECK(alen(phases) == 3);
        for (size_t i = 0; i < 3; i++) {
                json_object *ph = aget(phases, i);
                CHECK(ph != NULL);
                CHECK_STR(fstr(ph, "phase"), names[i]);
                json_object *ws = field(ph, "writers", json_type_array);
                CHECK(alen(ws) == 2);
                check_status_json(find_by(ws, "name", "fe"), "fe", fwid, fiid, states[i], "0x00000000", "S_OK", 0, "");
                check_status_json(find_by(ws, "name", "be"), "be", bwid, biid, states[i], "0x00000000", "S_OK", 0, "");
        }

        json_object *shadows = field(root, "shadows", json_type_array);
        CHECK(alen(shadows) == 1);
        json_object *s = aget(shadows, 0);
        check_shadow_json(s, real, set_id);
        const char *sp = fstr(s, "shadow_path");
        CHECK(sp && harness_sh(h, NULL, "diff -r '%s' '%s'", data, sp) == 0);

        /* list shadows shows the very same object. */
        json_object *lroot = NULL, *list = list_shadows(h, &lroot);
        CHECK(alen(list) == 1);
        json_object *ls = s ? find_by(list, "shadow_id", fstr(s, "shadow_id")) : NULL;
        CHECK(ls != NULL);
        if (ls && s && !json_object_equal(ls, s)) {
                fprintf(stderr, "list shadows: %s\ncreate shadow: %s\n", json_object_to_json_string(ls),
                        json_object_to_json_string(s));
                test_failures++;
        }
        json_object_put(lroot);
        json_object_put(root);
}

static void check_no_shadows(Harness *h) {
        json_object *root = NULL, *list = list_shadows(h, &root);
        CHECK(list != NULL && alen(list) == 0);
        json_object_put(root);
        CHECK(harness_count_shadow_files(h) == 0);
}

/* StartSnapshotSet and every volume go to vssd together (lib/backup-batch.h): a volume it refuses
 * in the middle is the error, as if each had been sent after the other's answer; the set id is
 * told, no writer was prepared and nothing is kept. */
static void test_create_shadow_bad_volume(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), args[2 * PATH_MAX + 40], *events = NULL;
        harness_writer(h, "fe", front);
        snprintf(args, sizeof(args), "--for '%s' --for '%s/no-such-dir' --for '%s'", data, data, data);

        json_object *root = NULL;
        CHECK(create_json(h, &root, args) == 1);
        CHECK_STR(fstr(root, "result"), "failed");
        json_object *e = field(root, "error", json_type_object);
        CHECK_STR(fstr(e, "name"), "VSS_E_OBJECT_NOT_FOUND");
        const char *msg = fstr(e, "message");
        CHECK(msg && strstr(msg, "no-such-dir") != NULL && strstr(msg, "AddToSnapshotSet") == NULL);
        CHECK_UUID(fstr(root, "snapshot_set_id"));
        CHECK(alen(field(root, "phases", json_type_array)) == 0);
        CHECK(alen(field(root, "shadows", json_type_array)) == 0);
        json_object_put(root);
        check_no_shadows(h);
        events = harness_events(h, "fe");
        CHECK(events && strstr(events, "identify") != NULL && strstr(events, "prepare-backup") == NULL);
        free(events);
}

static void test_create_shadow_veto(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), args[PATH_MAX + 20], path[600], *err = NULL;
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        harness_set(h, "be", "freeze", "fail 75 busy");
        snprintf(args, sizeof(args), "--for '%s'", data);

        json_object *root = NULL;
        CHECK(create_json(h, &root, args) == 1);
        CHECK_STR(fstr(root, "result"), "failed");
        json_object *e = field(root, "error", json_type_object);
        CHECK_STR(fstr(e, "name"), "VSS_E_WRITERERROR_RETRYABLE");
        CHECK_STR(fstr(e, "code"), "0x800423f3");
        const char *msg = fstr(e, "message");
        CHECK(msg && strstr(msg, "busy") != NULL);
        CHECK_UUID(fstr(root, "snapshot_set_id"));
        json_object *shadows = field(root, "shadows", json_type_array);
        CHECK(shadows && alen(shadows) == 0);
        json_object *phases = field(root, "phases", json_type_array);
        json_object *dss = NULL;
        for (size_t i = 0; i < alen(phases); i++) {
                json_object *v = NULL;
                if (json_object_object_get_ex(aget(phases, i), "phase", &v) &&
                    streq(strempty(json_object_get_string(v)), "do-snapshot-set"))
                        dss = aget(phases, i);
                /* Nothing after a failed snapshot set. */
                CHECK(!streq(strempty(json_object_get_string(v)), "backup-complete"));
        }
        CHECK(dss != NULL);
        json_object *ws = field(dss, "writers", json_type_array);
        check_status_json(find_by(ws, "name", "be"), "be", NULL, NULL, VSS_WS_FAILED_AT_FREEZE, "0x800423f3",
                          "VSS_E_WRITERERROR_RETRYABLE", 75, "busy");
        check_status_json(find_by(ws, "name", "fe"), "fe", NULL, NULL, VSS_WS_STABLE, "0x00000000", "S_OK", 0, "");
        json_object_put(root);
        check_no_shadows(h);
        /* The failure is also told on stderr. */
        CHECK(harness_sh(h, &err, "cat %s/vssadmin-stderr", harness_dir(h)) == 0);
        CHECK(err && strstr(err, "VSS_E_WRITERERROR_RETRYABLE") != NULL);
        free(err);

        /* A veto after the snapshot: the set was made, but none of it is kept. */
        snprintf(path, sizeof(path), "%s/ctl/be.freeze", harness_dir(h));
        CHECK(unlink(path) == 0);
        harness_set(h, "be", "post-snapshot", "fail 3 oops");
        CHECK(create_json(h, &root, args) == 1);
        CHECK_STR(fstr(root, "result"), "failed");
        e = field(root, "error", json_type_object);
        CHECK_STR(fstr(e, "name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        CHECK_STR(fstr(e, "code"), "0x800423f4");
        shadows = field(root, "shadows", json_type_array);
        CHECK(shadows && alen(shadows) == 0);
        phases = field(root, "phases", json_type_array);
        CHECK(alen(phases) == 2);
        ws = field(aget(phases, 1), "writers", json_type_array);
        check_status_json(find_by(ws, "name", "be"), "be", NULL, NULL, VSS_WS_FAILED_AT_POST_SNAPSHOT, "0x800423f4",
                          "VSS_E_WRITERERROR_NONRETRYABLE", 3, "oops");
        json_object_put(root);
        check_no_shadows(h);
}

/* Deletes with vssadmin; checks exit status and, on success, the report. */
static void delete_expect(Harness *h, const char *args, int want_rc, int want_n) {
        char *out = NULL, want[64];
        int rc = harness_sh(h, &out, "vssadmin delete shadows %s 2>>%s/vssadmin-stderr", args, harness_dir(h));
        if (rc != want_rc) {
                fprintf(stderr, "vssadmin delete shadows %s exited %d, expected %d\n", args, rc, want_rc);
                test_failures++;
        }
        if (want_rc == 0) {
                snprintf(want, sizeof(want), "Deleted %d shadow copies.\n", want_n);
                CHECK_STR(out, want);
        } else
                CHECK_STR(out, "");
        free(out);
}

static const char *shadow_field(json_object *root, size_t i, const char *key) {
        return fstr(aget(field(root, "shadows", json_type_array), i), key);
}

static void test_delete_shadows(void) {
        Harness *h = harness_new(NULL);
        char *d1 = harness_make_data(h, "one"), *d2 = harness_make_data(h, "two"), args[2 * PATH_MAX], a[200];
        char d1c[PATH_MAX], d2c[PATH_MAX];
        snprintf(d1c, sizeof(d1c), "%s", d1);
        snprintf(d2c, sizeof(d2c), "%s", d2);
        harness_writer(h, "w", NULL);

        /* Two runs: one shadow in set A, two in set B. */
        json_object *ra = NULL, *rb = NULL, *lroot = NULL, *list;
        snprintf(args, sizeof(args), "--for '%s'", d1c);
        CHECK(create_json(h, &ra, args) == 0);
        snprintf(args, sizeof(args), "--for '%s' --for '%s'", d2c, d1c);
        CHECK(create_json(h, &rb, args) == 0);
        CHECK(alen(field(ra, "shadows", json_type_array)) == 1);
        CHECK(alen(field(rb, "shadows", json_type_array)) == 2);
        const char *a_shadow = shadow_field(ra, 0, "shadow_id"), *a_path = shadow_field(ra, 0, "shadow_path");
        const char *b_set = fstr(rb, "snapshot_set_id");
        const char *b_path0 = shadow_field(rb, 0, "shadow_path"), *b_path1 = shadow_field(rb, 1, "shadow_path");
        CHECK_UUID(a_shadow);
        CHECK_UUID(b_set);
        list = list_shadows(h, &lroot);
        CHECK(alen(list) == 3);
        json_object_put(lroot);

        /* By shadow id. */
        snprintf(a, sizeof(a), "--shadow %s", strempty(a_shadow));
        delete_expect(h, a, 0, 1);
        CHECK(a_path && access(a_path, F_OK) < 0);
        CHECK(b_path0 && access(b_path0, F_OK) == 0);
        list = list_shadows(h, &lroot);
        CHECK(alen(list) == 2);
        CHECK(a_shadow && find_by(list, "shadow_id", a_shadow) == NULL);
        for (size_t i = 0; i < alen(list); i++)
                CHECK_STR(fstr(aget(list, i), "snapshot_set_id"), b_set);
        json_object_put(lroot);
        /* Gone means gone. */
        delete_expect(h, a, 1, 0);

        /* By set: both of B. */
        snprintf(a, sizeof(a), "--set %s", strempty(b_set));
        delete_expect(h, a, 0, 2);
        CHECK(b_path0 && access(b_path0, F_OK) < 0);
        CHECK(b_path1 && access(b_path1, F_OK) < 0);
        check_no_shadows(h);
        delete_expect(h, a, 1, 0);

        /* --all. */
        json_object *rc1 = NULL, *rc2 = NULL;
        snprintf(args, sizeof(args), "--for '%s'", d1c);
        CHECK(create_json(h, &rc1, args) == 0);
        snprintf(args, sizeof(args), "--for '%s'", d2c);
        CHECK(create_json(h, &rc2, args) == 0);
        list = list_shadows(h, &lroot);
        CHECK(alen(list) == 2);
        json_object_put(lroot);
        CHECK(harness_count_shadow_files(h) > 0);
        delete_expect(h, "--all", 0, 2);
        check_no_shadows(h);
        const char *c1 = shadow_field(rc1, 0, "shadow_path"), *c2 = shadow_field(rc2, 0, "shadow_path");
        CHECK(c1 && access(c1, F_OK) < 0);
        CHECK(c2 && access(c2, F_OK) < 0);
        /* --all with nothing left is no error. */
        delete_expect(h, "--all", 0, 0);

        /* Unknown ids: failure, told on stderr. */
        vss_id unknown;
        char us[VSS_ID_STRING_MAX], *err = NULL;
        vss_id_new(&unknown);
        vss_id_to_string(&unknown, us);
        snprintf(a, sizeof(a), "--shadow %s", us);
        delete_expect(h, a, 1, 0);
        snprintf(a, sizeof(a), "--set %s", us);
        delete_expect(h, a, 1, 0);
        CHECK(harness_sh(h, &err, "cat %s/vssadmin-stderr", harness_dir(h)) == 0);
        CHECK(err && strstr(err, "VSS_E_OBJECT_NOT_FOUND") != NULL);
        free(err);

        check_no_shadows(h);
        json_object_put(ra);
        json_object_put(rb);
        json_object_put(rc1);
        json_object_put(rc2);
}

static void test_usage(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *out = NULL;
        vss_id x, y;
        char xs[VSS_ID_STRING_MAX], ys[VSS_ID_STRING_MAX];
        vss_id_new(&x);
        vss_id_new(&y);
        vss_id_to_string(&x, xs);
        vss_id_to_string(&y, ys);
        char bad[16][700];
        int n = 0;
        snprintf(bad[n++], 700, "%s", "");
        snprintf(bad[n++], 700, "%s", "list");
        snprintf(bad[n++], 700, "%s", "list foo");
        snprintf(bad[n++], 700, "%s", "list writers extra");
        snprintf(bad[n++], 700, "%s", "frobnicate shadows");
        snprintf(bad[n++], 700, "%s", "create shadow");
        snprintf(bad[n++], 700, "%s", "create shadow --for relative/path");
        snprintf(bad[n++], 700, "%s", "create shadows --for /tmp");
        snprintf(bad[n++], 700, "%s", "delete shadows");
        snprintf(bad[n++], 700, "delete shadows --shadow %s --set %s", xs, ys);
        snprintf(bad[n++], 700, "delete shadows --all --shadow %s", xs);
        snprintf(bad[n++], 700, "%s", "delete shadows --shadow not-a-uuid");
        snprintf(bad[n++], 700, "%s", "delete shadows --set not-a-uuid");
        snprintf(bad[n++], 700, "%s", "--bogus list writers");
        snprintf(bad[n++], 700, "%s", "list writers --bogus");
        snprintf(bad[n++], 700, "list shadows --for %s", data);
        for (int i = 0; i < n; i++) {
                /* Exit 2, a message on stderr, nothing on stdout. */
                int rc = harness_sh(h, &out, "vssadmin %s 2>&1 >/dev/null", bad[i]);
                if (rc != 2) {
                        fprintf(stderr, "vssadmin %s: exit %d, expected 2\n", bad[i], rc);
                        test_failures++;
                }
                if (!out || !strstr(out, "vssadmin: ")) {
                        fprintf(stderr, "vssadmin %s: no message on stderr (got \"%s\")\n", bad[i], out ? out : "");
                        test_failures++;
                }
                free(out);
                CHECK(harness_sh(h, &out, "vssadmin %s 2>/dev/null", bad[i]) == 2);
                if (out && out[0]) {
                        fprintf(stderr, "vssadmin %s: unexpected stdout \"%s\"\n", bad[i], out);
                        test_failures++;
                }
                free(out);
        }
        /* Nothing was done by any of them. */
        CHECK(harness_count_shadow_files(h) == 0);

        CHECK(harness_sh(h, &out, "vssadmin --help") == 0);
        static const char *const commands[] = { "list writers", "list providers", "list shadows", "create shadow",
                                                "delete shadows", "--for", "--provider", "--shadow", "--set",
                                                "--all", "--json" };
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (!out || !strstr(out, commands[i])) {
                        fprintf(stderr, "vssadmin --help does not mention '%s'\n", commands[i]);
                        test_failures++;
                }
        free(out);
        CHECK(harness_sh(h, &out, "vssadmin -h") == 0);
        CHECK(out && strstr(out, "delete shadows") != NULL);
        free(out);
}

static const TestCase cases[] = {
        { "list-writers", test_list_writers },
        { "list-writers-as-of", test_list_writers_as_of },
        { "list-providers", test_list_providers },
        { "create-shadow-text", test_create_shadow_text },
        { "create-shadow-json", test_create_shadow_json },
        { "create-shadow-veto", test_create_shadow_veto },
        { "create-shadow-bad-volume", test_create_shadow_bad_volume },
        { "delete-shadows", test_delete_shadows },
        { "usage", test_usage },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
