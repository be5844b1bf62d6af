"""The helpers the tests share: paths and the token, the real CLI in a subprocess, files shaped like
the example export, the watcher's command line, the review page's sign-in, a headless browser, and
the uploader against a mocked SIRO. Plain functions and constants only: the fixtures live in
conftest.py. A test file imports from here, never from another test file (test_architecture.py)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import csv
import datetime as dt
import io
import json
import locale
import os
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pandas as pd
import pytest

from bulk_sync import mapping, payload
from bulk_sync.load import Chunk
from bulk_sync.mapping import MappingSpec, apply, bind, fingerprints, parse_mapping
from bulk_sync.payload import Payload, target_catalog
from bulk_sync.pipeline import prepare, scan_columns
from bulk_sync.sandbox import SandboxServer
from bulk_sync.settings import RunSettings
from bulk_sync.upload import Uploader

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
EXAMPLE_CSV = ROOT / "example_data" / "engagements.csv"
EXAMPLE_XLSX = ROOT / "example_data" / "engagements.xlsx"
EXAMPLE_MAPPING = ROOT / "mappings" / "engagements.yaml"
SCHEMA = TESTS / "schema" / "siro-openapi.yaml"
GOLDEN = TESTS / "golden" / "engagements.jsonl"
TOKEN = "test-token-7f3a9c2e5b1d4e6f8a0b"

HEADER = EXAMPLE_CSV.read_text(encoding="utf-8").splitlines()[0].split(",")  # the example's columns
INVALID = {9, 17, 25, 33, 46}  # the example's invalid rows (by row number)


# --------------------------------------------------------------------------- the quick loop

QUICK_LOOP = False  # conftest sets it when the slow tests are left out (pytest -m "not slow")


def examples(n: int) -> int:
    """How many examples a property test tries: ``n`` in the full run; in the quick loop, which is
    for a fast answer rather than a search, a quarter of them (at least 25)."""
    return max(25, n // 4) if QUICK_LOOP else n


# --------------------------------------------------------------------------- the CLI in a subprocess


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    report: list[dict[str, str]]


RunCli = Callable[..., CliResult]  # the run_cli fixture
Sandbox = Callable[..., SandboxServer]  # the sandbox fixture


def cli_argv(*args: str | Path) -> list[str]:
    """The command line that runs the real CLI in a subprocess (as `bulk-sync ARGS` would)."""
    return [sys.executable, "-m", "bulk_sync", *map(str, args)]


SPLITTING = (
    "import runpy, sys\n"
    "import bulk_sync.load.csv as c\n"
    "c.SPLIT_MIN_BYTES = int(sys.argv.pop(1))\n"
    "runpy.run_module('bulk_sync', run_name='__main__', alter_sys=True)\n"
)


def cli_argv_splitting(min_bytes: int, *args: str | Path) -> list[str]:
    """The real CLI in a subprocess, as cli_argv, with a CSV read in two parts at once from
    ``min_bytes`` on (bulk_sync.load.csv.SPLIT_MIN_BYTES; 32 MB otherwise): a small file exercises
    what a large one does."""
    return [sys.executable, "-c", SPLITTING, str(min_bytes), *map(str, args)]


def cli_env(token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SIRO_API_TOKEN"}
    if token is not None:
        env["SIRO_API_TOKEN"] = token
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_run(
    server: SandboxServer, data: Path, folder: Path, mapping_yaml: str, *flags: str | Path, **popen: Any
) -> ForkedPopen | subprocess.Popen[Any]:
    """Start a `run` of ``data`` against ``server`` in the background (a test stops it, or changes
    the file under it, while it runs): the mapping's YAML written to folder/m.yaml, no state, the
    report in folder/r.csv; ``popen``: subprocess.Popen's arguments (stdout, stderr, text)."""
    m = folder / "m.yaml"
    m.write_text(mapping_yaml)
    argv = cli_argv(
        "run", data, "-m", m, "--base-url", server.base_url, "--no-state", "--report", folder / "r.csv",
        *flags,
    )  # fmt: skip
    return cli_popen(argv, env=cli_env(), **popen)


def wait_for_records(server: SandboxServer, n: int, timeout: float = 60, poll: float = 0.02) -> None:
    """Until ``server`` holds ``n`` records (or the timeout: then fail)."""
    deadline = time.monotonic() + timeout
    while len(server.state.records) < n and time.monotonic() < deadline:
        time.sleep(poll)
    assert len(server.state.records) >= n


def wait_for(cond: Callable[[], bool], timeout: float = 60, what: str = "", poll: float = 0.1) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the CLI, forked

