"""Pipeline, workers: a dry run maps and checks its chunks in worker processes, so that a second core
works on them beside the reader; their results come back in order (Workers).

Why only a dry run: a run that sends is bound by SIRO's quota (1000 requests of 100 records a
minute, about 1,700 rows a second), far below what one core maps; a dry run is bound by the Python
that maps and checks each row, on one core, and the reader needs a core of its own.

The workers are forked (Linux only), after the plan is made: they start with the plan, the number
columns settled and the superseded rows known, and read nothing themselves. The reader thread
sends each chunk as read (pickled, only the columns the mapping reads) and takes back its results
settled (blocks, and one result per row of its own) with the cells the worker had of its invalid
rows; the reader adds their other cells, from the columns it kept, for the error file (only while
it still keeps such cells: KEEP_BYTES). When a worker already has
AHEAD chunks, the reader maps the next one itself: both cores stay busy whichever is faster.
Elsewhere (Windows, macOS), and for a small file, the reader thread maps every chunk, as before.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import os
import pickle
import queue
import shutil
import signal
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterable
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from .. import mapping
from ..load import Chunk
from ..report import VALID
from ..settings import ReadSettings
from .memory import TRIM_EVERY, fixed_mmap_threshold, give_back
from .parts import CANCEL, Part, PartRequest, portable, sender, serve_part
from .plan import Plan
from .results import Done, Entry, Row, Stop, result_of, settled
from .work import ChunkWork, jobs_of, open_store

MIN_ROWS = 20_000  # by default a dry run of fewer rows (estimated) maps them in the reader thread
AHEAD = 2  # chunks on their way to (or back from) each worker: one mapped while the next waits
READER_MEMO_SHARE = 8  # the reader's date-time memos with workers: 1/8 of a whole memo's bytes
MAX_AHEAD = 6  # chunks read and not yet handed on, with a worker or mapped by the reader itself
SWITCH_INTERVAL = 0.001  # seconds: the GIL's switch interval in a worker (Python's default: 0.005)

# a chunk's entries, and its invalid rows: each its row number and the cells the worker had
Reply = tuple[list[Entry], list[tuple[int, dict[str, str]]]]


def worker_count(plan: Plan, settings: ReadSettings, show: int) -> int:
    """How many worker processes this run's reading uses (0: the reader thread maps the chunks).

    Only a dry run of the chunk path uses them (not ``group_by``, ``--show``, ``--limit`` or a
    retry's rows), only where processes can be forked; by default one, for 20,000 rows or more on
    a machine with two cores or more. ``settings.workers`` sets the number (0: none)."""
    if not settings.dry_run or plan.spec.group_by or show or settings.limit is not None:
        return 0
    if plan.only_rows is not None or not sys.platform.startswith("linux"):
        return 0
    if settings.workers is not None:
        return settings.workers
    if len(os.sched_getaffinity(0)) < 2:
        return 0
    rows = sum(src.estimated_rows() for src, _ in plan.jobs)
    return 1 if rows >= MIN_ROWS else 0


class Lost(Exception):
    """A worker process ended before it answered for chunk ``chunk`` of job ``index`` (its rows
    numbered from ``seq``): the reader maps it itself."""

    def __init__(self, index: int, seq: int, chunk: Chunk) -> None:
        super().__init__("a worker process ended before it answered")
        self.index, self.seq, self.chunk = index, seq, chunk


class Workers:
    """``count`` forked worker processes; chunks go out round-robin and come back in the same order.

    Should a worker end unexpectedly (killed, out of memory), the chunks it had come back as
    :class:`Lost` (the reader maps them itself) and none is sent any more (``broken``).
    """

    def __init__(self, plan: Plan, settings: ReadSettings, count: int) -> None:
        ctx = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):  # a child must not write out what the parent buffered
            stream.flush()
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(count):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_serve,
                args=(theirs, [*self._conns, mine], plan, settings),
                daemon=True,
                name="bulk_sync-worker",
            )
            proc.start()
            theirs.close()
            self._conns.append(mine)
            self._procs.append(proc)
        halves = (plan.splits or {}) if count == 1 else {}
        for j, (_, bound) in enumerate(plan.jobs):  # the workers map most chunks: the memos are theirs
            # (not forked), except where the reader maps half of the file (a part each)
            mapping.share_memos(bound, 1 if j in halves else READER_MEMO_SHARE)
        self._folder: str | None = None  # the parts' spool files
        self._turn = 0
        # each chunk on its way, in order: its worker, its job and first sequence number, what was
        # sent (to be mapped here should the worker end), and the columns that were not sent (the
        # error file's cells of its invalid rows; only references to cells read already)
        self._pending: deque[tuple[int, int, int, bytes, Chunk]] = deque()
        self.broken = False
        self.lost: str | None = None  # why a worker ended before its time

    @property
    def full(self) -> bool:
        """No chunk is to be sent now (the workers have enough, or one of them ended)."""
        return self.broken or len(self._pending) >= AHEAD * len(self._conns)

    def send(self, index: int, seq: int, whole: Chunk, columns: Iterable[str], keep: bool) -> bool:
        """Chunk ``whole`` of job ``index``, its rows numbered from ``seq``, to be mapped; only its
        ``columns`` (those the mapping reads) travel. ``keep``: send back the cells of its invalid
        rows (for the error file; not once the reader keeps none). False: the worker has ended."""
        sent = set(columns)
        data = pickle.dumps((index, seq, whole.narrow(sent), keep), pickle.HIGHEST_PROTOCOL)
        rest = whole.narrow(h for h in whole.columns if h not in sent)
        k = self._turn
        self._turn = (k + 1) % len(self._conns)
        try:
            self._conns[k].send_bytes(data)
        except OSError:
            self.broken = True
            self.lost = self._ended(k)
            return False
        self._pending.append((k, index, seq, data, rest))
        return True

    def part(self, index: int, at: int, first: int, end: int) -> Part | None:
        """Job ``index`` from byte ``at`` (its record ``first``) to ``end`` to be read, mapped and
        checked by the worker (:mod:`~bulk_sync.pipeline.parts`); None when it cannot be (more than
        one worker, chunks with it still, or it ended)."""
        if self.broken or len(self._conns) != 1 or self._pending:
            return None
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="bulk_sync-part-")
        req = PartRequest(index, at, end, first, os.path.join(self._folder, f"{index}.pickles"))
        try:
            self._conns[0].send_bytes(pickle.dumps(req, pickle.HIGHEST_PROTOCOL))
        except OSError:
            self.part_lost()
            return None
        return Part(self._conns[0], req)

    def part_lost(self) -> None:
        """The worker ended while it read a part: no more is sent to it."""
        self.broken = True
        self.lost = self._ended(0)

    def ready(self) -> bool:
        """The oldest chunk's results are back (receive will not wait)."""
        return self._conns[self._pending[0][0]].poll()

    def receive(self) -> tuple[Reply, int, Chunk]:
        """The oldest chunk's reply, with its job and the columns of it that were not sent. Raises
        :class:`Lost` (with the chunk whole) when its worker ended before it answered."""
        k, index, seq, sent, rest = self._pending.popleft()
        try:
            data = self._conns[k].recv_bytes()
        except (EOFError, OSError):
            self.broken = True
            self.lost = self._ended(k)
            raise Lost(index, seq, pickle.loads(sent)[2].widen(rest)) from None
        reply = pickle.loads(data)
        if isinstance(reply, BaseException):
            raise reply
        return reply, index, rest

    def _ended(self, k: int) -> str:
        proc = self._procs[k]
        proc.join(timeout=5)
        return f"a worker process ended unexpectedly (exit code {proc.exitcode})"

    def close(self) -> None:
        """End the workers (a worker ends when its connection closes)."""
        for conn in self._conns:
            conn.close()
        for proc in self._procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _start(others: list[Connection]) -> None:
    """The worker's process set up, its own to change (the parent's is left as it was)."""
    for other in others:  # the parent's ends: with them open here, the parent's end would never EOF
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    fixed_mmap_threshold()
    with contextlib.suppress(ValueError):  # the parent's event loop is woken by its own signals only
        signal.set_wakeup_fd(-1)
    # its threads (in, out) hand the GIL on quickly, and what it was forked with (the plan, the
    # mapping) stays out of the cyclic GC's passes
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.freeze()


def _serve(conn: Connection, others: list[Connection], plan: Plan, settings: ReadSettings) -> None:
    """A worker: map each chunk received, send back its entries settled, until the parent closes."""
    _start(others)
    requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def receive() -> None:  # always ready to take the next chunk, while this one's reply is sent
        while True:
            try:
                requests.put(conn.recv_bytes())
            except (EOFError, OSError):
                requests.put(None)
                return

    threading.Thread(target=receive, daemon=True, name="bulk_sync-worker-in").start()
    stop = Stop()
    work = ChunkWork(plan, settings, stop)
    jobs = jobs_of(plan, settings)
    store, failed = None, None
    try:
        store = open_store(settings)
    except Exception as exc:  # (a state file the reader cannot open either): said in the parent
        failed = exc
    current = -1
    send, end = sender(conn)
    try:
        for k in itertools.count(1):
            if (data := requests.get()) is None:
                break
            if k % TRIM_EVERY == 0:
                give_back()
            try:
                if failed is not None:
                    raise failed
                request = pickle.loads(data)
                if request == CANCEL:  # (a part that ended before the reader's word came)
                    continue
                index = request.index if isinstance(request, PartRequest) else request[0]
                if index != current:
                    work.enter(jobs[index])
                    current = index
                if isinstance(request, PartRequest):
                    settle = partial(_settle, stop=stop)
                    serve_part(request, jobs[index], work, store, settle, send, lambda: not requests.empty())
                    continue
                _, seq, chunk, keep = request
                work.bad = [] if keep else None
                _, out = work.chunk(jobs[index], chunk, seq, None, store)
                reply: Any = ([_settle(e, stop) for e in out], work.bad)
            except BaseException as exc:  # the parent raises it, as if it happened there
                reply = portable(exc)
            send(reply)
    finally:
        end()
        if store is not None:
            store.close()


def _settle(entry: Entry, stop: Stop) -> Entry:
    """What the parent's event loop would make of ``entry`` (a dry run: no payload is sent)."""
    if not isinstance(entry, Row):
        return entry
    final = settled(entry, stop)
    return Done(entry.seq, final if final is not None else result_of(entry.rec, VALID))
