/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <time.h>

#include <systemd/sd-id128.h>

#include "lib/basic/sha1.h"
#include "lib/common.h"

static_assert(sizeof(vss_id) == sizeof(sd_id128_t), "vss_id and sd_id128_t share a layout");

VSS_EXPORT bool vss_id_is_null(const vss_id *id) {
        static const vss_id null = {};
        return !id || memcmp(id, &null, sizeof(null)) == 0;
}

VSS_EXPORT bool vss_id_equal(const vss_id *a, const vss_id *b) {
        return memcmp(a, b, sizeof(*a)) == 0;
}

VSS_EXPORT char *vss_id_to_string(const vss_id *id, char buf[static VSS_ID_STRING_MAX]) {
        const uint8_t *b = id->bytes;
        snprintf(buf, VSS_ID_STRING_MAX,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
        return buf;
}

VSS_EXPORT int vss_id_from_string(const char *s, vss_id *ret) {
        char buf[VSS_ID_STRING_MAX];
        size_t n;
        sd_id128_t id;

        if (!s)
                return VSS_E_INVALIDARG;
        n = strlen(s);
        /* Accept "{uuid}" as Windows prints it. */
        if (n == 38 && s[0] == '{' && s[37] == '}') {
                memcpy(buf, s + 1, 36);
                buf[36] = 0;
                s = buf;
                n = 36;
        }
        if (n != 36 || sd_id128_from_string(s, &id) < 0)
                return VSS_E_INVALIDARG;
        memcpy(ret->bytes, id.bytes, sizeof(ret->bytes));
        return 0;
}

VSS_EXPORT int vss_id_new(vss_id *ret) {
        sd_id128_t id;
        int r = sd_id128_randomize(&id);
        if (r < 0)
                return vss_hr_from_errno(r);
        memcpy(ret->bytes, id.bytes, sizeof(ret->bytes));
        return 0;
}

/* The namespace of writer class ids: uuid5(NAMESPACE_URL, "urn:openvss:writer-class"), as
 * README documents, so any language derives the same id from a name. */
static const vss_id writer_class_namespace = { {
        0xe2, 0x46, 0x6c, 0xdd, 0x02, 0xd9, 0x58, 0xbb, 0xa3, 0x06, 0xd2, 0xcf, 0x7a, 0x0a, 0xc0, 0x2d,
} };

void vss_id_from_name(const char *name, vss_id *ret) {
        /* RFC 4122 version 5: SHA-1 over the namespace and the name's bytes (UTF-8 as given). */
        uint8_t digest[SHA1_DIGEST_SIZE];
        sha1_ctx c;
        sha1_init(&c);
        sha1_update(&c, writer_class_namespace.bytes, sizeof(writer_class_namespace.bytes));
        sha1_update(&c, name, strlen(name));
        sha1_final(&c, digest);
        memcpy(ret->bytes, digest, sizeof(ret->bytes));
        ret->bytes[6] = (ret->bytes[6] & 0x0f) | 0x50;
        ret->bytes[8] = (ret->bytes[8] & 0x3f) | 0x80;
}

static const char *const state_names[_VSS_WS_MAX] = {
        [VSS_WS_UNKNOWN] = "Unknown",
        [VSS_WS_STABLE] = "Stable",
        [VSS_WS_WAITING_FOR_FREEZE] = "WaitingForFreeze",
        [VSS_WS_WAITING_FOR_THAW] = "WaitingForThaw",
        [VSS_WS_WAITING_FOR_POST_SNAPSHOT] = "WaitingForPostSnapshot",
        [VSS_WS_WAITING_FOR_BACKUP_COMPLETE] = "WaitingForBackupComplete",
        [VSS_WS_FAILED_AT_IDENTIFY] = "FailedAtIdentify",
        [VSS_WS_FAILED_AT_PREPARE_BACKUP] = "FailedAtPrepareBackup",
        [VSS_WS_FAILED_AT_PREPARE_SNAPSHOT] = "FailedAtPrepareSnapshot",
        [VSS_WS_FAILED_AT_FREEZE] = "FailedAtFreeze",
        [VSS_WS_FAILED_AT_THAW] = "FailedAtThaw",
        [VSS_WS_FAILED_AT_POST_SNAPSHOT] = "FailedAtPostSnapshot",
        [VSS_WS_FAILED_AT_BACKUP_COMPLETE] = "FailedAtBackupComplete",
        [VSS_WS_FAILED_AT_PRE_RESTORE] = "FailedAtPreRestore",
        [VSS_WS_FAILED_AT_POST_RESTORE] = "FailedAtPostRestore",
        [VSS_WS_FAILED_AT_BACKUP_SHUTDOWN] = "FailedAtBackupShutdown",
};

VSS_EXPORT const char *vss_writer_state_name(vss_writer_state s) {
        return (unsigned) s < _VSS_WS_MAX ? state_names[s] : NULL;
}

static const char *const event_names[_VSS_EVENT_MAX] = {
        [VSS_EVENT_IDENTIFY] = "identify",
        [VSS_EVENT_PREPARE_BACKUP] = "prepare-backup",
        [VSS_EVENT_PREPARE_SNAPSHOT] = "prepare-snapshot",
        [VSS_EVENT_FREEZE] = "freeze",
        [VSS_EVENT_THAW] = "thaw",
        [VSS_EVENT_POST_SNAPSHOT] = "post-snapshot",
        [VSS_EVENT_ABORT] = "abort",
        [VSS_EVENT_BACKUP_COMPLETE] = "backup-complete",
        [VSS_EVENT_BACKUP_SHUTDOWN] = "backup-shutdown",
        [VSS_EVENT_PRE_RESTORE] = "pre-restore",
        [VSS_EVENT_POST_RESTORE] = "post-restore",
};

VSS_EXPORT const char *vss_event_name(vss_event e) {
        return (unsigned) e < _VSS_EVENT_MAX ? event_names[e] : NULL;
}

VSS_EXPORT int vss_event_from_name(const char *name) {
        for (size_t i = 0; name && i < _VSS_EVENT_MAX; i++)
                if (streq(event_names[i], name))
                        return (int) i;
        return -1;
}

static const char *const backup_type_names[] = {
        [VSS_BT_UNDEFINED] = "undefined", [VSS_BT_FULL] = "full",   [VSS_BT_INCREMENTAL] = "incremental",
        [VSS_BT_DIFFERENTIAL] = "differential", [VSS_BT_LOG] = "log", [VSS_BT_COPY] = "copy",
        [VSS_BT_OTHER] = "other",
};

VSS_EXPORT const char *vss_backup_type_name(vss_backup_type t) {
        return (unsigned) t < ELEMENTSOF(backup_type_names) ? backup_type_names[t] : NULL;
}

static const struct {
        int32_t hr;
        const char *name;
        const char *text;
} errors[] = {
        { VSS_S_OK, "S_OK", "No error" },
        { VSS_S_ASYNC_PENDING, "VSS_S_ASYNC_PENDING", "The operation is still running" },
        { VSS_S_ASYNC_FINISHED, "VSS_S_ASYNC_FINISHED", "The operation finished" },
        { VSS_S_ASYNC_CANCELLED, "VSS_S_ASYNC_CANCELLED", "The operation was cancelled" },
        { VSS_E_UNEXPECTED, "E_UNEXPECTED", "Unexpected failure" },
        { VSS_E_ABORT, "E_ABORT", "The operation was aborted" },
        { VSS_E_ACCESSDENIED, "E_ACCESSDENIED", "Access denied" },
        { VSS_E_OUTOFMEMORY, "E_OUTOFMEMORY", "Out of memory" },
        { VSS_E_INVALIDARG, "E_INVALIDARG", "Invalid argument" },
        { VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT, "VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT",
          "The shadow copy set lacks volumes the writer's components need" },
        { VSS_E_WRITERERROR_OUTOFRESOURCES, "VSS_E_WRITERERROR_OUTOFRESOURCES",
          "The writer ran out of memory or other resources" },
        { VSS_E_WRITERERROR_TIMEOUT, "VSS_E_WRITERERROR_TIMEOUT", "The Freeze to Thaw window was exceeded" },
        { VSS_E_WRITERERROR_RETRYABLE, "VSS_E_WRITERERROR_RETRYABLE", "Transient writer error, retry the operation" },
        { VSS_E_WRITERERROR_NONRETRYABLE, "VSS_E_WRITERERROR_NONRETRYABLE", "Non-retryable writer error" },
        { VSS_E_WRITERERROR_RECOVERY_FAILED, "VSS_E_WRITERERROR_RECOVERY_FAILED",
          "Auto-recovery of the shadow copy failed" },
        { VSS_E_WRITERERROR_PARTIAL_FAILURE, "VSS_E_WRITERERROR_PARTIAL_FAILURE",
          "Some components failed, see the components" },
        { VSS_E_WRITER_NOT_RESPONDING, "VSS_E_WRITER_NOT_RESPONDING", "The writer is not responding" },
        { VSS_E_WRITER_STATUS_NOT_AVAILABLE, "VSS_E_WRITER_STATUS_NOT_AVAILABLE",
          "No status is available for this writer" },
        { VSS_E_BAD_STATE, "VSS_E_BAD_STATE", "The call is not valid in the session's state" },
        { VSS_E_PROVIDER_VETO, "VSS_E_PROVIDER_VETO", "The provider vetoed the operation" },
        { VSS_E_OBJECT_NOT_FOUND, "VSS_E_OBJECT_NOT_FOUND", "Object not found" },
        { VSS_E_VOLUME_NOT_SUPPORTED, "VSS_E_VOLUME_NOT_SUPPORTED", "No provider supports this volume" },
        { VSS_E_OBJECT_ALREADY_EXISTS, "VSS_E_OBJECT_ALREADY_EXISTS", "The object already exists" },
        { VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER",
          "The provider named does not support this volume" },
        { VSS_E_INVALID_XML_DOCUMENT, "VSS_E_INVALID_XML_DOCUMENT", "The document could not be loaded" },
        { VSS_E_UNEXPECTED_PROVIDER_ERROR, "VSS_E_UNEXPECTED_PROVIDER_ERROR", "The provider failed" },
        { VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED, "VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED",
          "Too many volumes in the snapshot set" },
        { VSS_E_FLUSH_WRITES_TIMEOUT, "VSS_E_FLUSH_WRITES_TIMEOUT", "Flushing writes timed out" },
        { VSS_E_HOLD_WRITES_TIMEOUT, "VSS_E_HOLD_WRITES_TIMEOUT", "Holding writes timed out" },
        { VSS_E_SNAPSHOT_SET_IN_PROGRESS, "VSS_E_SNAPSHOT_SET_IN_PROGRESS",
          "Another snapshot set is being created" },
        { VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED, "VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED",
          "Too many shadow copies" },
        { VSS_E_WRITER_INFRASTRUCTURE, "VSS_E_WRITER_INFRASTRUCTURE", "The shadow copy infrastructure failed" },
        { VSS_E_INSUFFICIENT_STORAGE, "VSS_E_INSUFFICIENT_STORAGE", "Not enough storage for the shadow copy" },
};

VSS_EXPORT const char *vss_error_name(int32_t hr) {
        for (size_t i = 0; i < ELEMENTSOF(errors); i++)
                if (errors[i].hr == hr)
                        return errors[i].name;
        return NULL;
}

VSS_EXPORT const char *vss_strerror(int32_t hr) {
        for (size_t i = 0; i < ELEMENTSOF(errors); i++)
                if (errors[i].hr == hr)
                        return errors[i].text;
        return "Unknown error";
}

VSS_EXPORT int32_t vss_error_from_name(const char *name) {
        for (size_t i = 0; name && i < ELEMENTSOF(errors); i++)
                if (streq(errors[i].name, name))
                        return errors[i].hr;
        return 0;
}

int32_t vss_hr_from_errno(int r) {
        switch (r < 0 ? -r : r) {
        case 0: return VSS_S_OK;
        case ENOMEM: return VSS_E_OUTOFMEMORY;
        case EINVAL: return VSS_E_INVALIDARG;
        case EACCES: case EPERM: return VSS_E_ACCESSDENIED;
        case ENOENT: case ENXIO: return VSS_E_OBJECT_NOT_FOUND;
        case ENOSPC: case EDQUOT: return VSS_E_INSUFFICIENT_STORAGE;
        case ETIMEDOUT: return VSS_E_WRITER_NOT_RESPONDING;
        case ECONNREFUSED: case ECONNRESET: case ENOTCONN: case EPIPE: return VSS_E_WRITER_INFRASTRUCTURE;
        default: return VSS_E_UNEXPECTED;
        }
}

static size_t utf8_char_len(const unsigned char *p) {
        size_t n;
        unsigned c = p[0];
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef)
                n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
                n = 4;
        else
                return 0;
        for (size_t i = 1; i < n; i++)
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
        /* Overlong, surrogate and out-of-range forms. */
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
            (c == 0xf4 && p[1] > 0x8f))
                return 0;
        return n;
}

void utf8_copy(char *dst, size_t size, const char *src) {
        /* Messages are one line of text for logs and terminals: control characters become spaces. */
        size_t o = 0;
        const unsigned char *p = (const unsigned char *) strempty(src);
        if (size == 0)
                return;
        while (*p) {
                size_t n = utf8_char_len(p);
                if (n == 0) {
                        if (o + 1 >= size)
                                break;
                        dst[o++] = '?';
                        p++;
                        continue;
                }
                if (o + n >= size)
                        break;
                memcpy(dst + o, p, n);
                if (control_len((const char *) p) == n)
                        memset(dst + o, ' ', n);
                o += n;
                p += n;
        }
        dst[o] = 0;
}