FRESH = "BULK_SYNC_TESTS_FRESH"  # set (to anything): every CLI run starts a new interpreter
# The environment variables a forked run may have other than the server's: those read when they are
# used, not when an interpreter starts or a module is imported (as PYTHON*, LANG, LC_*, TZ, or
# SSL_CERT_FILE, which aiohttp reads at its import). Any other difference: a new interpreter.
READ_WHEN_USED = {
    *("SIRO_API_TOKEN", "XDG_STATE_HOME", "TMPDIR", "HOME", "NO_COLOR", "TERM", "COLUMNS", "LINES"),
    "PYTEST_CURRENT_TEST",  # pytest's, set for each test
}


class _ForkServer:
    """tests/forkserver.py for this test process: the CLI's modules imported once, a fork a run."""

    def __init__(self) -> None:
        self.env = {k: v for k, v in _SESSION_ENV.items() if k != "SIRO_API_TOKEN"}
        self.env["PYTHONUNBUFFERED"] = "1"  # as cli_env sets it
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / "forkserver.py"), str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        theirs.close()
        self.sock = mine
        self.owner = os.getpid()
        self.lock = threading.Lock()
        assert json.loads(self.sock.recv(1 << 16)) == {"ready": True}

    def takes(self, env: dict[str, str]) -> bool:
        """Whether a child of this server is what a new interpreter given ``env`` would be."""
        differ = {k for k in {*env, *self.env} if env.get(k) != self.env.get(k)}
        alive = self.proc.poll() is None
        return alive and all(k in READ_WHEN_USED or k.startswith("BULK_SYNC_") for k in differ)

    def fork(self, how: tuple[str | None, str | None, list[str]], env: dict[str, str], cwd: str,
             fds: list[int]) -> None:  # fmt: skip
        """A child for ``how`` (module, code, args) with ``fds`` (stdin, stdout, stderr, status)."""
        module, code, args = how
        req = {"module": module, "code": code, "args": args, "env": env, "cwd": cwd}
        with self.lock:
            socket.send_fds(self.sock, [json.dumps(req).encode()], fds)

    def stop(self) -> None:
        if self.owner == os.getpid():
            self.sock.close()
            self.proc.wait(timeout=10)


_servers: list[_ForkServer] = []
_SESSION_ENV = dict(os.environ)  # as the test process started: before any test changed it


def _fork_server(env: dict[str, str]) -> _ForkServer | None:
    if os.environ.get(FRESH):
        return None
    if not _servers or _servers[0].owner != os.getpid() or _servers[0].proc.poll() is not None:
        _servers[:] = [_ForkServer()]
        atexit.register(_servers[0].stop)
    return _servers[0] if _servers[0].takes(env) else None


def fork_server_pid() -> int | None:
    """The pid of this test process's fork server, if it has started one."""
    ok = _servers and _servers[0].owner == os.getpid() and _servers[0].proc.poll() is None
    return _servers[0].proc.pid if ok else None


def running_children() -> dict[int, str]:
    """The processes this test process started that still run (zombies not counted): its own
    children and its fork server's (the forked CLI runs), but not the server. By pid: command line."""
    found: dict[int, str] = {}
    server = fork_server_pid()
    for parent in (os.getpid(), server):
        if parent is None:
            continue
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                for pid in map(int, (task / "children").read_text().split()):
                    with contextlib.suppress(OSError, IndexError):
                        stat = Path(f"/proc/{pid}/stat").read_text()
                        if pid != server and stat.rsplit(") ", 1)[1][0] != "Z":  # Z: ended, not reaped
                            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                            found[pid] = ("forked: " if parent == server else "") + cmd.decode(
                                errors="replace"
                            ).strip()
    return found


def _how(argv: list[str]) -> tuple[str | None, str | None, list[str]] | None:
    """(module, code, args) of `python -m bulk_sync ARGS` or `python -c CODE ARGS`; else None."""
    if len(argv) >= 3 and argv[0] == sys.executable:
        if argv[1:3] == ["-m", "bulk_sync"]:
            return "bulk_sync", None, argv[3:]
        if argv[1] == "-c":
            return None, argv[2], argv[3:]
    return None


