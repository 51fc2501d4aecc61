/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Jobs of vssd's helper programs (helper-job.h). */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/helper-job.h"
#include "lib/basic/fd-util.h"
#include "lib/basic/macro.h"

void job_put(FILE *f, const char *key, const char *value) {
        fputs(key, f);
        fputc(0, f);
        fputs(value ? value : "", f);
        fputc(0, f);
}

void job_put_u64(FILE *f, const char *key, uint64_t v) {
        char b[32];
        snprintf(b, sizeof(b), "%" PRIu64, v);
        job_put(f, key, b);
}

void job_put_exec(FILE *f, const Providers *ps) {
        for (size_t i = 0; i < ps->n_exec; i++) {
                const Provider *p = &ps->exec[i];
                job_put(f, "exec", p->name);
                job_put(f, "exec_create", p->create_cmd);
                job_put(f, "exec_delete", p->delete_cmd);
                if (p->expose_cmd)
                        job_put(f, "exec_expose", p->expose_cmd);
        }
}

int job_close(FILE *f, char **ret) {
        if (fclose(f) != 0) {
                free(*ret);
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

int job_memfd(const char *buf, size_t len) {
        int fd = memfd_create("vssd-job", MFD_CLOEXEC);
        int r = fd < 0 ? -errno : write_all(fd, buf, len);
        if (r >= 0 && lseek(fd, 0, SEEK_SET) < 0)
                r = -errno;
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return fd;
}

int job_parse(int fd, int (*set)(void *userdata, const char *key, const char *value), void *userdata) {
        char *buf = NULL;
        size_t len = 0;
        int r = read_all(fd, JOB_MAX, &buf, &len);
        if (r < 0)
                return r;
        for (size_t at = 0; at < len && r >= 0;) {
                const char *k = buf + at;
                size_t kl = strnlen(k, len - at);
                if (at + kl + 1 >= len) {
                        r = -EINVAL;
                        break;
                }
                const char *v = k + kl + 1;
                size_t vl = strnlen(v, len - (at + kl + 1));
                if (at + kl + 1 + vl >= len) {
                        r = -EINVAL;
                        break;
                }
                r = set(userdata, k, v);
                at += kl + 1 + vl + 1;
        }
        free(buf);
        return r < 0 ? r : 0;
}

int job_set_exec(Providers *ps, const char *k, const char *v) {
        Provider *px = ps->n_exec > 0 ? &ps->exec[ps->n_exec - 1] : NULL;
        const char **field = NULL;
        if (streq(k, "exec")) {
                /* Its commands follow. */
                int r = providers_add_exec(ps, v, "", "", NULL);
                return r < 0 ? r : 1;
        }
        if (px && streq(k, "exec_create"))
                field = &px->create_cmd;
        else if (px && streq(k, "exec_delete"))
                field = &px->delete_cmd;
        else if (px && streq(k, "exec_expose"))
                field = &px->expose_cmd;
        if (!field)
                return 0;
        char *copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        free((char *) *field);
        *field = copy;
        return 1;
}
