/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* openvss._vss: module, errors and ids. */

#include "_vss.h"

PyObject *vss_py_error;

PyObject *vss_py_raise(int code, const char *message) {
        const char *name = vss_error_name(code);
        PyObject *e = PyObject_CallFunction(vss_py_error, "is", code,
                                            message && *message ? message : vss_strerror(code));
        if (!e)
                return NULL;
        /* .code, .name, .message: what callers look at, beside args. */
        PyObject *n = name ? PyUnicode_FromString(name) : Py_NewRef(Py_None);
        if (!n || PyObject_SetAttrString(e, "name", n) < 0 ||
            PyObject_SetAttrString(e, "code", PyTuple_GET_ITEM(((PyBaseExceptionObject *) e)->args, 0)) < 0 ||
            PyObject_SetAttrString(e, "message", PyTuple_GET_ITEM(((PyBaseExceptionObject *) e)->args, 1)) < 0)
                PyErr_Clear();
        Py_XDECREF(n);
        PyErr_SetObject(vss_py_error, e);
        Py_DECREF(e);
        return NULL;
}

PyObject *vss_py_result(int r, const char *message) {
        if (r < 0)
                return vss_py_raise(r, message);
        Py_RETURN_NONE;
}

int vss_py_id_converter(PyObject *o, void *ret) {
        PyObject *s = PyObject_Str(o);
        if (!s)
                return 0;
        const char *t = PyUnicode_AsUTF8(s);
        int r = t ? vss_id_from_string(t, ret) : -1;
        Py_DECREF(s);
        if (t && r < 0)
                PyErr_Format(PyExc_ValueError, "not a UUID: %R", o);
        return r < 0 ? 0 : 1;
}

PyObject *vss_py_id_str(const vss_id *id) {
        char buf[VSS_ID_STRING_MAX];
        return PyUnicode_FromString(vss_id_to_string(id, buf));
}

PyObject *vss_py_id_or_none(const vss_id *id) {
        if (vss_id_is_null(id))
                Py_RETURN_NONE;
        return vss_py_id_str(id);
}

int vss_py_enter(bool *busy) {
        if (*busy) {
                PyErr_SetString(PyExc_RuntimeError, "the handle is in use by another thread");
                return -1;
        }
        *busy = true;
        return 0;
}

static PyObject *py_error_name(PyObject *self, PyObject *args) {
        int code;
        if (!PyArg_ParseTuple(args, "i", &code))
                return NULL;
        const char *n = vss_error_name(code);
        if (!n)
                Py_RETURN_NONE;
        return PyUnicode_FromString(n);
}

static PyObject *py_strerror(PyObject *self, PyObject *args) {
        int code;
        if (!PyArg_ParseTuple(args, "i", &code))
                return NULL;
        return PyUnicode_FromString(vss_strerror(code));
}

static PyObject *py_writer_state_name(PyObject *self, PyObject *args) {
        int s;
        if (!PyArg_ParseTuple(args, "i", &s))
                return NULL;
        const char *n = vss_writer_state_name((vss_writer_state) s);
        if (!n)
                Py_RETURN_NONE;
        return PyUnicode_FromString(n);
}

static PyMethodDef module_methods[] = {
        { "error_name", py_error_name, METH_VARARGS, "The name of an HRESULT (\"VSS_E_BAD_STATE\"), or None." },
        { "strerror", py_strerror, METH_VARARGS, "A readable sentence for an HRESULT." },
        { "writer_state_name", py_writer_state_name, METH_VARARGS, "\"Stable\", \"FailedAtFreeze\", ... or None." },
        {},
};

static struct PyModuleDef module_def = {
        PyModuleDef_HEAD_INIT, .m_name = "openvss._vss", .m_doc = "The C half of openvss: libvss's writer and requester faces.",
        .m_size = -1, .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__vss(void);
PyMODINIT_FUNC PyInit__vss(void) {
        PyObject *m = PyModule_Create(&module_def);
        if (!m)
                return NULL;
        vss_py_error = PyErr_NewExceptionWithDoc("openvss.VssError",
                                                 "A libvss call failed: args are (code, message); .name is the code's name.",
                                                 PyExc_Exception, NULL);
        if (!vss_py_error || PyModule_AddObjectRef(m, "VssError", vss_py_error) < 0)
                goto fail;
        PyTypeObject *types[] = { &vss_py_writer_type, &vss_py_builder_type, &vss_py_backup_type, &vss_py_async_type };
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                if (PyType_Ready(types[i]) < 0 ||
                    PyModule_AddObjectRef(m, strrchr(types[i]->tp_name, '.') + 1, (PyObject *) types[i]) < 0)
                        goto fail;
        return m;
fail:
        Py_DECREF(m);
        return NULL;
}