def cli_run(
    argv: list[str], *, input: str | bytes | None = None, capture_output: bool = False,
    stdin: Any = None, stdout: Any = None, stderr: Any = None, text: bool = False,
    encoding: str | None = None, errors: str | None = None, env: dict[str, str] | None = None,
    cwd: str | Path | None = None, timeout: float | None = None, check: bool = False,
) -> subprocess.CompletedProcess[Any]:  # fmt: skip
    """subprocess.run for the CLI (``cli_argv(...)``, ``cli_argv_splitting(...)``): the child is a
    fork of tests/forkserver.py, which imported the CLI's modules once, rather than a new
    interpreter that imports them again (~0.7 s of CPU a run). It is a process of its own all the
    same, with its own descriptors 0, 1 and 2 (pipes, as subprocess.run makes them), environment,
    working directory, argv and exit code. Any other command, an environment that differs from the
    server's in more than READ_WHEN_USED, or BULK_SYNC_TESTS_FRESH set: subprocess.run."""
    argv = [str(a) for a in argv]
    how = _how(argv)
    full_env = dict(os.environ if env is None else env)
    server = _fork_server(full_env) if how is not None else None
    if server is None or how is None:
        kw = dict(input=input, capture_output=capture_output, stdin=stdin, stdout=stdout, stderr=stderr,
                  text=text, encoding=encoding, errors=errors, env=env, cwd=cwd, timeout=timeout)  # fmt: skip
        return subprocess.run(argv, check=check, **{k: v for k, v in kw.items() if v is not None})
    if capture_output:
        stdout = stderr = subprocess.PIPE
    feed = input is not None or stdin == subprocess.PIPE
    ours = _fork(server, how, full_env, cwd, stdin, stdout, stderr, feed)
    if "in" in ours:
        data = b"" if input is None else input
        if isinstance(data, str):
            data = data.encode(encoding or locale.getpreferredencoding(False), errors or "strict")
        threading.Thread(target=_feed, args=(ours.pop("in"), data), daemon=True).start()
    got = _read_all(ours, timeout)
    _, *code = map(int, got["status"].split())  # the pid, then the exit code if it came
    out, err = got.get("out"), got.get("err")
    if text or encoding or errors:
        out, err = (None if b is None else _text(b, encoding, errors) for b in (out, err))
    if not code:  # the time ran out: the child was killed
        raise subprocess.TimeoutExpired(argv, timeout or 0, output=out, stderr=err)
    if check and code[0]:
        raise subprocess.CalledProcessError(code[0], argv, out, err)
    return subprocess.CompletedProcess(argv, code[0], out, err)


def _fork(
    server: _ForkServer, how: tuple[str | None, str | None, list[str]], env: dict[str, str],
    cwd: str | Path | None, stdin: Any, stdout: Any, stderr: Any, feed: bool,
) -> dict[str, int]:  # fmt: skip
    """Have ``server`` fork a child with these descriptors (as subprocess takes them; ``feed``: a
    pipe to its stdin); our ends of the pipes by name (in, out, err; status: the pid, the code)."""
    theirs: list[int] = []  # what the child gets, closed here once the server has them
    ours: dict[str, int] = {}

    def given(spec: Any, std: int, name: str) -> int:
        if spec is None:
            return std
        if spec == subprocess.DEVNULL:
            theirs.append(os.open(os.devnull, os.O_RDWR))
        elif spec == subprocess.PIPE:
            r, w = os.pipe()
            ours[name], child = (w, r) if name == "in" else (r, w)
            theirs.append(child)
        else:
            return spec if isinstance(spec, int) else int(spec.fileno())
        return theirs[-1]

    fd_in = given(subprocess.PIPE if feed else stdin, 0, "in")
    fd_out = given(stdout, 1, "out")
    fd_err = fd_out if stderr == subprocess.STDOUT else given(stderr, 2, "err")
    ours["status"], w = os.pipe()
    theirs.append(w)
    try:
        server.fork(how, env, str(cwd or os.getcwd()), [fd_in, fd_out, fd_err, w])
    finally:
        for fd in theirs:
            os.close(fd)
    return ours


def _read_all(fds: dict[str, int], timeout: float | None) -> dict[str, bytes]:
    """Everything until end of file on ``fds`` (by name); past ``timeout`` the child (whose pid
    starts the status) is killed, and what the status holds by then is returned."""
    got = {name: bytearray() for name in fds}
    deadline = None if timeout is None else time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for name, fd in fds.items():
            sel.register(fd, selectors.EVENT_READ, name)
        while sel.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                os.kill(int(got["status"].split()[0]), signal.SIGKILL)
                sel.unregister(fds["status"])
                os.close(fds["status"])
                deadline = None
                continue
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 1 << 16)
                got[key.data] += chunk
                if not chunk:
                    sel.unregister(key.fd)
                    os.close(key.fd)
    return {name: bytes(b) for name, b in got.items()}


