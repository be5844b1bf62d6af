"""A fork server for the tests' CLI runs (helpers.cli_run): `python -m bulk_sync ARGS` in a process
of its own, without paying for a new interpreter and the import of pandas and bulk_sync each time
(~0.7 s of CPU a run, most of what the suite spent).

Started once per test process (``python tests/forkserver.py FD``, FD one end of a SOCK_SEQPACKET
socket pair), it imports the CLI's modules, then for each request (argv, env, cwd, and the three
file descriptors of the child's stdin, stdout and stderr) forks. The child becomes what
`python -m bulk_sync ARGS` (or `python -c CODE ARGS`) would be: its descriptors 0, 1, 2, its
working directory, exactly its environment, its argv and sys.path[0], a new random seed and
temporary folder; it runs the module as __main__ and ends as an interpreter ends (SystemExit's
code, atexit handlers, non-daemon threads joined). The server writes the child's pid to the status
pipe at once, and its exit code (negative: the signal that ended it, as subprocess says) when it
has ended.

What this does not give a child is a fresh interpreter: the interpreter's start-up and the import
of the modules happened once, before the fork, with the server's environment. helpers.cli_run
therefore sends a run here only when its environment differs from the server's in variables read
when they are used (helpers.READ_WHEN_USED: the token, the state's home, TMPDIR, ...); the tests of
start-up itself (signals during import, the installed entry point, the hash seed) start real
interpreters. BULK_SYNC_TESTS_FRESH=1 sends every run to a new one.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import pkgutil
import random
import runpy
import selectors
import socket
import sys
import tempfile
import types
from typing import Any

# What the commands import, at the top of their modules or when they need it (the readers of
# workbooks, the event loop, the embedded sandbox's web server): imported once, by the server.
LATER = ("uvloop", "python_calamine", "xlsxwriter", "openpyxl", "defusedxml.ElementTree", "xlrd")


# Native thread pools a library starts when it is imported (numpy's OpenBLAS starts one thread a core
# less one): held to the main thread, so that the server forks a process that has no other thread.
ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def preload() -> None:
    del sys.path[0]  # this file's folder (tests/): not on the CLI's path
    for name in ONE_THREAD:  # this process's only (a child's environment is the request's)
        os.environ[name] = "1"
    package = importlib.import_module("bulk_sync")
    for mod in pkgutil.walk_packages(package.__path__, "bulk_sync."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    for name in LATER:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    threads = os.listdir("/proc/self/task")
    if len(threads) != 1:  # fork() copies only the calling thread: another one's locks stay held
        raise RuntimeError(f"the fork server has {len(threads)} threads after its imports; it must have one")
    gc.freeze()  # what is imported lives on: a child's collections (at its exit too) skip it, and do
    # not touch its pages (which would copy them): --version 0.36 s of CPU before, 0.07 s after


def serve(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Fork for each request; return only in a child (its request and descriptors). Each request
    brings a fourth descriptor, the status pipe: the child's pid is written to it at once, its exit
    code when it has ended (seen through a pidfd, so that runs may overlap)."""
    sock.send(b'{"ready": true}')
    waiting = selectors.DefaultSelector()
    waiting.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in waiting.select():
            if key.fileobj is not sock:  # a child has ended
                pidfd = key.fd
                pid, status = key.data
                waiting.unregister(pidfd)
                os.close(pidfd)
                _, code = os.waitpid(pid, 0)
                with contextlib.suppress(BrokenPipeError):  # the test stopped waiting (its timeout)
                    os.write(status, b"%d\n" % os.waitstatus_to_exitcode(code))
                os.close(status)
                continue
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
            if not msg:  # the test process is gone
                sys.exit(0)
            pid = os.fork()
            if pid == 0:
                for key in list(waiting.get_map().values()):  # the other runs' pidfds and status pipes
                    if key.fileobj is not sock:
                        os.close(key.fd)
                        os.close(key.data[1])
                sock.close()
                return json.loads(msg), fds[:3]
            *io, status = fds
            for fd in io:
                os.close(fd)
            os.write(status, b"%d\n" % pid)
            waiting.register(os.pidfd_open(pid), selectors.EVENT_READ, (pid, status))


def become(req: dict[str, Any], fds: list[int]) -> None:
    """This child, as the new process `req` describes would be before it ran its first line."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds):
        if fd > 2:
            os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    tempfile.tempdir = None  # found again from TMPDIR
    random.seed()
    sys.argv = ["-m" if req["module"] else "-c", *req["args"]]  # runpy puts the module's path first
    sys.path[0:0] = [os.getcwd() if req["module"] else ""]  # as `python -m` / `python -c` put it


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    preload()
    req, fds = serve(sock)
    become(req, fds)
    if req["module"]:
        runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
    else:
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module
        exec(compile(req["code"], "<string>", "exec"), module.__dict__)


if __name__ == "__main__":
    main()
