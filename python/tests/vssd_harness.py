# SPDX-License-Identifier: LGPL-2.1-or-later
"""The real vssd for the Python tests, as tests/harness.c runs it: a private socket and state
directory in a temporary directory, a config that never holds the machine's own filesystems
(every mount present goes into hold_exclude), readiness awaited through NOTIFY_SOCKET."""

import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

VSSD = os.environ["VSSD"]
VSSADMIN = os.environ["VSSADMIN"]
HERE = os.path.dirname(os.path.abspath(__file__))

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # Nothing a test starts may outlive it (PR_SET_PDEATHSIG, SIGKILL).
    _libc.prctl(1, signal.SIGKILL)


def _mounts():
    with open("/proc/self/mounts") as f:
        for line in f:
            # Octal escapes (\040 for a space) as getmntent undoes them.
            yield re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[1])


class Vssd:
    def __init__(self, config=None):
        self.dir = tempfile.mkdtemp(prefix="openvss-pytest-")
        self.socket = os.path.join(self.dir, "vssd.sock")
        self.state = os.path.join(self.dir, "state")
        config = dict(config or {})
        if "hold_exclude" not in config and "hold_filesystems" not in config:
            config["hold_exclude"] = list(_mounts())
        self.config = os.path.join(self.dir, "vssd.json")
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.env = dict(os.environ, VSS_SOCKET=self.socket)
        self.children = []
        self.vssd = None
        atexit.register(self.close)
        self._start()

    def _start(self):
        notify = os.path.join(self.dir, "notify")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(notify)
        ns.settimeout(10)
        self.log = open(os.path.join(self.dir, "vssd.log"), "ab")
        self.vssd = subprocess.Popen([VSSD, "--socket", self.socket, "--state-dir", self.state, "--config", self.config],
                                     env=dict(self.env, NOTIFY_SOCKET=notify), stdout=self.log, stderr=self.log,
                                     preexec_fn=_die_with_parent)
        try:
            while b"READY=1" not in ns.recv(4096):
                pass
        except socket.timeout:
            self.fail("vssd did not become ready")
        finally:
            ns.close()

    def fail(self, why):
        print("FAIL: " + why, file=sys.stderr)
        self.dump()
        sys.exit(1)

    def dump(self):
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    print("---- %s ----\n%s" % (name, f.read()), file=sys.stderr)

    def spawn(self, args, name):
        """Starts a child (a writer script) with its output in NAME.log."""
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(args, env=self.env, stdout=log, stderr=log, preexec_fn=_die_with_parent)
        self.children.append(p)
        return p

    def python_writer(self, script, name, *args):
        """Starts python/tests/SCRIPT NAME ARGS... and waits until vssd lists the writer."""
        p = self.spawn([sys.executable, os.path.join(HERE, script), name, *args], "writer-" + name)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if p.poll() is not None:
                self.fail("writer %s exited with %d" % (name, p.returncode))
            if self.writer(name):
                return p
            time.sleep(0.02)
        self.fail("writer %s did not subscribe" % name)

    def vssadmin(self, *args):
        """(exit status, stdout) of vssadmin ARGS."""
        r = subprocess.run([VSSADMIN, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.stderr:
            with open(os.path.join(self.dir, "vssadmin.log"), "a") as f:
                f.write(r.stderr)
        return r.returncode, r.stdout

    def writer(self, name):
        """The writer's object in `vssadmin list writers --json`, or None."""
        rc, out = self.vssadmin("list", "writers", "--json")
        if rc != 0:
            return None
        return find(json.loads(out), "name", name)

    def close(self):
        if self.vssd is None:
            return
        ok = True
        for p in self.children:
            p.terminate()
            try:
                rc = p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            if rc not in (0, 1, -signal.SIGTERM, -signal.SIGKILL):
                print("a writer ended with status %d" % rc, file=sys.stderr)
                ok = False
        self.vssd.terminate()
        try:
            rc = self.vssd.wait(20)
        except subprocess.TimeoutExpired:
            self.vssd.kill()
            rc = self.vssd.wait()
        if rc != 0:
            print("vssd did not exit cleanly on SIGTERM (%d)" % rc, file=sys.stderr)
            ok = False
        self.vssd = None
        if not ok or os.environ.get("HARNESS_DUMP"):
            self.dump()
        shutil.rmtree(self.dir, ignore_errors=True)
        if not ok:
            os._exit(1)


def find(o, key, value):
    """The first object (depth first) in JSON o whose key is value."""
    if isinstance(o, dict):
        if o.get(key) == value:
            return o
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            r = find(v, key, value)
            if r is not None:
                return r
    return None


def make_data(h, name):
    """A directory with a few files under the test's directory."""
    d = os.path.join(h.dir, name)
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "a.txt"), "w") as f:
        f.write("hello, shadow\n")
    with open(os.path.join(d, "sub", "b.txt"), "w") as f:
        f.write("second file\n")
    return d


class Checks:
    """Counted checks, as tests/check.h: a failed one is reported and the test goes on."""

    def __init__(self):
        self.failures = 0

    def __call__(self, cond, what):
        if not cond:
            print("CHECK failed: " + what, file=sys.stderr)
            self.failures += 1
        return cond

    def eq(self, got, want, what):
        return self(got == want, "%s: got %r, expected %r" % (what, got, want))