def _text(data: bytes, encoding: str | None, errors: str | None) -> str:
    text = data.decode(encoding or locale.getpreferredencoding(False), errors or "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as subprocess's universal newlines


def _feed(fd: int, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb") as fh:
        fh.write(data)


class ForkedPopen:
    """What subprocess.Popen gives a test (pid, stdin/stdout/stderr, poll, wait, communicate,
    send_signal, terminate, kill, returncode, a context manager) for a CLI child forked as
    cli_run's are. Made by cli_popen."""

    def __init__(self, argv: list[str], pid: int, status: int, pipes: dict[str, Any]) -> None:
        self.args = argv
        self.pid = pid
        self.returncode: int | None = None
        self._status = status  # the server writes the exit code to it when the child has ended
        self.stdin, self.stdout, self.stderr = (pipes.get(n) for n in ("in", "out", "err"))

    def _ended(self, timeout: float | None) -> bool:
        if self.returncode is None and select.select([self._status], [], [], timeout)[0]:
            line = os.read(self._status, 64)
            os.close(self._status)
            self.returncode = int(line) if line else -signal.SIGKILL  # no code: the server died
        return self.returncode is not None

    def poll(self) -> int | None:
        self._ended(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                if input:
                    self.stdin.write(input)
                self.stdin.close()
        got: dict[str, Any] = {}
        readers = [
            threading.Thread(target=lambda n=n, f=f: got.__setitem__(n, f.read()), daemon=True)
            for n, f in (("out", self.stdout), ("err", self.stderr))
            if f is not None
        ]
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in readers:
            t.start()
        for t in readers:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        for f in (self.stdout, self.stderr):
            if f is not None:
                f.close()
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return got.get("out"), got.get("err")

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self) -> ForkedPopen:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in (self.stdout, self.stderr, self.stdin):
            if f is not None:
                f.close()
        self.wait()


def cli_popen(
    argv: list[str], *, stdin: Any = None, stdout: Any = None, stderr: Any = None, text: bool = False,
    encoding: str | None = None, errors: str | None = None, env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> ForkedPopen | subprocess.Popen[Any]:  # fmt: skip
    """subprocess.Popen for the CLI, forked as cli_run's children are (a ForkedPopen); when the
    server cannot stand for a new interpreter (see cli_run), a subprocess.Popen. For a run started
    in the background that a test watches, signals or kills: not for a test of what happens while
    the interpreter starts (test_early_signals.py starts real ones)."""
    argv = [str(a) for a in argv]
    how = _how(argv)
    full_env = dict(os.environ if env is None else env)
    server = _fork_server(full_env) if how is not None else None
    if server is None or how is None:
        kw = dict(stdin=stdin, stdout=stdout, stderr=stderr, text=text, encoding=encoding, errors=errors,
                  env=env, cwd=cwd)  # fmt: skip
        return subprocess.Popen(argv, **{k: v for k, v in kw.items() if v is not None})
    ours = _fork(server, how, full_env, cwd, stdin, stdout, stderr, feed=False)
    pid = int(_read_line(ours["status"]))
    as_text = bool(text or encoding or errors)
    pipes: dict[str, Any] = {}
    for name in ("in", "out", "err"):
        if name in ours:
            mode = "wb" if name == "in" else "rb"
            f: Any = open(ours[name], mode)  # noqa: SIM115 (the caller's to close, as Popen's)
            if as_text:
                enc = encoding or locale.getpreferredencoding(False)
                f = io.TextIOWrapper(f, enc, errors or "strict", write_through=name == "in")
            pipes[name] = f
    return ForkedPopen(argv, pid, ours["status"], pipes)


def _read_line(fd: int) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError("the fork server did not start the child")
        line += chunk
    return line


# --------------------------------------------------------------------------- files like the example


def _example_rows() -> tuple[list[str], list[list[str]]]:
    with EXAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        data = list(csv.reader(fh))
    return data[0], data[1:]


def valid_csv(path: Path, rows: int | None = None, prefix: str = "") -> Path:
    """The example's valid rows (55), or `rows` of them cycled with their own ids."""
    header, body = _example_rows()
    good = [r for i, r in enumerate(body, start=2) if i not in INVALID]
    if rows is not None:
        good = [[f"{prefix}W-{i:05d}", *good[i % len(good)][1:]] for i in range(rows)]
    elif prefix:
        good = [[prefix + r[0], *r[1:]] for r in good]
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *good])
    return path


def golden_valid() -> dict[str, dict[str, Any]]:
    """The example's valid rows' payloads (tests/golden/engagements.jsonl), by external id."""
    return {
        o["payload"]["externalId"]: o["payload"]
        for o in map(json.loads, GOLDEN.read_text().splitlines())
        if o["status"] == "valid"
    }


def make_file(path: Path, n: int, ids: Callable[[int], str] = lambda i: f"APT-R{i:06d}") -> dict[str, Any]:
    """n rows cycled from the example's valid rows, each with a new Appointment ID.

    Returns externalId -> the payload SIRO must end up holding for it.
    """
    valid = golden_valid()
    header, rows = _example_rows()
    body = [r for r in rows if r[0] in valid]
    expected = {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n):
            src = body[i % len(body)]
            ext = ids(i)
            w.writerow([ext, *src[1:]])
            expected[ext] = {**valid[src[0]], "externalId": ext}
    return expected


def appointments(
    path: Path,
    ids: list[int],
    *,
    day0: int = 2,
    spread: int = 5,
    bad: set[int] = frozenset(),
    day_of: Callable[[int], dt.date] | None = None,
) -> Path:
    """A clean export: one appointment per id, on days day0..day0+spread-1 of March 2026 (or on
    ``day_of(id)``)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, HEADER)
        out.writeheader()
        for n in ids:
            day = day_of(n) if day_of else dt.date(2026, 3, day0 + n % spread)
            out.writerow(
                {
                    "Appointment ID": f"APT-{n:05d}",
                    "Subject": f"Visit {n}",
                    "Direction": "Inbound",
                    "Appointment Type": "In-home consultation",
                    "Activity": "Appointment",
                    "Start": f"{day:%m/%d/%Y} 09:00 AM" if n not in bad else "not a date",
                    "End": f"{day:%m/%d/%Y} 10:00 AM",
                    "Rep ID": "U-1",
                    "Rep Email": "dana@example.com",
                    "Rep Name": "Dana",
                }
            )
    return path


def mixed_csv(path: Path, n: int) -> Path:
    """``n`` example-shaped rows over several chunks, with what real exports hold: invalid rows (a
    bad date, an unknown direction), ids repeated later (superseded), a row with extra cells, blank
    lines, bytes that are not UTF-8, a formula-like cell, and a report footer."""
    header, good = _example_rows()
    start, direction = header.index("Start"), header.index("Direction")
    subject = header.index("Subject")
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    for i in range(n):
        row = list(good[i % len(good)])
        row[0] = f"W-{i:07d}" if i % 1009 else f"W-{i - 3:07d}"  # every 1009th repeats an earlier id
        if i % 997 == 5:
            row[start] = "31/02/2026 25:00"  # not a date
        if i % 1201 == 7:
            row[direction] = "Sideways"
        if i % 1499 == 11:
            row[subject] = "=HYPERLINK(1)"
        elif i % 50 == 1:
            row[subject] = f"Visite chez José Núñez {i}"  # UTF-8 text: the bad byte below is damage
        if i % 1733 == 13:
            row.append("spilled")  # more cells than the header
        w.writerow(row)
        if i % 4001 == 17:
            out.write("\r\n")  # a blank line inside the data
    out.write("\r\nReport generated by CRM\r\n")  # a footer: a blank row, then a single cell
    data = out.getvalue().encode("utf-8")
    cut = data.index(b"W-0002345")  # a byte that is not UTF-8 inside a cell
    path.write_bytes(data[:cut] + b"\xff" + data[cut + 1 :])
    return path


# A mapping of six columns (ID, Subject, Notes, Start, Deal, Amount): the id pass in halves and the
# dry run in parts read files of these columns.
SIX_COLUMNS_MAPPING = """\
version: 1
fields:
  externalId: {column: ID, required: true}
  subject: Subject
  content: Notes
  startTime: {column: Start, datetime: {format: "%Y-%m-%d %H:%M", timezone: UTC}}
  opportunity.externalId: Deal
  opportunity.amount: Amount
"""


def write_ods(path: Path, rows: list[list[str]], sheet: str = "Visits") -> Path:
    """An .ods (a real zip, content.xml as LibreOffice writes it) whose cells are the given XML: a
    cell's content (paragraphs, spans, tabs, line breaks), or a whole ``<table:table-cell ...>``."""

    def cell(xml: str) -> str:
        if xml.startswith("<table:"):
            return xml
        return f'<table:table-cell office:value-type="string">{xml}</table:table-cell>'

    body = "".join("<table:table-row>" + "".join(map(cell, r)) + "</table:table-row>" for r in rows)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="{sheet}">{body}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "mimetype", "application/vnd.oasis.opendocument.spreadsheet", compress_type=zipfile.ZIP_STORED
        )
        z.writestr("content.xml", content)
        z.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
            '<manifest:file-entry manifest:full-path="/" '
            'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>",
        )
    return path


