/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* openvss._vss.WriterHandle and MetadataBuilder: the writer face. Events call the Python owner's
 * _on_event(name, info) and _on_identify(builder), which return whether the event succeeded
 * (openvss.Writer turns exceptions and returned failures into vss_writer_set_failure()). */

#include "_vss.h"

typedef struct {
        PyObject_HEAD
        vss_writer *w;
        PyObject *owner; /* a weak reference: the owner holds this handle */
        bool busy;
} WriterObject;

typedef struct {
        PyObject_HEAD
        vss_metadata_builder *md; /* valid during the Identify callback only */
} BuilderObject;

/* The owner, a new reference, or NULL (gone). Called with the GIL. */
static PyObject *owner_of(WriterObject *self) {
        PyObject *o = NULL;
        if (self->owner && PyWeakref_Check(self->owner)) {
                o = PyWeakref_GetObject(self->owner);
                if (o == Py_None)
                        o = NULL;
        }
        Py_XINCREF(o);
        return o;
}

/* What a Python callback returned, as the callback's answer. An exception escaping the owner's
 * wrapper (a bug) is printed and fails the event. */
static bool answer(WriterObject *self, PyObject *result) {
        if (!result) {
                PyErr_Print();
                vss_writer_set_failure(self->w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "the Python writer raised an exception");
                return false;
        }
        int ok = PyObject_IsTrue(result);
        Py_DECREF(result);
        if (ok < 0) {
                PyErr_Print();
                return false;
        }
        return ok;
}

/* A list of n strings, or NULL with the exception set. */
static PyObject *str_list(const char *const *v, size_t n) {
        PyObject *l = PyList_New((Py_ssize_t) n);
        for (size_t i = 0; l && i < n; i++) {
                PyObject *s = PyUnicode_FromString(v[i]);
                if (!s) {
                        Py_CLEAR(l);
                        break;
                }
                PyList_SET_ITEM(l, (Py_ssize_t) i, s);
        }
        return l;
}

static PyObject *info_dict(const vss_event_info *info) {
        PyObject *comps = str_list(info->components, info->n_components);
        PyObject *vols = comps ? str_list(info->volumes, info->n_volumes) : NULL;
        if (!vols) {
                Py_XDECREF(comps);
                return NULL;
        }
        return Py_BuildValue("{s:s,s:N,s:i,s:O,s:N,s:O,s:O,s:N,s:k,s:N}", "event", vss_event_name(info->event),
                             "snapshot_set_id", vss_py_id_or_none(&info->snapshot_set_id), "backup_type",
                             (int) info->backup_type, "component_mode", info->component_mode ? Py_True : Py_False,
                             "components", comps, "partial_file_support",
                             info->partial_file_support ? Py_True : Py_False, "bootable_system_state",
                             info->bootable_system_state ? Py_True : Py_False, "volumes", vols, "context",
                             (unsigned long) info->context, "session_id", vss_py_id_or_none(&info->session_id));
}

static bool on_event(vss_writer *w, const vss_event_info *info, void *userdata) {
        WriterObject *self = userdata;
        PyGILState_STATE g = PyGILState_Ensure();
        bool ok = true;
        PyObject *owner = owner_of(self);
        if (owner) {
                PyObject *d = info_dict(info);
                ok = answer(self, d ? PyObject_CallMethod(owner, "_on_event", "sO", vss_event_name(info->event), d) : NULL);
                Py_XDECREF(d);
                Py_DECREF(owner);
        }
        PyGILState_Release(g);
        return ok;
}

static bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        WriterObject *self = userdata;
        PyGILState_STATE g = PyGILState_Ensure();
        bool ok = true;
        PyObject *owner = owner_of(self);
        if (owner) {
                BuilderObject *b = PyObject_New(BuilderObject, &vss_py_builder_type);
                if (b)
                        b->md = md;
                ok = answer(self, b ? PyObject_CallMethod(owner, "_on_identify", "O", b) : NULL);
                if (b) {
                        b->md = NULL; /* a builder kept past Identify must not reach freed memory */
                        Py_DECREF(b);
                }
                Py_DECREF(owner);
        }
        PyGILState_Release(g);
        return ok;
}

