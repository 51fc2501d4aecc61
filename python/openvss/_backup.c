/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* openvss._vss.BackupHandle: the requester face, one session in vssd. Long operations are the
 * _sync forms, run without the GIL. */

#include "_vss.h"

typedef struct {
        PyObject_HEAD
        vss_backup *b;
        bool busy;
} BackupObject;

static bool usable(BackupObject *self) {
        if (!self->b) {
                PyErr_SetString(PyExc_ValueError, "the backup session is closed");
                return false;
        }
        return vss_py_enter(&self->busy) == 0;
}

static PyObject *done(BackupObject *self, int r) {
        self->busy = false;
        if (PyErr_CheckSignals() < 0)
                return NULL;
        return vss_py_result(r, vss_backup_errmsg(self->b));
}

static int backup_init(BackupObject *self, PyObject *args, PyObject *kw) {
        static char *kwlist[] = { "socket", NULL };
        const char *socket = NULL;
        int r;
        if (self->b) {
                PyErr_SetString(PyExc_RuntimeError, "BackupHandle initialized twice");
                return -1;
        }
        if (!PyArg_ParseTupleAndKeywords(args, kw, "|z", kwlist, &socket))
                return -1;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_new(socket, &self->b);
        Py_END_ALLOW_THREADS
        if (r < 0) {
                vss_py_raise(r, r == VSS_E_WRITER_INFRASTRUCTURE ? "vssd cannot be reached" : NULL);
                return -1;
        }
        return 0;
}

static void close_now(BackupObject *self) {
        vss_backup *b = self->b;
        self->b = NULL;
        if (b) {
                /* Release waits for the writers' BackupShutdown. */
                Py_BEGIN_ALLOW_THREADS
                vss_backup_free(b);
                Py_END_ALLOW_THREADS
        }
}

static void backup_dealloc(BackupObject *self) {
        close_now(self);
        Py_TYPE(self)->tp_free((PyObject *) self);
}

static PyObject *backup_close(BackupObject *self, PyObject *unused) {
        if (self->busy) {
                PyErr_SetString(PyExc_RuntimeError, "the backup session is in use");
                return NULL;
        }
        close_now(self);
        Py_RETURN_NONE;
}