# --------------------------------------------------------------------------- the pipeline as data


def outcomes(path: Path, mapping_path: Path = EXAMPLE_MAPPING) -> list[dict[str, Any]]:
    """Every row of ``path`` through the loader, the mapping and the payload models, as data:
    valid (with its payload), invalid (with its errors) or skipped (with why)."""
    plan = scan_columns(prepare([path], mapping_path))  # as the CLI: number columns settled first
    out: list[dict[str, Any]] = []
    for src, bound in plan.jobs:
        for chunk in src.chunks():
            for rec in mapping.apply(bound, chunk) if len(chunk) else []:
                if rec.skip:
                    out.append({"row": rec.row_number, "status": "skipped", "why": rec.skip})
                    continue
                built = payload.build(rec, plan.spec.resource)
                if isinstance(built, list):
                    out.append(
                        {
                            "row": rec.row_number,
                            "status": "invalid",
                            "errors": [[e.slug, e.column] for e in built],
                        }
                    )
                else:
                    out.append({"row": rec.row_number, "status": "valid", "payload": built.body})
            out += [{"row": n, "status": "skipped", "why": why} for n, why in chunk.skipped]
    return out


@cache
def _catalog() -> Any:
    return target_catalog()


def spec_of(yaml_text: str) -> MappingSpec:
    """A mapping from YAML text (dedented), against SIRO's catalogue."""
    return parse_mapping(textwrap.dedent(yaml_text), _catalog(), "m.yaml")


