/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* openvss._vss: the C half of the Python package, a thin layer over the public libvss API
 * (the headers in include/vss). openvss/__init__.py builds the Python-shaped API on top of it. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <vss/admin.h>
#include <vss/writer.h>

extern PyObject *vss_py_error;          /* openvss.VssError */
extern PyTypeObject vss_py_writer_type; /* _vss.WriterHandle */
extern PyTypeObject vss_py_builder_type;
extern PyTypeObject vss_py_backup_type; /* _vss.BackupHandle */
extern PyTypeObject vss_py_async_type;

/* Raises VssError(code, message) (message NULL: vss_strerror(code)); returns NULL. */
PyObject *vss_py_raise(int code, const char *message);
/* None for r >= 0, else raises. */
PyObject *vss_py_result(int r, const char *message);
/* A str or uuid.UUID (anything whose str() is a UUID) to an id; 0 or -1 with an exception. */
int vss_py_id_converter(PyObject *o, void *ret);
/* An id as str; None for the null id. */
PyObject *vss_py_id_or_none(const vss_id *id);
PyObject *vss_py_id_str(const vss_id *id);

/* A handle is used by one thread at a time: a call that releases the GIL marks it busy, so a
 * second thread gets an exception instead of a crash. */
int vss_py_enter(bool *busy);