static const vss_writer_callbacks callbacks = {
        .identify = on_identify,
        .prepare_backup = on_event,
        .prepare_snapshot = on_event,
        .freeze = on_event,
        .thaw = on_event,
        .post_snapshot = on_event,
        .abort = on_event,
        .backup_complete = on_event,
        .backup_shutdown = on_event,
        .pre_restore = on_event,
        .post_restore = on_event,
        .size = sizeof(vss_writer_callbacks),
};

static int writer_init(WriterObject *self, PyObject *args, PyObject *kw) {
        static char *kwlist[] = { "owner", "name", "class_id", "instance_id", "instance_name", "usage_type",
                                  "source_type", "app_level", "freeze_window_ms", NULL };
        vss_writer_options o = { .size = sizeof(o) };
        PyObject *owner, *class_id = Py_None, *instance_id = Py_None;
        int usage = 0, source = 0, level = 0;
        unsigned freeze_window_ms = 0;
        if (self->w) {
                PyErr_SetString(PyExc_RuntimeError, "WriterHandle initialized twice");
                return -1;
        }
        if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|OOziiiI", kwlist, &owner, &o.name, &class_id, &instance_id,
                                         &o.instance_name, &usage, &source, &level, &freeze_window_ms))
                return -1;
        if ((class_id != Py_None && !vss_py_id_converter(class_id, &o.class_id)) ||
            (instance_id != Py_None && !vss_py_id_converter(instance_id, &o.instance_id)))
                return -1;
        o.usage_type = (vss_usage_type) usage;
        o.source_type = (vss_source_type) source;
        o.app_level = (vss_app_level) level;
        o.freeze_window_ms = freeze_window_ms;
        self->owner = PyWeakref_NewRef(owner, NULL);
        if (!self->owner)
                return -1;
        int r = vss_writer_new(&o, &callbacks, self, &self->w);
        if (r < 0) {
                vss_py_raise(r, "bad writer options (name 1..255 bytes, app_level, freeze_window_ms up to 10 min)");
                return -1;
        }
        return 0;
}

static void writer_close_now(WriterObject *self) {
        /* Free may call Abort (a freeze in progress): the callback takes the GIL back. */
        vss_writer *w = self->w;
        self->w = NULL;
        if (w) {
                Py_BEGIN_ALLOW_THREADS
                vss_writer_free(w);
                Py_END_ALLOW_THREADS
        }
}

static void writer_dealloc(WriterObject *self) {
        writer_close_now(self);
        Py_CLEAR(self->owner);
        Py_TYPE(self)->tp_free((PyObject *) self);
}

static bool writer_usable(WriterObject *self) {
        if (!self->w) {
                PyErr_SetString(PyExc_ValueError, "the writer is closed");
                return false;
        }
        return vss_py_enter(&self->busy) == 0;
}

static PyObject *writer_done(WriterObject *self, int r) {
        self->busy = false;
        return vss_py_result(r, vss_writer_errmsg(self->w));
}

static PyObject *writer_close(WriterObject *self, PyObject *unused) {
        if (self->busy) {
                PyErr_SetString(PyExc_RuntimeError, "the writer is in use");
                return NULL;
        }
        writer_close_now(self);
        Py_RETURN_NONE;
}