def _chunk_of(rows: list[dict[str, str]]) -> Chunk:
    headers = list(rows[0])
    return Chunk("f.csv", None, list(range(2, 2 + len(rows))), pd.DataFrame(rows, columns=headers, dtype=str))


def map_rows(
    spec: MappingSpec, rows: list[dict[str, str]]
) -> list[tuple[dict[str, object], list[list[object]]]]:
    """``rows`` (dicts of one shape) through ``spec``: each row's values and its errors (slug, column)."""
    bound = bind(spec, list(rows[0]), "f.csv")
    return [(r.values, [[e.slug, e.column] for e in r.errors]) for r in apply(bound, _chunk_of(rows))]


def fingerprints_of(spec: MappingSpec, rows: list[dict[str, str]]) -> list[bytes]:
    return list(fingerprints(bind(spec, list(rows[0]), "f.csv"), _chunk_of(rows)))


# --------------------------------------------------------------------------- dry runs compared


def dry_run(
    tmp: Path, name: str, workers: str, *files: Path, extra: tuple[str, ...] = (), split: int | None = None
) -> tuple[int, str, str, Path]:
    """The CLI's dry run of ``files`` with BULK_SYNC_WORKERS=``workers``, its outputs in tmp/name;
    ``split``: a CSV from that many bytes is read in two parts at once (SPLIT_MIN_BYTES; None: as
    shipped, 32 MB). Returns (exit code, stdout, stderr, the outputs' folder)."""
    out = tmp / name
    out.mkdir()
    argv = (cli_argv if split is None else partial(cli_argv_splitting, split))(
        "validate", *files, "--mapping", EXAMPLE_MAPPING, "--report", out / "report.csv", "--no-rep-check",
        *extra,
    )  # fmt: skip
    env = {**cli_env(None), "BULK_SYNC_WORKERS": workers}
    proc = cli_run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=tmp)
    return proc.returncode, proc.stdout.replace(str(out), "OUT"), proc.stderr.replace(str(out), "OUT"), out


