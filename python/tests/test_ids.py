# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writer class ids: what libvss derives in C (a Writer's class_id without one given) equals
Python's uuid.uuid5 over the documented namespace."""

import sys
import uuid

import openvss

# README's namespace, and how it was made.
NAMESPACE = uuid.UUID("e2466cdd-02d9-58bb-a306-d2cf7a0ac02d")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        print("CHECK failed: " + what, file=sys.stderr)
        failures += 1


check(NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "urn:openvss:writer-class"), "the namespace's derivation")
check(openvss.WRITER_CLASS_NAMESPACE == NAMESPACE, "openvss.WRITER_CLASS_NAMESPACE")
for name in ["vss-writer-sqlite", "postgres", "fe", "é ünïcode ✓", "x" * 55, "y" * 56, "z" * 64, "w" * 255]:
    c = openvss.Writer(name).class_id  # derived by libvss (C)
    want = uuid.uuid5(NAMESPACE, name)
    check(c == want, "%r: C %s, uuid5 %s" % (name, c, want))
    check(openvss.writer_class_id(name) == want, "openvss.writer_class_id(%r)" % name)
    check(c.version == 5 and c.variant == uuid.RFC_4122, "%r: version 5, RFC 4122 variant" % name)

# A class id given is kept; the instance id is random unless given.
given = uuid.uuid4()
w = openvss.Writer("named", class_id=given, instance_id="01234567-89ab-cdef-0123-456789abcdef")
check(w.class_id == given, "a given class id is kept")
check(str(w.instance_id) == "01234567-89ab-cdef-0123-456789abcdef", "a given instance id is kept")
check(openvss.Writer("a").instance_id != openvss.Writer("a").instance_id, "random instance ids")

# Bad options are VssError with the code.
try:
    openvss.Writer("")
    check(False, "an empty name must fail")
except openvss.VssError as e:
    check(e.code == openvss.VSS_E_INVALIDARG and e.name == "E_INVALIDARG", "empty name: %r %r" % (e.code, e.name))
check(openvss.error_name(openvss.VSS_E_WRITERERROR_RETRYABLE) == "VSS_E_WRITERERROR_RETRYABLE", "error_name")
check(openvss.writer_state_name(openvss.VSS_WS_FAILED_AT_FREEZE) == "FailedAtFreeze", "writer_state_name")
sys.exit(1 if failures else 0)