static PyObject *writer_subscribe(WriterObject *self, PyObject *args) {
        const char *socket = NULL;
        int r;
        if (!PyArg_ParseTuple(args, "|z", &socket) || !writer_usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = vss_writer_subscribe(self->w, socket);
        Py_END_ALLOW_THREADS
        return writer_done(self, r);
}

/* unsubscribe, run and dispatch: blocking or calling back, so without the GIL. */
static PyObject *writer_call(WriterObject *self, int (*fn)(vss_writer *)) {
        int r;
        if (!writer_usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = fn(self->w);
        Py_END_ALLOW_THREADS
        self->busy = false;
        if (PyErr_CheckSignals() < 0)
                return NULL;
        return vss_py_result(r, vss_writer_errmsg(self->w));
}

static PyObject *writer_unsubscribe(WriterObject *self, PyObject *unused) { return writer_call(self, vss_writer_unsubscribe); }
static PyObject *writer_run(WriterObject *self, PyObject *unused) { return writer_call(self, vss_writer_run); }
static PyObject *writer_dispatch(WriterObject *self, PyObject *unused) { return writer_call(self, vss_writer_dispatch); }

static PyObject *writer_main(WriterObject *self, PyObject *args) {
        const char *socket = NULL, *prog = "openvss-writer";
        int status;
        if (!PyArg_ParseTuple(args, "|zs", &socket, &prog) || !writer_usable(self))
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        status = vss_writer_main(self->w, socket, prog);
        Py_END_ALLOW_THREADS
        self->busy = false;
        return PyLong_FromLong(status);
}

static PyObject *writer_exit(WriterObject *self, PyObject *unused) {
        vss_writer_exit(self->w); /* from a callback or another thread: no busy check */
        Py_RETURN_NONE;
}

static PyObject *writer_get_fd(WriterObject *self, PyObject *unused) {
        if (!self->w)
                return vss_py_raise(VSS_E_BAD_STATE, "the writer is closed");
        int r = vss_writer_get_fd(self->w);
        if (r < 0)
                return vss_py_raise(r, "no event loop yet: subscribe first");
        return PyLong_FromLong(r);
}

static PyObject *writer_set_failure(WriterObject *self, PyObject *args) {
        int failure, code = 0;
        const char *msg = NULL;
        if (!PyArg_ParseTuple(args, "i|iz", &failure, &code, &msg))
                return NULL;
        return vss_py_result(vss_writer_set_failure(self->w, failure, code, msg), "no writer");
}

static PyObject *writer_is_frozen(WriterObject *self, PyObject *unused) {
        return PyBool_FromLong(vss_writer_is_frozen(self->w));
}

static PyObject *writer_options(WriterObject *self, PyObject *unused) {
        const vss_writer_options *o = vss_writer_get_options(self->w);
        if (!o)
                return vss_py_raise(VSS_E_BAD_STATE, "the writer is closed");
        return Py_BuildValue("{s:N,s:N,s:s,s:s,s:i,s:i,s:i,s:I}", "class_id", vss_py_id_str(&o->class_id),
                             "instance_id", vss_py_id_str(&o->instance_id), "name", o->name, "instance_name",
                             o->instance_name ? o->instance_name : "", "usage_type", (int) o->usage_type,
                             "source_type", (int) o->source_type, "app_level", (int) o->app_level,
                             "freeze_window_ms", (unsigned) o->freeze_window_ms);
}

static PyObject *mappings_list(size_t n, const vss_file_mapping *m) {
        PyObject *l = PyList_New((Py_ssize_t) n);
        for (size_t i = 0; l && i < n; i++) {
                PyObject *t = Py_BuildValue("{s:s,s:s,s:O,s:s}", "path", m[i].path, "filespec", m[i].filespec,
                                            "recursive", m[i].recursive ? Py_True : Py_False, "destination",
                                            m[i].destination);
                if (!t) {
                        Py_CLEAR(l);
                        break;
                }
                PyList_SET_ITEM(l, (Py_ssize_t) i, t);
        }
        return l;
}

/* A component's record in the backup components document, during an event. */
static PyObject *writer_get_component(WriterObject *self, PyObject *args) {
        const char *lp, *name;
        if (!PyArg_ParseTuple(args, "ss", &lp, &name))
                return NULL;
        const vss_bc_component *c = vss_writer_get_component(self->w, lp, name);
        if (!c)
                Py_RETURN_NONE;
#define S(x) ((x) ? (x) : "")
        return Py_BuildValue("{s:s,s:s,s:O,s:s,s:s,s:s,s:O,s:O,s:s,s:i,s:i,s:s,s:s,s:N,s:N}", "logical_path",
                             c->logical_path, "name", c->name, "backup_succeeded", c->backup_succeeded ? Py_True : Py_False,
                             "backup_options", S(c->backup_options), "backup_stamp", S(c->backup_stamp),
                             "previous_backup_stamp", S(c->previous_backup_stamp), "selected_for_restore",
                             c->selected_for_restore ? Py_True : Py_False, "additional_restores",
                             c->additional_restores ? Py_True : Py_False, "restore_options", S(c->restore_options),
                             "restore_target", (int) c->restore_target, "file_restore_status",
                             (int) c->file_restore_status, "pre_restore_failure_msg", S(c->pre_restore_failure_msg),
                             "post_restore_failure_msg", S(c->post_restore_failure_msg), "new_targets",
                             mappings_list(c->n_new_targets, c->new_targets), "writer_files",
                             mappings_list(c->n_writer_files, c->writer_files));
#undef S
}

/* The document setters taking (logical_path, name, string). */
static PyObject *writer_set_string(WriterObject *self, PyObject *args,
                                   int (*fn)(vss_writer *, const char *, const char *, const char *)) {
        const char *lp, *name, *value;
        if (!PyArg_ParseTuple(args, "sss", &lp, &name, &value))
                return NULL;
        return vss_py_result(fn(self->w, lp, name, value), vss_writer_errmsg(self->w));
}

static PyObject *writer_set_backup_stamp(WriterObject *self, PyObject *args) {
        return writer_set_string(self, args, vss_writer_set_backup_stamp);
}
static PyObject *writer_set_pre_restore_failure_msg(WriterObject *self, PyObject *args) {
        return writer_set_string(self, args, vss_writer_set_pre_restore_failure_msg);
}
static PyObject *writer_set_post_restore_failure_msg(WriterObject *self, PyObject *args) {
        return writer_set_string(self, args, vss_writer_set_post_restore_failure_msg);
}

static PyObject *writer_set_restore_target(WriterObject *self, PyObject *args) {
        const char *lp, *name;
        int target;
        if (!PyArg_ParseTuple(args, "ssi", &lp, &name, &target))
                return NULL;
        return vss_py_result(vss_writer_set_restore_target(self->w, lp, name, (vss_restore_target) target),
                             vss_writer_errmsg(self->w));
}

static PyObject *writer_add_backup_files(WriterObject *self, PyObject *args) {
        const char *lp, *name, *path, *filespec, *stored_as;
        int recursive;
        if (!PyArg_ParseTuple(args, "ssszps", &lp, &name, &path, &filespec, &recursive, &stored_as))
                return NULL;
        return vss_py_result(vss_writer_add_backup_files(self->w, lp, name, path, filespec, recursive, stored_as),
                             vss_writer_errmsg(self->w));
}

static PyMethodDef writer_methods[] = {
        { "close", (PyCFunction) writer_close, METH_NOARGS, "Unsubscribes (aborting a freeze) and frees." },
        { "subscribe", (PyCFunction) writer_subscribe, METH_VARARGS, "subscribe(socket=None)" },
        { "unsubscribe", (PyCFunction) writer_unsubscribe, METH_NOARGS, NULL },
        { "run", (PyCFunction) writer_run, METH_NOARGS, "Dispatches events until exit() or the connection is lost." },
        { "main", (PyCFunction) writer_main, METH_VARARGS, "main(socket=None, prog): vss_writer_main, an exit status." },
        { "exit", (PyCFunction) writer_exit, METH_NOARGS, NULL },
        { "get_fd", (PyCFunction) writer_get_fd, METH_NOARGS, NULL },
        { "dispatch", (PyCFunction) writer_dispatch, METH_NOARGS, NULL },
        { "set_failure", (PyCFunction) writer_set_failure, METH_VARARGS, "set_failure(failure, code=0, message=None)" },
        { "is_frozen", (PyCFunction) writer_is_frozen, METH_NOARGS, NULL },
        { "options", (PyCFunction) writer_options, METH_NOARGS, "The options as used, ids filled in." },
        { "get_component", (PyCFunction) writer_get_component, METH_VARARGS, NULL },
        { "set_backup_stamp", (PyCFunction) writer_set_backup_stamp, METH_VARARGS, NULL },
        { "add_backup_files", (PyCFunction) writer_add_backup_files, METH_VARARGS, NULL },
        { "set_restore_target", (PyCFunction) writer_set_restore_target, METH_VARARGS, NULL },
        { "set_pre_restore_failure_msg", (PyCFunction) writer_set_pre_restore_failure_msg, METH_VARARGS, NULL },
        { "set_post_restore_failure_msg", (PyCFunction) writer_set_post_restore_failure_msg, METH_VARARGS, NULL },
        {},
};

PyTypeObject vss_py_writer_type = {
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "openvss._vss.WriterHandle",
        .tp_basicsize = sizeof(WriterObject),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "WriterHandle(owner, name, ...): a vss_writer whose events call owner._on_event/_on_identify.",
        .tp_new = PyType_GenericNew,
        .tp_init = (initproc) writer_init,
        .tp_dealloc = (destructor) writer_dealloc,
        .tp_methods = writer_methods,
};

/* MetadataBuilder: valid during Identify only. */
static vss_metadata_builder *builder_md(BuilderObject *self) {
        if (!self->md)
                PyErr_SetString(PyExc_RuntimeError, "the metadata builder is valid only during identify");
        return self->md;
}

static PyObject *builder_add_component(BuilderObject *self, PyObject *args, PyObject *kw) {
        static char *kwlist[] = { "name", "logical_path", "caption", "selectable_for_backup", "selectable_for_restore", NULL };
        const char *name, *lp = "", *caption = NULL;
        int sb = 1, sr = 1;
        if (!PyArg_ParseTupleAndKeywords(args, kw, "s|szpp", kwlist, &name, &lp, &caption, &sb, &sr) || !builder_md(self))
                return NULL;
        return vss_py_result(vss_metadata_add_component(self->md, lp, name, caption, sb, sr), "bad component");
}

static PyObject *builder_add_files(BuilderObject *self, PyObject *args, PyObject *kw) {
        static char *kwlist[] = { "name", "path", "filespec", "recursive", "logical_path", NULL };
        const char *name, *path, *filespec = NULL, *lp = "";
        int rec = 1;
        if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|zps", kwlist, &name, &path, &filespec, &rec, &lp) || !builder_md(self))
                return NULL;
        return vss_py_result(vss_metadata_add_files(self->md, lp, name, path, filespec, rec), "bad file group");
}

static PyObject *builder_add_exclude_files(BuilderObject *self, PyObject *args, PyObject *kw) {
        static char *kwlist[] = { "path", "filespec", "recursive", NULL };
        const char *path, *filespec = NULL;
        int rec = 1;
        if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zp", kwlist, &path, &filespec, &rec) || !builder_md(self))
                return NULL;
        return vss_py_result(vss_metadata_add_exclude_files(self->md, path, filespec, rec), "bad exclude");
}

static PyObject *builder_set_restore_method(BuilderObject *self, PyObject *args, PyObject *kw) {
        static char *kwlist[] = { "method", "service", "reboot_required", NULL };
        const char *service = NULL;
        int method, reboot = 0;
        if (!PyArg_ParseTupleAndKeywords(args, kw, "i|zp", kwlist, &method, &service, &reboot) || !builder_md(self))
                return NULL;
        return vss_py_result(vss_metadata_set_restore_method(self->md, (vss_restore_method) method, service, reboot),
                             "bad restore method");
}

static PyObject *builder_set_writer_restore(BuilderObject *self, PyObject *args) {
        int v;
        if (!PyArg_ParseTuple(args, "i", &v) || !builder_md(self))
                return NULL;
        return vss_py_result(vss_metadata_set_writer_restore(self->md, (vss_writer_restore) v), "bad writer restore");
}

static PyObject *builder_add_alternate_location_mapping(BuilderObject *self, PyObject *args, PyObject *kw) {
        static char *kwlist[] = { "path", "destination", "filespec", "recursive", NULL };
        const char *path, *dest, *filespec = NULL;
        int rec = 1;
        if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|zp", kwlist, &path, &dest, &filespec, &rec) || !builder_md(self))
                return NULL;
        return vss_py_result(vss_metadata_add_alternate_location_mapping(self->md, path, filespec, rec, dest),
                             "bad alternate location mapping");
}

#define KW(f) (PyCFunction) (void (*)(void)) (f), METH_VARARGS | METH_KEYWORDS
static PyMethodDef builder_methods[] = {
        { "add_component", KW(builder_add_component),
          "add_component(name, logical_path='', caption=None, selectable_for_backup=True, selectable_for_restore=True)" },
        { "add_files", KW(builder_add_files), "add_files(name, path, filespec=None, recursive=True, logical_path='')" },
        { "add_exclude_files", KW(builder_add_exclude_files), "add_exclude_files(path, filespec=None, recursive=True)" },
        { "set_restore_method", KW(builder_set_restore_method), "set_restore_method(method, service=None, reboot_required=False)" },
        { "set_writer_restore", (PyCFunction) builder_set_writer_restore, METH_VARARGS, "set_writer_restore(value)" },
        { "add_alternate_location_mapping", KW(builder_add_alternate_location_mapping),
          "add_alternate_location_mapping(path, destination, filespec=None, recursive=True)" },
        {},
};

PyTypeObject vss_py_builder_type = {
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "openvss._vss.MetadataBuilder",
        .tp_basicsize = sizeof(BuilderObject),
        .tp_flags = Py_TPFLAGS_DEFAULT,
        .tp_doc = "What a writer owns, described during Identify.",
        .tp_methods = builder_methods,
};