def same_outputs(a: Path, b: Path) -> list[str]:
    """Assert the outputs in folders ``a`` and ``b`` are the same (all but timing); their names."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert "report.csv" in names and any("errors" in n for n in names), names
    for name in names:
        if name.endswith(".xlsx"):  # a workbook's zip holds the time it was written: its cells
            assert workbook_cells(a / name) == workbook_cells(b / name), name
        elif name.endswith(".json"):  # the summary: all but when and how fast, and where it went
            assert summary_without_timing(a / name, a) == summary_without_timing(b / name, b), name
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    return names


def summary_without_timing(path: Path, folder: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8").replace(str(folder), "OUT"))
    for when in ("duration_seconds", "rows_per_second", "started_at", "finished_at"):
        assert data.pop(when) is not None
    return data  # type: ignore[no-any-return]


def workbook_cells(path: Path) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}
    finally:
        book.close()


def without_timing(stdout: str) -> str:
    return "\n".join(line for line in stdout.splitlines() if not line.startswith("checked "))


# --------------------------------------------------------------------------- the watcher


def dropped_earlier(path: Path) -> Path:
    """A file that was dropped a minute ago: already settled, so the watcher takes it at once."""
    os.utime(path, (time.time() - 60, time.time() - 60))
    return path


def watch_argv(inbox: Path, *extra: str | Path) -> list[str]:
    return cli_argv("watch", inbox, "--settle", "1", "--poll", "0.2", *extra)


def start_watch(inbox: Path, tmp_path: Path, *extra: str | Path) -> ForkedPopen | subprocess.Popen[str]:
    with (tmp_path / "watch.log").open("a") as log:  # the child keeps its own copy of the handle
        return cli_popen(
            watch_argv(inbox, *extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_env(),
            cwd=tmp_path,
        )


def files(folder: Path, suffix: str = "") -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(suffix)) if folder.exists() else []


# --------------------------------------------------------------------------- the review page

BAD_DATE = "31/02/2026 10:00 AM"  # a date that does not exist
GOOD_DATE = "03/02/2026 08:00 AM"  # the example rows' End is 09:30 AM that day


def csrf_of(html: str) -> str:
    """The CSRF token a review page carries."""
    return html.split('<meta name="csrf" content="', 1)[1].split('"', 1)[0]


def review_sign_in(client: httpx.Client, server: Any) -> str:
    """Open the address `serve` prints (with its key) on a ReviewThread in ``client``: the session
    cookie is set; returns the page's CSRF token."""
    resp = client.get(f"{server.url}/?key={server.review.key}", follow_redirects=True)
    assert resp.status_code == 200, resp.status_code
    return csrf_of(resp.text)


def review_session(server: Any, timeout: float = 60) -> tuple[httpx.Client, str]:
    """A client signed in on a ReviewThread (following redirects) and the page's CSRF token."""
    client = httpx.Client(base_url=server.url, follow_redirects=True, timeout=timeout)
    return client, review_sign_in(client, server)


def validate_into(reports: Path, data: Path, name: str, timeout: float = 300) -> Path:
    """The real CLI's `validate` of ``data`` (the example mapping), its outputs in ``reports`` as
    ``name`` (a run the review page lists). Returns ``reports``."""
    reports.mkdir(parents=True, exist_ok=True)
    argv = cli_argv("validate", data, "--mapping", EXAMPLE_MAPPING, "--report", reports / name)
    cli_run(argv, env=cli_env(None), cwd=reports.parent, timeout=timeout, check=False, capture_output=True)
    assert (reports / name).is_file(), f"validate wrote no {name}"
    return reports


