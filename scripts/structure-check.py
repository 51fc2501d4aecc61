#!/usr/bin/env python3
"""The structure rules of the production folders (issue 13): no file over 800 lines, no function
over 120 lines apart from help texts, and no daemon module calling up the layer graph of
docs/ARCHITECTURE.md (callbacks an owner hands down are pointers, not calls, and pass).

Usage: structure-check.py [SOURCE_ROOT]. Prints each breach; exits 1 if there is one."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
FOLDERS = ["agent", "daemon", "lib", "providers", "tools", "writers"]
MAX_FILE, MAX_FUNCTION = 800, 120
# A definition starts at column 0 with a type and a name followed by '(' and ends at a '}' at
# column 0. Help texts (functions named *help*) are exempt: they are prose.
start = re.compile(r"^[A-Za-z_][\w\s\*]*?\b(\w+)\s*\([^;]*$")
breaches = []

for folder in FOLDERS:
    for dirpath, _, files in os.walk(os.path.join(root, folder)):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if len(lines) > MAX_FILE:
                breaches.append(f"{rel}: {len(lines)} lines (at most {MAX_FILE})")
            name, first = None, 0
            for i, line in enumerate(lines):
                m = start.match(line)
                if name is None and m and not line.startswith(("typedef", "struct", "enum", "static const", "#")):
                    name, first = m.group(1), i
                elif name is not None and line.startswith("}"):
                    n = i - first + 1
                    if n > MAX_FUNCTION and "help" not in name:
                        breaches.append(f"{rel}:{first + 1}: {name}() is {n} lines (at most {MAX_FUNCTION})")
                    name = None
                elif name is not None and line.endswith(";") and not line.startswith((" ", "\t")):
                    name = None  # a declaration spread over lines

# vssd's layers, top first; a file may call functions of its own layer's group or of lower layers.
# Across groups of one layer only: the manager calls the session (it creates and ends sessions),
# the writer calls access (its replies and rights). A daemon file missing here is a breach: place it.
LAYERS = [
    {"bus": ["bus.c", "main.c"]},
    {"manager": ["manager.c", "reload.c"],
     "session": ["session.c", "session-dispatch.c", "session-status.c", "session-document.c",
                 "snapshot-set.c", "session-stages.c", "session-pause.c", "commit.c", "commit-helper.c", "hold.c"],
     "expose": ["expose.c"], "admin": ["admin.c"]},
    {"writer": ["writer.c"], "shadows": ["shadows.c", "delete-helper.c"], "access": ["access.c"], "connection-io": ["connection-io.c"]},
    {"registry": ["registry.c", "registry-sql.c", "registry-records.c", "registry-check.c", "registry-sqlite.c"],
     "freeze": ["freeze.c", "freeze-helper.c", "freeze-settle.c"], "sequence": ["sequence.c"], "child": ["child.c", "helper-job.c"],
     "config": ["config.c"], "log": ["log.c"], "timer": ["timer.c"]},
]
MAY_CALL_ACROSS = {("manager", "session"), ("writer", "access")}
where = {f: (i, g) for i, groups in enumerate(LAYERS) for g, fs in groups.items() for f in fs}
daemon = os.path.join(root, "daemon")
sources, owner = {}, {}
defn = re.compile(r"^(?!static)[A-Za-z_][\w \*]*?\b(\w+)\([^;{]*\)\s*\{", re.M)
for f in sorted(os.listdir(daemon)):
    if f.endswith(".c"):
        sources[f] = open(os.path.join(daemon, f), encoding="utf-8").read()
        for m in defn.finditer(sources[f]):
            owner[m.group(1)] = f
for f, text in sources.items():
    if f not in where:
        breaches.append(f"daemon/{f}: not placed in a layer (scripts/structure-check.py, docs/ARCHITECTURE.md)")
        continue
    lf, gf = where[f]
    for name, o in owner.items():
        if o == f or o not in where:
            continue
        lo, go = where[o]
        upward = lo < lf or (lo == lf and go != gf and (gf, go) not in MAY_CALL_ACROSS)
        if upward and re.search(r"\b" + name + r"\s*\(", text):
            breaches.append(f"daemon/{f} ({gf}) calls {name}() of daemon/{o} ({go}): up or across the graph")

for b in breaches:
    print(b)
print(f"{len(breaches)} breach(es)" if breaches else "structure: no file or function over its bound")
sys.exit(1 if breaches else 0)
