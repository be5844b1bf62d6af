"""Pipeline, parts: a large CSV's dry run in two parts at once. The id pass found where the file's
second half starts (a record's start, and that record's number: ``Plan.splits``); the worker
process reads, maps and checks that half itself while the reader thread does the first, so neither
parses the other's rows, and no chunk is pickled across (the reader's core spent about a fifth of
a million-row dry run pickling chunks for the worker).

The worker writes each chunk's results to a spool file as it goes (a file, not memory: the reader
hands them on only once its own half is done, since the report is in input order) and says so on
its connection, a short message each; the reader reads them back in order, their sequence numbers
moved past its own rows (:class:`Part`). Where the second half cannot be read on its own, the
reader reads on past the middle itself, exactly as one read of the whole file would (the load
stage decides: :class:`~bulk_sync.load.Split`); where the worker cannot (its first rows may be a
report footer) or ends before its time, the reader reads the rest from the row after the last one
handed on.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from ..errorfile import BLOB_BYTES, KEEP_BYTES, pack
from ..load import NotAlone, Span
from ..state import StateStore
from .memory import TRIM_EVERY, give_back
from .results import Block, Done, Entry, Row
from .work import ChunkWork, Job

# a chunk's results, as spooled: its entries (settled), the packed cells of its invalid rows (row
# number, cells; None: more than the error file keeps), the last row number it covers and the
# sequence number after it (counted from the part's first row)
Spooled = tuple[list[Entry], list[tuple[int, bytes]] | None, int, int]


@dataclass(frozen=True, slots=True)
class PartRequest:
    """Read, map and check job ``index`` from byte ``start`` to ``end`` (its first record is row
    ``first``); spool the results to ``spool``."""

    index: int
    start: int
    end: int
    first: int
    spool: str


CANCEL = "cancel"  # the reader's request to end a part early (it reads the rest itself)


def serve_part(
    req: PartRequest,
    job: Job,
    work: ChunkWork,
    store: StateStore | None,
    settle: Callable[[Entry], Entry],
    send: Callable[[Any], None],
    waiting: Callable[[], bool],
) -> None:
    """(In the worker process.) Part ``req`` of ``job``, a chunk at a time: its results to the
    spool, a ``("more", size, rows)`` message each; then ``("end", count)``. Or ``("alone",)`` (the part
    cannot be read on its own), ``("failed", exc)``, ``("cancelled",)`` (a request came: the
    reader wants it to end)."""
    span = Span(req.start, req.end, req.first)
    chunks = job.src.chunks(text=job.bound.columns.values(), span=span)
    seq, last, kept = 0, req.first - 1, 0
    try:
        with open(req.spool, "wb") as out:
            for k, whole in enumerate(chunks, start=1):
                if waiting():
                    send(("cancelled",))
                    return
                if k % TRIM_EVERY == 0:
                    give_back()
                work.bad = []
                before = seq
                seq, entries = work.chunk(job, whole, seq, None, store)
                bad: list[tuple[int, bytes]] | None = None
                if kept <= KEEP_BYTES:
                    headers = job.src.headers
                    bad = [(n, pack([cells.get(h, "") for h in headers])) for n, cells in work.bad]
                    kept += sum(len(b) + BLOB_BYTES for _, b in bad)
                    if kept > KEEP_BYTES:
                        bad = None
                last = max([last, *whole.row_numbers[-1:], *(n for n, _ in whole.skipped)])
                data = pickle.dumps(([settle(e) for e in entries], bad, last, seq), pickle.HIGHEST_PROTOCOL)
                out.write(data)
                out.flush()
                send(("more", len(data), seq - before))
        send(("end", seq))
    except NotAlone:
        send(("alone",))
    except BaseException as exc:  # the reader raises it where the whole read would have
        send(("failed", portable(exc)))
    finally:
        chunks.close()


class Part:
    """(In the reader.) The second part of a job, as its worker reads it: :meth:`take` at the
    first part's end (the load stage asks), then :meth:`next` for each chunk's results, in order.
    Meanwhile :meth:`progress` says how far the worker has got (for the progress bar)."""

    def __init__(self, conn: Connection, req: PartRequest) -> None:
        self.conn, self.req = conn, req
        self.taken = False  # the load stage left the rest of the file to the worker
        self.over = False  # the worker's last word on this part was received
        self.announced = 0  # rows :meth:`progress` counted whose results have not been handed on
        self._early: deque[Any] = deque()  # the worker's words read by progress(), for next()
        self._spool: IO[bytes] | None = None

    @property
    def at(self) -> int:
        return self.req.start

    @property
    def first(self) -> int:
        return self.req.first

    def take(self) -> bool:
        """The rest of the file is left to the worker (the reader's read ends at the middle)."""
        self.taken = True
        return True

    def progress(self) -> int:
        """Rows the worker has checked since the last call (its words read now, kept for :meth:`next`)."""
        rows = 0
        with contextlib.suppress(EOFError, OSError):  # (next() finds it so too, and says "lost")
            while not self.over and self.conn.poll():
                message = pickle.loads(self.conn.recv_bytes())
                self._early.append(message)
                if _more(message):
                    rows += message[2]
                else:
                    break  # its last word: next() reads it
        self.announced += rows
        return rows

    def next(self) -> tuple[str, Any]:
        """The next word from the worker: ``("more", spooled)`` with a chunk's results
        (:data:`Spooled`), ``("end", count)``, ``("alone", None)`` (the part cannot be read on its
        own), ``("lost", None)`` (the worker ended before its time); raises what the worker raised."""
        try:
            message = self._early.popleft() if self._early else pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            self.over = True
            return "lost", None
        if isinstance(message, BaseException):  # the worker failed before the part began
            self.over = True
            raise message
        kind, *rest = message
        if kind == "more":
            if self._spool is None:
                self._spool = open(self.req.spool, "rb")  # noqa: SIM115 (closed by close())
            data = self._spool.read(rest[0])
            return kind, pickle.loads(data)
        self.over = True
        if kind == "failed":
            raise rest[0]
        return kind, rest[0] if rest else None

    def cancel(self) -> None:
        """End the part early: ask the worker to stop, and wait for its last word."""
        if self.over or any(not _more(m) for m in self._early):  # its last word was read already
            self.over = True
            return
        with contextlib.suppress(OSError):
            self.conn.send_bytes(pickle.dumps(CANCEL))
        while not self.over:
            try:
                message = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                break
            self.over = isinstance(message, BaseException) or message[0] != "more"
        self.over = True

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        with contextlib.suppress(OSError):
            Path(self.req.spool).unlink()


def _more(message: Any) -> bool:
    """A worker's word that more results are spooled (not its last word)."""
    return isinstance(message, tuple) and message[0] == "more"


def shifted(entries: list[Entry], by: int) -> list[Entry]:
    """A worker's entries (a part's sequence numbers count from its first row) moved ``by`` on."""
    out: list[Entry] = []
    for e in entries:
        if isinstance(e, Block):
            out.append(Block(e.seq + by, e.block))
        elif isinstance(e, Done):
            out.append(Done(e.seq + by, e.result))
        else:
            assert not isinstance(e, Row)  # a worker settles its rows (a dry run sends nothing)
    return out


def portable(exc: BaseException) -> BaseException:
    """``exc`` as it can travel to the parent (one that cannot be pickled becomes a RuntimeError with
    its traceback)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        text = "".join(traceback.format_exception(exc))
        return RuntimeError(f"in a worker process of the dry run:\n{text}")


def sender(conn: Connection) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """(In the worker.) A thread that sends what it is given, in order, so that the worker never
    waits for the reader to read (a part's messages pile up while the reader reads its own half):
    its ``send`` and the ``close`` that ends it after the last message."""
    out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def run() -> None:
        while (data := out.get()) is not None:
            try:
                conn.send_bytes(data)
            except OSError:  # the parent is gone
                return

    thread = threading.Thread(target=run, daemon=True, name="bulk_sync-worker-out")
    thread.start()

    def send(message: Any) -> None:
        out.put(message if isinstance(message, bytes) else pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def close() -> None:
        out.put(None)
        thread.join(timeout=5)

    return send, close