def two_files(folder: Path) -> Path:
    """`validate a.csv b.csv` by the real CLI: the example twice, b's ids starting with B (5 rows
    to fix in each); returns the report folder."""
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    shutil.copy(EXAMPLE_CSV, folder / "a.csv")
    with (folder / "b.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([rows[0], *([f"B{r[0]}", *r[1:]] if r and r[0] else r for r in rows[1:])])
    reports = folder / "reports"
    reports.mkdir()
    argv = cli_argv("validate", "a.csv", "b.csv", "--mapping", EXAMPLE_MAPPING, "--report", reports / "r.csv")
    cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    assert sorted(p.name for p in reports.glob("r-errors*")) == ["r-errors-a.csv", "r-errors-b.csv"]
    return reports


def two_sheets(folder: Path) -> Path:
    """book.xlsx (East: the example's rows 2-20; West: Region, then the example's columns, rows
    21-61, ids starting with W) validated by the real CLI over both sheets; the report folder."""
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    wb = openpyxl.Workbook()
    east = wb.active
    assert east is not None
    east.title = "East"
    for r in rows[:20]:
        east.append(r)
    west = wb.create_sheet("West")
    west.append(["Region", *rows[0]])
    for r in rows[20:]:
        west.append(["W", f"W{r[0]}" if r[0] else "", *r[1:]])
    wb.save(folder / "book.xlsx")
    reports = folder / "reports"
    reports.mkdir()
    argv = cli_argv(
        "validate", "book.xlsx", "--sheet", "*", "--mapping", EXAMPLE_MAPPING, "--report", reports / "r.csv"
    )
    done = cli_run(argv, env=cli_env(None), cwd=folder, timeout=120, check=False, capture_output=True)
    assert done.returncode == 1, done.stderr
    assert [p.name for p in reports.glob("r-errors*")] == ["r-errors.xlsx"]
    assert openpyxl.load_workbook(reports / "r-errors.xlsx", read_only=True).sheetnames == ["East", "West"]
    return reports


def thousand(folder: Path) -> Path:
    """The real CLI's `validate` of 1,000 rows that share one bad date (in folder/reports)."""
    header, good = _example_rows()
    with (folder / "many.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i in range(1000):
            out.writerow([f"M-{i:05d}", *good[0][1:7], BAD_DATE, *good[0][8:]])
    return validate_into(folder / "reports", folder / "many.csv", "many.csv")


def as_failed(reports: Path) -> None:
    """The run's rows as a run that could not send them would leave them: failed (SIRO answered 500)."""
    errors = reports / "many-errors.csv"
    with errors.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.update(bulk_sync_status="failed", bulk_sync_error="server-error", bulk_sync_column="",
                 bulk_sync_message="SIRO answered 500 three times")  # fmt: skip
        r["Start"] = GOOD_DATE
    with errors.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    summary = json.loads((reports / "many-summary.json").read_text(encoding="utf-8"))
    summary["counts"] = {"failed": 1000}
    summary["error_types"] = {"server-error": 1000}
    (reports / "many-summary.json").write_text(json.dumps(summary), encoding="utf-8")


# --------------------------------------------------------------------------- a headless browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900")


def skip_without_a_browser() -> None:
    """At a browser test module's top: skip it without Chromium and its driver, unless
    BULK_SYNC_REQUIRE_BROWSER is set (CI): there fail instead."""
    if CHROMIUM and CHROMEDRIVER:
        return
    if os.environ.get("BULK_SYNC_REQUIRE_BROWSER"):
        raise RuntimeError("BULK_SYNC_REQUIRE_BROWSER is set, but chromium/chromedriver are not installed")
    pytest.skip(
        "no chromium + chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True
    )


def chromium(*extra: str) -> Any:
    """Debian's Chromium, headless, through Selenium (quit it when done)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, *extra):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


# focused as Tab focuses it, then the caret put after the text (as WebDriver's typing into an input does)
FOCUS = (
    "arguments[0].focus(); const i = arguments[0].querySelector('input');"
    "if (i) i.setSelectionRange(i.value.length, i.value.length)"
)


def wait(driver: Any, cond: Callable[[Any], Any], timeout: float = 30) -> Any:
    """Until ``cond(driver)`` is truthy (polled every 50 ms); its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(cond)


def browser_sign_in(driver: Any, server: Any) -> None:
    """Open the address `serve` prints, with its key, in the browser: the session cookie is set."""
    driver.get(f"{server.url}/?key={server.review.key}")


# --------------------------------------------------------------------------- the uploader, SIRO mocked


def send_through(
    handler: Callable[[Any], Any], payloads: list[Any], *, batch: bool = True, **settings: Any
) -> tuple[Any, list[Any], Any]:
    """Send ``payloads`` (one batch, or the first alone) through an Uploader whose transport answers
    each request body with ``handler(body)`` (an httpx.Response); no pacing, no real sleeps.
    ``settings``: RunSettings fields. Returns (the outcomes, the request bodies seen, the uploader)."""
    bodies: list[Any] = []

    def recording(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return handler(body)  # type: ignore[no-any-return]

    async def nosleep(_: float) -> None:
        return None

    async def go() -> tuple[Any, Any]:
        s = RunSettings(**{"base_url": "https://siro.test", "token": "t", "rate_per_min": None, **settings})
        async with Uploader(s, transport=httpx.MockTransport(recording), sleep=nosleep) as up:
            if batch:
                return await up.send_batch(payloads), up
            return [await up.send(payloads[0])], up

    outcomes, up = asyncio.run(go())
    return outcomes, bodies, up


def payload_of(ext: str, **fields: object) -> Payload:
    """A Payload whose body is ``{"externalId": ext, **fields}``."""
    body = {"externalId": ext, **fields}
    return Payload(ext, body, json.dumps(body).encode())


def example_rows_csv(rows: int) -> bytes:
    """A CSV of ``rows`` copies of the example's first data row, each with an id of its own
    (``P-0000000``, ...), in the example's columns: a large valid file the example mapping reads."""
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as fh:
        header, good = list(csv.reader(fh))[:2]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for i in range(rows):
        w.writerow([f"P-{i:07d}", *good[1:]])
    return out.getvalue().encode("utf-8")
