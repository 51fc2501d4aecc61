/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssd's configuration (daemon/config.c) without a daemon: the strict JSON layer it goes through
 * (a key twice, too deep), and the exec providers it names, held by the Config (then by its
 * Manager), not by a table of the process. */

#include <stdlib.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/common.h"
#include "tests/check.h"

int test_failures;
static char dir[] = "/tmp/test-config-XXXXXX";

/* Loads text as a config file: the result, the error message in *ret_error (or NULL). */
static int load(const char *text, Config *c, char **ret_error) {
        char path[64];
        snprintf(path, sizeof(path), "%s/vssd.json", dir);
        FILE *f = fopen(path, "we");
        CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
        return config_load(c, path, ret_error);
}

static void test_repeated_key(void) {
        Config c;
        char *error = NULL;
        CHECK(load("{\"hold_window_ms\": 5000, \"hold_window_ms\": 6000}", &c, &error) == -EINVAL);
        CHECK(error && strstr(error, "hold_window_ms: repeated key"));
        free(error);
        CHECK(load("{\"rights\": {\"list\": [\"root\"], \"list\": [\"root\"]}}", &c, &error) == -EINVAL);
        CHECK(error && strstr(error, "rights.list: repeated key"));
        free(error);
        /* The same key in two objects is no repetition. */
        CHECK(load("{\"timeouts\": {\"status_ms\": 5000}, \"rights\": {\"list\": [\"root\"]}, "
                   "\"providers\": [{\"type\": \"exec\", \"name\": \"a\", \"create\": \"true\", \"delete\": \"true\"},"
                   " {\"type\": \"exec\", \"name\": \"b\", \"create\": \"true\", \"delete\": \"true\"}]}",
                   &c, &error) == 0);
        CHECK(error == NULL);
        CHECK(c.timeouts.status_ms == 5000);
        config_done(&c);
}

static void test_bad_documents(void) {
        Config c;
        char *error = NULL;
        /* Deeper than the strict layer allows (16). */
        CHECK(load("{\"rights\": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}", &c, &error) == -EINVAL);
        CHECK(error && strstr(error, "cannot read or parse"));
        free(error);
        CHECK(load("[1, 2]", &c, &error) == -EINVAL);
        CHECK(error && strstr(error, ": must be a JSON object"));
        free(error);
        CHECK(load("{\"hold_window_ms\": 5000} {}", &c, &error) == -EINVAL);
        CHECK(error && strstr(error, "cannot read or parse"));
        free(error);
        CHECK(load("{\"hold_window_ms\": 0}", &c, &error) == -EINVAL);
        CHECK_STR(error, "hold_window_ms: must be an integer from 1 to 600000");
        free(error);
        CHECK(load("{\"max_queued_messages\": 17, \"file_storage_budget_bytes\": 0}", &c, &error) == 0);
        CHECK(c.max_queued_messages == 17 && c.file_budget_bytes == 0);
        config_done(&c);
}

/* Two configurations, two sets of exec providers: nothing is shared through the process. */
static void test_providers_owned(void) {
        Config a, b;
        char *error = NULL;
        size_t builtin = providers_count(NULL);
        CHECK(load("{\"providers\": [{\"type\": \"exec\", \"name\": \"snap\", \"create\": \"true\", \"delete\": \"true\"}]}",
                   &a, &error) == 0);
        CHECK(load("{}", &b, &error) == 0);
        CHECK(providers_count(&a.providers) == builtin + 1);
        CHECK(providers_count(&b.providers) == builtin);
        const Provider *p = provider_find(&a.providers, "snap");
        CHECK(p && p->hold && p->named_only && !p->estimate);
        CHECK(provider_find(&b.providers, "snap") == NULL);
        /* The file provider's shadows take storage the budget counts; btrfs snapshots do not. */
        CHECK(provider_find(&b.providers, "file") && provider_find(&b.providers, "file")->estimate);
        CHECK(provider_find(&b.providers, "btrfs") && !provider_find(&b.providers, "btrfs")->estimate);
        config_done(&b);
        CHECK(load("{\"providers\": [{\"type\": \"exec\", \"name\": \"file\", \"create\": \"true\", \"delete\": \"true\"}]}",
                   &b, &error) == -EINVAL);
        CHECK(error && strstr(error, "'file' exists already"));
        free(error);
        config_done(&a);
        CHECK(providers_count(&a.providers) == builtin);
}

int main(void) {
        if (!mkdtemp(dir))
                return 1;
        test_repeated_key();
        test_bad_documents();
        test_providers_owned();
        char path[64];
        snprintf(path, sizeof(path), "%s/vssd.json", dir);
        (void) unlink(path);
        (void) rmdir(dir);
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