/* The calls taking only the handle: phases (sync) and abort, without the GIL. */
static PyObject *call(BackupObject *self, int (*fn)(vss_backup *)) {
        int r;
        if (!usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = fn(self->b);
        Py_END_ALLOW_THREADS
        return done(self, r);
}

static PyObject *backup_initialize_for_backup(BackupObject *self, PyObject *unused) {
        return call(self, vss_backup_initialize_for_backup);
}
static PyObject *backup_abort_backup(BackupObject *self, PyObject *unused) {
        return call(self, vss_backup_abort_backup);
}

/* The long operations, as vss_async handles: openvss waits in slices, so Ctrl-C can cancel. */
typedef struct {
        PyObject_HEAD
        vss_async *a;
        BackupObject *backup; /* kept alive: the operation runs on its connection */
} AsyncObject;

static const struct {
        const char *name;
        int (*start)(vss_backup *, vss_async **);
} operations[] = {
        { "gather_writer_metadata", vss_backup_gather_writer_metadata },
        { "prepare_for_backup", vss_backup_prepare_for_backup },
        { "do_snapshot_set", vss_backup_do_snapshot_set },
        { "backup_complete", vss_backup_backup_complete },
        { "pre_restore", vss_backup_pre_restore },
        { "post_restore", vss_backup_post_restore },
        { "gather_writer_status", vss_backup_gather_writer_status },
};

/* The AsyncHandle of an operation started with result r. */
static PyObject *async_new(BackupObject *self, int r, vss_async *a) {
        self->busy = false;
        if (r < 0)
                return vss_py_raise(r, vss_backup_errmsg(self->b));
        AsyncObject *o = PyObject_New(AsyncObject, &vss_py_async_type);
        if (!o) {
                vss_async_free(a);
                return NULL;
        }
        o->a = a;
        o->backup = (BackupObject *) Py_NewRef(self);
        return (PyObject *) o;
}

static PyObject *backup_begin(BackupObject *self, PyObject *args) {
        const char *name;
        vss_async *a = NULL;
        int (*start)(vss_backup *, vss_async **) = NULL;
        int r;
        if (!PyArg_ParseTuple(args, "s", &name))
                return NULL;
        for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++)
                if (strcmp(operations[i].name, name) == 0)
                        start = operations[i].start;
        if (!start)
                return PyErr_Format(PyExc_ValueError, "no operation %s", name);
        if (!usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = start(self->b, &a);
        Py_END_ALLOW_THREADS
        return async_new(self, r, a);
}

/* begin_paused(flags): do_snapshot_set pausing at the points in flags (VSS_PAUSE_*). */
static PyObject *backup_begin_paused(BackupObject *self, PyObject *args) {
        unsigned int flags;
        vss_async *a = NULL;
        int r;
        if (!PyArg_ParseTuple(args, "I", &flags) || !usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_do_snapshot_set_paused(self->b, flags, &a);
        Py_END_ALLOW_THREADS
        return async_new(self, r, a);
}

/* wait_paused(timeout_ms=-1): (point, usec_left) once paused or ended (point 0); None when the
 * timeout passed first. */
static PyObject *backup_wait_paused(BackupObject *self, PyObject *args) {
        int timeout_ms = -1, r;
        uint32_t point = 0;
        uint64_t left = 0;
        if (!PyArg_ParseTuple(args, "|i", &timeout_ms) || !usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_wait_paused(self->b, timeout_ms, &point, &left);
        Py_END_ALLOW_THREADS
        if (r == VSS_S_ASYNC_PENDING) {
                self->busy = false;
                if (PyErr_CheckSignals() < 0)
                        return NULL;
                Py_RETURN_NONE;
        }
        PyObject *result = done(self, r);
        if (!result)
                return NULL;
        Py_DECREF(result);
        return Py_BuildValue("(IK)", (unsigned int) point, (unsigned long long) left);
}

static PyObject *backup_continue_snapshot_set(BackupObject *self, PyObject *unused) {
        return call(self, vss_backup_continue_snapshot_set);
}

static void async_dealloc(AsyncObject *self) {
        vss_async_free(self->a);
        Py_XDECREF(self->backup);
        PyObject_Free(self);
}

/* True when finished, False when timeout_ms passed first; raises its failure, or VSS_E_ABORT
 * when it was cancelled. */
static PyObject *async_wait(AsyncObject *self, PyObject *args) {
        int timeout_ms = -1, r;
        if (!PyArg_ParseTuple(args, "|i", &timeout_ms) || vss_py_enter(&self->backup->busy) < 0)
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_async_wait(self->a, timeout_ms);
        Py_END_ALLOW_THREADS
        if (r == VSS_S_ASYNC_PENDING) {
                self->backup->busy = false;
                if (PyErr_CheckSignals() < 0)
                        return NULL;
                Py_RETURN_FALSE;
        }
        if (r == VSS_S_ASYNC_CANCELLED) {
                /* Not finished: Python callers get an exception, as for any other end but success. */
                self->backup->busy = false;
                return vss_py_raise(VSS_E_ABORT, "the operation was cancelled");
        }
        PyObject *result = done(self->backup, r);
        if (!result)
                return NULL;
        Py_DECREF(result);
        Py_RETURN_TRUE;
}

/* query and cancel: the code as libvss returns it (VSS_S_ASYNC_*, 0 or a failure). */
static PyObject *async_code(AsyncObject *self, int (*fn)(vss_async *)) {
        if (vss_py_enter(&self->backup->busy) < 0)
                return NULL;
        int r;
        /* cancel may wait for an operation that cannot be cancelled: other threads run meanwhile. */
        Py_BEGIN_ALLOW_THREADS
        r = fn(self->a);
        Py_END_ALLOW_THREADS
        self->backup->busy = false;
        return PyLong_FromLong(r);
}
static PyObject *async_query(AsyncObject *self, PyObject *unused) { return async_code(self, vss_async_query); }
static PyObject *async_cancel(AsyncObject *self, PyObject *unused) { return async_code(self, vss_async_cancel); }

static PyMethodDef async_methods[] = {
        { "wait", (PyCFunction) async_wait, METH_VARARGS, "wait(timeout_ms=-1): True when finished, False when pending." },
        { "query", (PyCFunction) async_query, METH_NOARGS, NULL },
        { "cancel", (PyCFunction) async_cancel, METH_NOARGS, NULL },
        {},
};

PyTypeObject vss_py_async_type = {
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "openvss._vss.AsyncHandle",
        .tp_basicsize = sizeof(AsyncObject),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "An operation of a BackupHandle under way (vss_async).",
        .tp_dealloc = (destructor) async_dealloc,
        .tp_methods = async_methods,
};

static PyObject *backup_errmsg(BackupObject *self, PyObject *unused) {
        return PyUnicode_FromString(vss_backup_errmsg(self->b));
}

static PyObject *backup_session_id(BackupObject *self, PyObject *unused) {
        vss_id id;
        int r = vss_backup_get_session_id(self->b, &id);
        if (r < 0)
                return vss_py_raise(r, vss_backup_errmsg(self->b));
        return vss_py_id_str(&id);
}

static PyObject *backup_initialize_for_restore(BackupObject *self, PyObject *args) {
        const char *doc = NULL;
        int r;
        if (!PyArg_ParseTuple(args, "|z", &doc) || !usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_initialize_for_restore(self->b, doc);
        Py_END_ALLOW_THREADS
        return done(self, r);
}

static PyObject *backup_save_as_document(BackupObject *self, PyObject *unused) {
        char *doc = NULL;
        int r;
        if (!usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_save_as_document(self->b, &doc);
        Py_END_ALLOW_THREADS
        if (r < 0)
                return done(self, r);
        self->busy = false;
        PyObject *s = PyUnicode_FromString(doc);
        free(doc);
        return s;
}

static PyObject *backup_set_context(BackupObject *self, PyObject *args) {
        unsigned ctx;
        if (!PyArg_ParseTuple(args, "I", &ctx) || !usable(self))
                return NULL;
        return done(self, vss_backup_set_context(self->b, ctx));
}

static PyObject *backup_set_backup_state(BackupObject *self, PyObject *args) {
        int select, bootable, type, partial;
        if (!PyArg_ParseTuple(args, "ppip", &select, &bootable, &type, &partial) || !usable(self))
                return NULL;
        return done(self, vss_backup_set_backup_state(self->b, select, bootable, (vss_backup_type) type, partial));
}

/* Metadata as (JSON document, owner uid or None) pairs: openvss parses the documents. */
static PyObject *backup_metadata(BackupObject *self, PyObject *unused) {
        size_t n = vss_backup_metadata_count(self->b);
        PyObject *l = PyList_New((Py_ssize_t) n);
        for (size_t i = 0; l && i < n; i++) {
                PyObject *s = PyUnicode_FromString(vss_backup_metadata_get(self->b, i)->document);
                if (!s) {
                        Py_CLEAR(l);
                        break;
                }
                PyList_SET_ITEM(l, (Py_ssize_t) i, s);
        }
        return l;
}

static PyObject *backup_start_snapshot_set(BackupObject *self, PyObject *unused) {
        vss_id id;
        int r;
        if (!usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_start_snapshot_set(self->b, &id);
        Py_END_ALLOW_THREADS
        if (r < 0)
                return done(self, r);
        self->busy = false;
        return vss_py_id_str(&id);
}

static PyObject *backup_add_to_snapshot_set(BackupObject *self, PyObject *args) {
        const char *path, *provider = NULL;
        vss_id id;
        int r;
        if (!PyArg_ParseTuple(args, "s|z", &path, &provider) || !usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_add_to_snapshot_set(self->b, path, provider, &id);
        Py_END_ALLOW_THREADS
        if (r < 0)
                return done(self, r);
        self->busy = false;
        return vss_py_id_str(&id);
}

static PyObject *backup_get_snapshot_properties(BackupObject *self, PyObject *args) {
        vss_id id;
        vss_snapshot_prop p;
        int r;
        if (!PyArg_ParseTuple(args, "O&", vss_py_id_converter, &id) || !usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_backup_get_snapshot_properties(self->b, &id, &p);
        Py_END_ALLOW_THREADS
        if (r < 0)
                return done(self, r);
        self->busy = false;
        return Py_BuildValue("{s:N,s:N,s:s,s:s,s:s,s:K,s:I}", "shadow_id", vss_py_id_str(&p.shadow_id),
                             "snapshot_set_id", vss_py_id_str(&p.snapshot_set_id), "original_path", p.original_path,
                             "shadow_path", p.shadow_path, "provider", p.provider, "created_usec",
                             (unsigned long long) p.created_usec, "attributes", p.attributes);
}

static PyObject *backup_writer_status(BackupObject *self, PyObject *unused) {
        size_t n = vss_backup_writer_status_count(self->b);
        PyObject *l = PyList_New((Py_ssize_t) n);
        for (size_t i = 0; l && i < n; i++) {
                vss_writer_status s;
                PyObject *d = NULL;
                if (vss_backup_writer_status_get(self->b, i, &s) >= 0)
                        d = Py_BuildValue("{s:N,s:N,s:s,s:i,s:i,s:i,s:s,s:s}", "instance_id",
                                          vss_py_id_str(&s.instance_id), "writer_id", vss_py_id_str(&s.writer_id),
                                          "name", s.name, "state", (int) s.state, "failure", (int) s.failure,
                                          "application_code", (int) s.application_code, "application_message",
                                          s.application_message ? s.application_message : "", "note",
                                          s.note ? s.note : "");
                else
                        vss_py_raise(VSS_E_UNEXPECTED, vss_backup_errmsg(self->b));
                if (!d) {
                        Py_CLEAR(l);
                        break;
                }
                PyList_SET_ITEM(l, (Py_ssize_t) i, d);
        }
        return l;
}

/* The per-component calls: (instance_id, writer_id, logical_path, name, value). */
typedef struct {
        vss_id iid, wid;
        const char *lp, *name;
} Component;

#define COMPONENT_FMT "O&O&ss"
#define COMPONENT_ARGS(c) vss_py_id_converter, &(c).iid, vss_py_id_converter, &(c).wid, &(c).lp, &(c).name

static PyObject *backup_add_component(BackupObject *self, PyObject *args) {
        Component c;
        if (!PyArg_ParseTuple(args, COMPONENT_FMT, COMPONENT_ARGS(c)) || !usable(self))
                return NULL;
        return done(self, vss_backup_add_component(self->b, &c.iid, &c.wid, c.lp, c.name));
}

static PyObject *component_string(BackupObject *self, PyObject *args,
                                  int (*fn)(vss_backup *, const vss_id *, const vss_id *, const char *, const char *,
                                            const char *)) {
        Component c;
        const char *v;
        if (!PyArg_ParseTuple(args, COMPONENT_FMT "s", COMPONENT_ARGS(c), &v) || !usable(self))
                return NULL;
        return done(self, fn(self->b, &c.iid, &c.wid, c.lp, c.name, v));
}

static PyObject *component_bool(BackupObject *self, PyObject *args,
                                int (*fn)(vss_backup *, const vss_id *, const vss_id *, const char *, const char *, bool)) {
        Component c;
        int v;
        if (!PyArg_ParseTuple(args, COMPONENT_FMT "p", COMPONENT_ARGS(c), &v) || !usable(self))
                return NULL;
        return done(self, fn(self->b, &c.iid, &c.wid, c.lp, c.name, v));
}

#define COMPONENT_SETTER(name, kind) \
        static PyObject *backup_##name(BackupObject *self, PyObject *args) { return component_##kind(self, args, vss_backup_##name); }
COMPONENT_SETTER(set_backup_succeeded, bool)
COMPONENT_SETTER(set_selected_for_restore, bool)
COMPONENT_SETTER(set_additional_restores, bool)
COMPONENT_SETTER(set_backup_options, string)
COMPONENT_SETTER(set_previous_backup_stamp, string)
COMPONENT_SETTER(set_restore_options, string)

static PyObject *backup_set_file_restore_status(BackupObject *self, PyObject *args) {
        Component c;
        int v;
        if (!PyArg_ParseTuple(args, COMPONENT_FMT "i", COMPONENT_ARGS(c), &v) || !usable(self))
                return NULL;
        return done(self, vss_backup_set_file_restore_status(self->b, &c.iid, &c.wid, c.lp, c.name,
                                                             (vss_file_restore_status) v));
}

static PyObject *backup_add_new_target(BackupObject *self, PyObject *args) {
        Component c;
        const char *path, *filespec, *dest;
        int rec;
        if (!PyArg_ParseTuple(args, COMPONENT_FMT "szps", COMPONENT_ARGS(c), &path, &filespec, &rec, &dest) ||
            !usable(self))
                return NULL;
        return done(self, vss_backup_add_new_target(self->b, &c.iid, &c.wid, c.lp, c.name, path, filespec, rec, dest));
}

#define M(name, flags) { #name, (PyCFunction) backup_##name, flags, NULL }
static PyMethodDef backup_methods[] = {
        M(close, METH_NOARGS),
        M(begin, METH_VARARGS),
        M(errmsg, METH_NOARGS),
        M(session_id, METH_NOARGS),
        M(initialize_for_backup, METH_NOARGS),
        M(initialize_for_restore, METH_VARARGS),
        M(save_as_document, METH_NOARGS),
        M(set_context, METH_VARARGS),
        M(set_backup_state, METH_VARARGS),
        M(metadata, METH_NOARGS),
        M(add_component, METH_VARARGS),
        M(start_snapshot_set, METH_NOARGS),
        M(add_to_snapshot_set, METH_VARARGS),
        M(get_snapshot_properties, METH_VARARGS),
        M(set_backup_succeeded, METH_VARARGS),
        M(set_backup_options, METH_VARARGS),
        M(set_previous_backup_stamp, METH_VARARGS),
        M(set_selected_for_restore, METH_VARARGS),
        M(set_restore_options, METH_VARARGS),
        M(set_additional_restores, METH_VARARGS),
        M(add_new_target, METH_VARARGS),
        M(set_file_restore_status, METH_VARARGS),
        M(abort_backup, METH_NOARGS),
        M(writer_status, METH_NOARGS),
        M(begin_paused, METH_VARARGS),
        M(wait_paused, METH_VARARGS),
        M(continue_snapshot_set, METH_NOARGS),
        {},
};

PyTypeObject vss_py_backup_type = {
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "openvss._vss.BackupHandle",
        .tp_basicsize = sizeof(BackupObject),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "BackupHandle(socket=None): a vss_backup, one session in vssd.",
        .tp_new = PyType_GenericNew,
        .tp_init = (initproc) backup_init,
        .tp_dealloc = (destructor) backup_dealloc,
        .tp_methods = backup_methods,
};
