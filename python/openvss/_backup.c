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

#define PHASE(name, fn) \
        static PyObject *backup_##name(BackupObject *self, PyObject *unused) { return call(self, fn); }
PHASE(initialize_for_backup, vss_backup_initialize_for_backup)
PHASE(gather_writer_metadata, vss_backup_gather_writer_metadata_sync)
PHASE(prepare_for_backup, vss_backup_prepare_for_backup_sync)
PHASE(do_snapshot_set, vss_backup_do_snapshot_set_sync)
PHASE(backup_complete, vss_backup_backup_complete_sync)
PHASE(abort_backup, vss_backup_abort_backup)
PHASE(pre_restore, vss_backup_pre_restore_sync)
PHASE(post_restore, vss_backup_post_restore_sync)
PHASE(gather_writer_status, vss_backup_gather_writer_status_sync)

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
        M(errmsg, METH_NOARGS),
        M(session_id, METH_NOARGS),
        M(initialize_for_backup, METH_NOARGS),
        M(initialize_for_restore, METH_VARARGS),
        M(save_as_document, METH_NOARGS),
        M(set_context, METH_VARARGS),
        M(set_backup_state, METH_VARARGS),
        M(gather_writer_metadata, METH_NOARGS),
        M(metadata, METH_NOARGS),
        M(add_component, METH_VARARGS),
        M(start_snapshot_set, METH_NOARGS),
        M(add_to_snapshot_set, METH_VARARGS),
        M(prepare_for_backup, METH_NOARGS),
        M(do_snapshot_set, METH_NOARGS),
        M(get_snapshot_properties, METH_VARARGS),
        M(set_backup_succeeded, METH_VARARGS),
        M(backup_complete, METH_NOARGS),
        M(set_backup_options, METH_VARARGS),
        M(set_previous_backup_stamp, METH_VARARGS),
        M(set_selected_for_restore, METH_VARARGS),
        M(set_restore_options, METH_VARARGS),
        M(set_additional_restores, METH_VARARGS),
        M(add_new_target, METH_VARARGS),
        M(set_file_restore_status, METH_VARARGS),
        M(abort_backup, METH_NOARGS),
        M(pre_restore, METH_NOARGS),
        M(post_restore, METH_NOARGS),
        M(gather_writer_status, METH_NOARGS),
        M(writer_status, METH_NOARGS),
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
